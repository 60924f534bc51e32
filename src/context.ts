import type { Readable, Writable } from 'node:stream';
import type { HttpClient } from './core/http.js';
import type { Settings } from './core/settings.js';

export type OutputFormat = 'table' | 'json' | 'ndjson' | 'csv';

export type OutStream = Writable & { isTTY?: boolean; columns?: number };
export type InStream = Readable & { isTTY?: boolean };

export interface Streams {
  stdout: OutStream;
  stderr: OutStream;
  stdin: InStream;
}

/** Global options as Commander parsed them (flags only; the resolver adds env and profile). */
export interface GlobalOptions {
  profile?: string;
  output?: OutputFormat;
  json?: boolean;
  verbose?: boolean;
  debug?: boolean;
  color?: boolean;
  input?: boolean;
  timeout?: number;
  baseUrl?: string;
  fhirUrl?: string;
  tokenUrl?: string;
  serverUrl?: string;
  clientId?: string;
  key?: string;
  scope?: string;
  alg?: string;
  caFile?: string;
  insecure?: boolean;
}

export interface Logger {
  /** Progress and information for a person; always on stderr. */
  info(message: string): void;
  warn(message: string): void;
  /** Shown only with --verbose (one line per HTTP request and similar). */
  verbose(message: string): void;
  /** Shown only with --debug. */
  debug(message: string): void;
}

/**
 * One context per run: created by cli.ts (tests build their own), passed to every command.
 * Settings and the HTTP client are built lazily so that `--help` costs nothing.
 */
export interface Context {
  io: Streams;
  env: Record<string, string | undefined>;
  cwd: string;
  version: string;
  /** Milliseconds since the epoch; injectable for tests. */
  now(): number;
  /** Aborted on SIGINT/SIGTERM: long-running work stops cleanly. */
  signal: AbortSignal;
  globals: GlobalOptions;
  log: Logger;
  /** True when a prompt may be shown: stdin is a TTY and --no-input was not given. */
  interactive(): boolean;
  settings(): Promise<Settings>;
  http(): Promise<HttpClient>;
  /** The output format: --output, --json, or table on a TTY and json when piped. */
  outputFormat(): OutputFormat;
}
