import type { OutStream } from '../context.js';
import type { BackendServicesCheck } from '../core/discovery.js';
import type { ExportSummary } from '../core/export/types.js';
import type { Resource } from '../core/fhir/index.js';
import type { DecodedJwt, RuleCheck, TimeInfo, Verification } from '../core/auth/jwt.js';
import type { RegistrationRow } from '../core/registration/types.js';
import type { OutputFormat } from './format.js';
import type { RenderablePages, StreamRenderOptions } from './stream.js';
import type { Column } from './table.js';

/**
 * What a command hands to output/: one typed result per kind. Each format's renderer file
 * (src/output/formats/*.ts) says how it shows every kind, or that it cannot (`unsupported`):
 * a new kind here makes the compiler name every format file that lacks it.
 */
export interface Results {
  /** One record: a field/value table, or the object itself. */
  object: ObjectResult;
  /** A list of records: rows and columns, or a JSON document for -o json. */
  records: RecordsResult;
  /** One value for a shell (`$(smart token)`): the text alone, or the JSON behind it. */
  text: TextResult;
  /** A server that runs until Ctrl-C says where it listens (JSON only; nothing on a table). */
  serving: ServingResult;
  discover: DiscoverResult;
  decode: DecodeResult;
  /** Client registration outcomes (Aidbox Client + AccessPolicy). */
  registration: RegistrationResult;
  /** Search pages, rendered as they stream in (memory stays flat). */
  search: SearchResult;
  /** The Bundle of `smart demo`: made for a person, a table unless -o asks. */
  demo: SearchResult;
  /** One resource (a read). */
  resource: ResourceResult;
  exportSummary: ExportSummaryResult;
  exportCancel: ExportCancelResult;
}

export type ResultKind = keyof Results;
export type Result = { [K in ResultKind]: Results[K] & { kind: K } }[ResultKind];

/**
 * The format when neither -o nor --json is given and stdout is not a terminal. JSON for data
 * that a script reads; the human form for what a shell captures (`$(smart token)`) or a person
 * reads in a CI log (the demo).
 */
export const PIPED_FORMAT: Record<ResultKind, OutputFormat> = {
  object: 'json',
  records: 'json',
  text: 'table',
  serving: 'json',
  discover: 'json',
  decode: 'json',
  registration: 'json',
  search: 'json',
  demo: 'table',
  resource: 'json',
  exportSummary: 'json',
  exportCancel: 'json',
};

export interface ObjectResult {
  kind: 'object';
  value: Record<string, unknown>;
  /** The table's rows, when they are not every member of `value`. */
  fields?: Array<[string, unknown]>;
}

// Rows of any shape: the columns read them (Column<T> is contravariant in T).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface RecordsResult<T = any> {
  kind: 'records';
  rows: T[];
  columns: Column<T>[];
  /** What -o json prints instead of the rows. */
  document?: unknown;
  /** A line on stderr before the rows (not with -o json). */
  note?: string;
  /** A line on stderr when there are no rows, instead of any output (not with -o json). */
  empty?: string;
  /** A line on stderr after the rows (not with -o json). */
  after?: string;
}

export interface TextResult {
  kind: 'text';
  text: string;
  json: unknown;
}

export interface ServingResult {
  kind: 'serving';
  value: Record<string, unknown>;
}

export interface DiscoverResult {
  kind: 'discover';
  /** The table's field/value lines (already worded). */
  fields: Array<[string, unknown]>;
  checks: BackendServicesCheck[];
  /** What -o json prints. */
  document: Record<string, unknown>;
}

export interface DecodeResult {
  kind: 'decode';
  decoded: DecodedJwt;
  times: TimeInfo[];
  isAssertion: boolean;
  checks: RuleCheck[];
  verification?: Verification;
}

export interface RegistrationResult {
  kind: 'registration';
  rows: RegistrationRow[];
  /** `registered` / `unregistered`: for the --verbose line. */
  verb: string;
}

export interface SearchResult {
  kind: 'search' | 'demo';
  pages: RenderablePages;
  options: Omit<StreamRenderOptions, 'format'>;
  /** Where the rows go, when not stdout itself (the progress line's wrapper). */
  stdout?: OutStream;
}

export interface ResourceResult {
  kind: 'resource';
  resource: Resource;
  /** The server's own text, printed as sent by -o json when piped. */
  text?: string;
  options: Omit<StreamRenderOptions, 'format'>;
}

export interface ExportSummaryResult {
  kind: 'exportSummary';
  summary: ExportSummary;
}

export interface ExportCancelResult {
  kind: 'exportCancel';
  statusUrl: string;
  status: number;
  outDir: string;
}
