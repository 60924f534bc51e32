import type { SmartError } from '../errors.js';
import type { HttpRequest, HttpResponse } from '../http/index.js';

/** FHIR as JSON: resources and Bundles, and what a search or read needs from a session. */

/** A FHIR resource as JSON: resourceType and, for stored resources, id. */
export interface Resource {
  resourceType: string;
  id?: string;
  meta?: { lastUpdated?: string; versionId?: string; [k: string]: unknown };
  [k: string]: unknown;
}

export interface BundleEntry {
  fullUrl?: string;
  resource?: Resource;
  search?: { mode?: string; score?: number };
  [k: string]: unknown;
}

export interface BundleLink {
  relation: string;
  url: string;
}

export interface Bundle extends Resource {
  resourceType: 'Bundle';
  type?: string;
  total?: number;
  link?: BundleLink[];
  entry?: BundleEntry[];
}

/** What searchPages needs from a session: FhirSession fits, and tests can pass a fake. */
export interface FhirRequester {
  request(pathOrUrl: string, init?: HttpRequest): Promise<HttpResponse>;
  error(res: HttpResponse, method?: string): SmartError;
  /** The FHIR base, to keep relative next links under it. */
  readonly fhirUrl?: string;
  /** A URL the server gave under its own name (serverUrl), moved to the origin we reach. */
  reachable?(url: string): string;
}
