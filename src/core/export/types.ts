import type { HttpRequest, HttpResponse } from '../http/index.js';
import type { SmartError } from '../errors.js';

/** Where the export starts: the whole server, all patients, or one Group. */
export type ExportLevel = { kind: 'system' } | { kind: 'patient' } | { kind: 'group'; id: string };

/** The kick-off parameters, as the user gave them. */
export interface ExportParams {
  level: ExportLevel;
  /** `_type`: resource types. */
  types?: string[];
  /** `_since`: a FHIR instant. */
  since?: string;
  /** `_typeFilter`: one search query per entry, e.g. `Observation?code=4548-4`. */
  typeFilters?: string[];
  /** `_outputFormat`; the server's default (application/fhir+ndjson) when absent. */
  outputFormat?: string;
  /** GET with query parameters (the STU2 default) or POST with a Parameters body. */
  method: 'GET' | 'POST';
}

export interface ManifestEntry {
  type: string;
  url: string;
  count?: number;
  [key: string]: unknown;
}

/** The complete-status body (Bulk Data STU2). */
export interface Manifest {
  transactionTime: string;
  request: string;
  requiresAccessToken: boolean;
  output: ManifestEntry[];
  error: ManifestEntry[];
  deleted?: ManifestEntry[];
  extension?: Record<string, unknown>;
  [key: string]: unknown;
}

export type FileKind = 'output' | 'error' | 'deleted';

/** A manifest entry with the local file name we chose for it. */
export interface PlannedFile {
  kind: FileKind;
  type: string;
  url: string;
  count?: number;
  /** Path relative to the output directory, e.g. `Patient.000.ndjson`, `error/OperationOutcome.000.ndjson`. */
  name: string;
}

export type FileStatus = 'pending' | 'done' | 'mismatch';

export interface FileState extends PlannedFile {
  status: FileStatus;
  bytes?: number;
  resources?: number;
  completedAt?: string;
}

export type ExportStatus = 'in-progress' | 'downloading' | 'complete' | 'cancelled' | 'failed';

/** `<out>/export.json`: enough to find the job again and to know what is already on disk. */
export interface ExportState {
  version: 1;
  statusUrl: string;
  kickoff: {
    url: string;
    method: 'GET' | 'POST';
    params: ExportParams;
  };
  startedAt: string;
  status: ExportStatus;
  transactionTime?: string;
  requiresAccessToken?: boolean;
  files?: FileState[];
  completedAt?: string;
  /** The last failure, for a person reading the file. */
  lastError?: string;
}

export interface ExportFileSummary {
  kind: FileKind;
  type: string;
  /** Relative to outDir. */
  file: string;
  resources: number;
  bytes: number;
}

export interface ExportIssue {
  file: string;
  severity?: string;
  code?: string;
  diagnostics?: string;
}

export interface ExportSummary {
  /** The --out directory, or the destination URL (s3://..., az://...). */
  outDir: string;
  /** Where the files are: `directory`, `s3` or `azure`, and the path or URL. */
  destination: { kind: 'directory' | 's3' | 'azure'; url: string };
  statusUrl: string;
  request?: string;
  transactionTime: string;
  requiresAccessToken: boolean;
  files: ExportFileSummary[];
  /** Resources in output[] files, per type. */
  resourcesByType: Record<string, number>;
  resources: number;
  bytes: number;
  durationMs: number;
  /** Files fetched in this run, and files found complete from an earlier run. */
  downloaded: number;
  skipped: number;
  /** The first issues of the error[] files. */
  errors: ExportIssue[];
  /** Lines (OperationOutcomes) in the error[] files. */
  errorCount: number;
  /** Files whose line count still differed from the manifest after a retry. */
  mismatches: Array<{ file: string; expected: number; actual: number }>;
  /**
   * error[] files whose manifest count is not their line count: kept as sent (a server may put
   * the failed output's count there), never downloaded again.
   */
  errorCountMismatches: Array<{ file: string; expected: number; actual: number }>;
}

/**
 * Everything the export reports while it runs. Reporters in src/output draw these; with
 * `-o ndjson` they are printed as they are. They never hold a token or a secret.
 */
export type ExportEvent =
  | { event: 'kickoff'; method: 'GET' | 'POST'; url: string }
  | { event: 'accepted'; statusUrl: string; outDir: string }
  | { event: 'resume'; statusUrl: string; outDir: string; startedAt: string }
  | {
      event: 'status';
      /** X-Progress, when the server sent one. */
      progress?: string;
      elapsedMs: number;
      nextPollMs: number;
    }
  | {
      event: 'wait';
      /** HTTP status that made us wait, or undefined for a network failure. */
      status?: number;
      reason: string;
      delayMs: number;
      elapsedMs: number;
    }
  | {
      event: 'manifest';
      transactionTime: string;
      requiresAccessToken: boolean;
      files: number;
      output: number;
      error: number;
      deleted: number;
      /** Sum of the manifest's counts, when every output entry has one. */
      resources?: number;
      /** Files still to fetch (the others are on disk from an earlier run). */
      pending: number;
    }
  | {
      event: 'file-start';
      file: string;
      kind: FileKind;
      resourceType: string;
      count?: number;
    }
  | { event: 'file-progress'; file: string; bytes: number; resources: number }
  | { event: 'file-retry'; file: string; attempt: number; delayMs: number; reason: string }
  | {
      event: 'file-done';
      file: string;
      kind: FileKind;
      resourceType: string;
      bytes: number;
      resources: number;
      ms: number;
    }
  | {
      event: 'file-skip';
      file: string;
      kind: FileKind;
      resourceType: string;
      bytes: number;
      resources: number;
    }
  | { event: 'warning'; message: string }
  | {
      event: 'interrupted';
      outDir: string;
      /** Files not yet on disk; undefined when the manifest had not arrived. */
      pending?: number;
    }
  | { event: 'complete'; summary: ExportSummary };

export type ExportEventName = ExportEvent['event'];

/** What the export needs from an authenticated FHIR session (FhirSession fits). */
export interface ExportSession {
  /** `trustedOrigins`: origins besides the FHIR server's that may get the token (--trust-origin). */
  request(
    pathOrUrl: string,
    init?: HttpRequest,
    options?: { trustedOrigins?: readonly string[] },
  ): Promise<HttpResponse>;
  resolve(pathOrUrl: string): string;
  error(res: HttpResponse, method?: string): SmartError;
  /** A URL the server gave under its own name (serverUrl), moved to the origin we reach. */
  reachable?(url: string): string;
}
