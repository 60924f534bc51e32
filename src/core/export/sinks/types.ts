import type { Readable, Writable } from 'node:stream';
import type { SmartError } from '../../errors.js';

/** What a destination knows about a complete file. */
export interface StoredFile {
  bytes: number;
  /** Object metadata (object stores); a directory has none. */
  meta?: Record<string, string>;
}

/** What goes with a file when it is made visible (object metadata in a bucket). */
export interface FileMeta {
  /** Lines counted on the way (resources), when counted. */
  lines?: number;
  /** The manifest (status URL, redacted) the file was listed in. */
  manifest: string;
  /** The file's URL in the manifest (redacted). */
  source: string;
}

/**
 * One file being written. Its bytes go to `stream` (with backpressure); ending the stream does
 * not make the file visible: `commit` does, after the last byte and the line count check.
 */
export interface SinkUpload {
  readonly stream: Writable;
  /** Bytes already there from an earlier attempt (opened with `append`); they come first. */
  readonly offset?: number;
  /** The partial bytes [start, end) read back (for the line count); default: the earlier ones. */
  existing?(start?: number, end?: number): Readable;
  commit(meta: FileMeta): Promise<void>;
  /**
   * Drop whatever was written; nothing becomes visible. Safe after a failure and twice. With
   * `keep`, a sink that can resume keeps the partial bytes for a later `append`.
   */
  abort(keep?: boolean): Promise<void>;
  /** Bytes on hand after a kept abort. */
  keptBytes?(): Promise<number>;
  /** After a kept abort: what the downloader needs to continue (e.g. the line count so far). */
  note?(text: string): Promise<void>;
}

/**
 * Where an export's files go: a directory, or a bucket/container prefix. Names are relative
 * (`Patient.000.ndjson`, `error/...`, `export.json`); the sink maps them to paths or keys.
 */
export interface Sink {
  readonly kind: 'directory' | 's3' | 'azure';
  /** The destination as the user gave it (a path or a URL), for messages and the summary. */
  readonly location: string;
  /** How messages name one file of the destination (a path, or a URL in the bucket). */
  describe(name: string): string;
  /** A new export: the destination must be new or empty. True when this created it. */
  prepare(display: string, onWarning?: (message: string) => void): Promise<boolean>;
  /**
   * Claim the destination for this run, so that two exports never write to it at once (a
   * resumed export; `prepare` claims a new one). Optional: a sink without it is not locked.
   */
  claim?(display: string, onWarning?: (message: string) => void): Promise<void>;
  /** Give up the claim (after the run, whatever its outcome). */
  release?(): Promise<void>;
  /** Undo a `prepare` that created the destination, when nothing was started. */
  discard(): Promise<void>;
  /** A small text file (export.json, manifest.json); undefined when it is not there. */
  readText(name: string): Promise<string | undefined>;
  /** Replace a small text file atomically. */
  writeText(name: string, text: string): Promise<void>;
  /** Every complete file under the destination, by name. */
  list(): Promise<Map<string, StoredFile>>;
  /** One complete file, with its metadata; undefined when it is not there. */
  stat(name: string): Promise<StoredFile | undefined>;
  /**
   * Start writing `name`; nothing is visible under that name until `commit`. With `append`, the
   * bytes kept from an earlier attempt stay and the new ones follow them. `expected` is the
   * metadata as far as it is known before the first byte (the manifest's count as `lines`).
   */
  open(name: string, options?: { append?: boolean; expected?: FileMeta }): Promise<SinkUpload>;
  /**
   * Bytes of `name` kept from an interrupted attempt (or run), which a download can continue
   * from with a Range request. Optional: a sink without it always starts from zero.
   */
  partial?(name: string): Promise<{ bytes: number; note?: string }>;
  /**
   * Remove leftovers of interrupted runs (partial files, unfinished uploads) for these names; a
   * sink with `partial` keeps the longest partial file of each for a ranged continuation.
   */
  sweep(names: string[]): Promise<void>;
  /** Read a complete file (error files, for the summary). */
  read(name: string): Promise<Readable>;
  /** A write failure that another attempt will not fix, worded for the user; else undefined. */
  fatal(e: unknown, name: string): SmartError | undefined;
  /** Release clients and sockets. */
  close(): Promise<void>;
}
