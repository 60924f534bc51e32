import type { HttpClient } from '../http/index.js';
import { DirectorySink } from './sinks/directory.js';
import type { Sink } from './sinks/types.js';
import type { PollBounds } from './timing.js';
import type { ExportEvent, ExportSession } from './types.js';

export const DEFAULT_PARALLEL = 4;
export const DEFAULT_WAIT_MS = 3_600_000;

export interface ExportRunOptions {
  session: ExportSession;
  /** The plain HTTP client, for files whose manifest says requiresAccessToken: false. */
  http: () => Promise<HttpClient>;
  /** The destination: a directory path, or the URL of a bucket prefix (with `sink`). */
  outDir: string;
  /** Where the files go; default: the directory `outDir`. */
  sink?: Sink;
  /** How messages and hints name outDir (e.g. relative to the working directory). */
  displayDir?: string;
  /** Downloads at once. Default 4. */
  parallel?: number;
  /** Overall limit for the job to complete (polling), from kick-off or resume. Default 1 h. */
  waitMs?: number;
  signal?: AbortSignal;
  now?: () => number;
  onEvent?: (e: ExportEvent) => void;
  /** A download attempt is abandoned when no byte arrives for this long. Default 30 s. */
  idleTimeoutMs?: number;
  pollBounds?: PollBounds;
  /** Attempts after the first for a broken download. Default 5. */
  retries?: number;
  backoffMs?: number;
  progressIntervalMs?: number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  random?: () => number;
  /**
   * Where the job's state goes when the destination cannot take it after the kick-off (e.g. a
   * dir in the cache), so that the job can still be resumed or cancelled.
   */
  stateFallbackDir?: string;
  /**
   * Origins besides the FHIR server's that may get the token for files whose manifest says
   * requiresAccessToken: true (--trust-origin, profile trustedOrigins).
   */
  trustedOrigins?: readonly string[];
}

/** One run of an export: its options, destination, clock and event sink. */
export interface Run {
  o: ExportRunOptions;
  sink: Sink;
  now: () => number;
  emit: (e: ExportEvent) => void;
  started: number;
}

export function makeRun(o: ExportRunOptions): Run {
  const now = o.now ?? Date.now;
  const sink = o.sink ?? new DirectorySink(o.outDir);
  return { o, sink, now, emit: o.onEvent ?? (() => undefined), started: now() };
}
