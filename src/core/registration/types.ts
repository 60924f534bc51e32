import type { HttpClient } from '../http/index.js';
import type { AdminCredentials } from '../aidbox.js';
import type { Jwks } from '../auth/keys.js';
import type { SmartConfiguration } from '../discovery.js';

/** The server kinds `register-client --server` knows; one module each in this folder. */
export const SERVER_KINDS = ['aidbox', 'rfc7591', 'smart-reference'] as const;
export type ServerKind = (typeof SERVER_KINDS)[number];
export const DEFAULT_SERVER_KIND: ServerKind = 'aidbox';

/** What to register, whatever the server kind. */
export interface RegistrationInput {
  /** The positional argument: Aidbox's Client id, RFC 7591's client_name, a label elsewhere. */
  name: string;
  /** The server origin (Aidbox's admin API, the reference servers' /auth/register). */
  baseUrl: string;
  fhirUrl?: string;
  scope: string;
  jwksUri?: string;
  /** A public JWKS to register inline (--jwks-file). */
  jwks?: Jwks;
  /** Where `jwks` came from, for messages. */
  jwksSource?: string;
  /** The signing alg of the key that will sign assertions, when known. */
  alg?: string;
  /** --registration-url (SMART_REGISTRATION_URL, profile registrationUrl). */
  registrationUrl?: string;
  /** RFC 7591 initial access token (SMART_REGISTRATION_TOKEN only: never a flag, never saved). */
  registrationToken?: string;
  /** Aidbox only. */
  tokenExpiration?: number;
  clientType?: string;
  accessPolicy?: boolean;
}

/** One HTTP request of a plan, as it will be sent. */
export interface PlannedCall {
  /** What it creates or deletes: `Client`, `AccessPolicy`, `registration`. */
  what: string;
  id?: string;
  method: 'PUT' | 'POST' | 'DELETE';
  url: string;
  headers: Record<string, string>;
  /** JSON bodies as objects; form bodies as URLSearchParams text. */
  body?: unknown;
  /** Header names whose values are secrets (masked by describeCalls). */
  secretHeaders?: string[];
}

export interface RegistrationPlan {
  kind: ServerKind;
  input: RegistrationInput;
  calls: PlannedCall[];
  /** Things worth a warning line before anything is sent. */
  warnings: string[];
}

/** One line of what a registration (or removal) did. */
export interface RegistrationRow {
  what: string;
  id: string;
  url: string;
  status: number;
  result: 'created' | 'updated' | 'deleted' | 'absent' | 'registered';
  /** What the server answered, when JSON (secrets removed). */
  resource?: Record<string, unknown>;
}

/** RFC 7592 client management credentials (kept in a 0600 file, never printed). */
export interface ManagementCredentials {
  clientId: string;
  registrationClientUri: string;
  registrationAccessToken: string;
}

export interface RegistrationResult {
  kind: ServerKind;
  /** The client id to use for tokens: the name (Aidbox) or the one the server assigned. */
  clientId: string;
  rows: RegistrationRow[];
  /** Present when the server gave RFC 7592 management credentials. */
  management?: ManagementCredentials;
}

export interface RegistrationDeps {
  http: HttpClient;
  /** Aidbox admin credentials (HTTP Basic). */
  admin?: AdminCredentials;
  /** The server's SMART configuration, for registration_endpoint (discovery, cached). */
  discover?: () => Promise<SmartConfiguration | undefined>;
  /** Where management credentials live (the config dir). */
  configDir?: string;
}

export interface RemovalInput {
  clientId: string;
  baseUrl: string;
  accessPolicy?: boolean;
}

/** A server kind: what it would send (plan), sending it (apply), and undoing it (remove). */
export interface Registrar {
  kind: ServerKind;
  /** Whether apply needs Aidbox-style admin credentials. */
  needsAdmin: boolean;
  plan(
    input: RegistrationInput,
    deps: Pick<RegistrationDeps, 'discover'>,
  ): Promise<RegistrationPlan>;
  apply(plan: RegistrationPlan, deps: RegistrationDeps): Promise<RegistrationResult>;
  /** The requests remove() would send (for --dry-run). */
  planRemoval(input: RemovalInput, deps: RegistrationDeps): Promise<PlannedCall[]>;
  remove(input: RemovalInput, deps: RegistrationDeps): Promise<RegistrationRow[]>;
}
