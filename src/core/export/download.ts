import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { SmartError, isSmartError, systemErrorCode } from '../errors.js';
import {
  describeErrorBody,
  statusError,
  type HttpClient,
  type HttpRequest,
  type HttpResponse,
} from '../http/index.js';
import { redactUrl } from '../redact.js';
import { DirectorySink } from './sinks/directory.js';
import type { FileMeta, Sink, SinkUpload } from './sinks/types.js';
import { LineCounter, countingStream, gunzipCountingStream, type LineCount } from './lines.js';
import { backoffDelay, parseRetryAfter, sleep as defaultSleep } from '../clock.js';
import { clamp } from './timing.js';
import type { ExportEvent, ExportSession, PlannedFile } from './types.js';

/** Statuses worth another attempt; anything else non-2xx is final. */
const RETRY_STATUS = new Set([408, 429, 500, 502, 503, 504]);

export interface DownloadOptions {
  file: PlannedFile;
  /** Where the file goes; or a directory by path. */
  sink?: Sink;
  outDir?: string;
  /** The manifest's URL (redacted), for the file's metadata. */
  manifestUrl?: string;

  /** From the manifest: send the Bearer token (through the session) or nothing at all. */
  requiresAccessToken: boolean;
  /** Origins besides the FHIR server's that the token may go to (--trust-origin). */
  trustedOrigins?: readonly string[];
  session: ExportSession;
  http: () => Promise<HttpClient>;
  signal?: AbortSignal;
  now: () => number;
  onEvent: (e: ExportEvent) => void;
  /** Attempts after the first for a broken download. Default 5. */
  retries?: number;
  backoffMs?: number;
  /** Abort an attempt when no byte arrives for this long. Default 30 s. */
  idleTimeoutMs?: number;
  /** At most one file-progress event per file per interval. Default 250 ms. */
  progressIntervalMs?: number;
  /** Count lines and compare with the manifest's count (off for compressed formats). */
  countLines?: boolean;
  /**
   * Download once more when the line count differs from the manifest's (default true). Off for
   * error[] files: servers put other counts there (the failed output's), so a differing count
   * is reported, never taken for a broken download.
   */
  retryMismatch?: boolean;
  /** The file is gzip-compressed NDJSON (kept as is): lines are counted through gunzip. */
  gzip?: boolean;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  random?: () => number;
}

export interface DownloadResult {
  bytes: number;
  resources: number;
  ms: number;
  attempts: number;
  mismatch?: { expected: number; actual: number };
}

/**
 * Whether a cut download can be continued: the server sent `Accept-Ranges: bytes` or answered a
 * Range request with 206; `validator` (a strong ETag, else Last-Modified) goes in If-Range so
 * that a file changed meanwhile is sent whole rather than spliced.
 */
interface RangeState {
  resumable: boolean;
  validator?: string;
}

/** `bytes <start>-<end>/<total>`: the start, or undefined when it is not that form. */
function contentRangeStart(value: string | null): number | undefined {
  const m = value ? /^bytes\s+(\d+)-\d+\/(\d+|\*)$/i.exec(value.trim()) : null;
  return m ? Number(m[1]) : undefined;
}

/** An attempt that failed in a way another attempt may fix. */
class RetryableError extends Error {
  constructor(
    message: string,
    readonly retryAfterMs?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export { partPath } from './sinks/directory.js';

/**
 * Download one manifest file into the sink, streaming with backpressure (memory stays flat
 * whatever the file size), counting lines on the way; the sink makes it visible (rename, or a
 * completed upload) only when it is complete. A broken transfer is tried again with backoff:
 * from the bytes already kept when the server takes ranges (Accept-Ranges: bytes, or a 206),
 * else from zero; a line count that differs from the manifest's gets one more attempt (unless
 * `retryMismatch` is false) and is then reported as a mismatch (the file is kept).
 */
export async function downloadFile(o: DownloadOptions): Promise<DownloadResult> {
  const { file } = o;
  const sink = o.sink ?? new DirectorySink(o.outDir ?? '.');
  const retries = o.retries ?? 5;
  const sleep = o.sleep ?? defaultSleep;
  const random = o.random ?? Math.random;
  const countLines = o.countLines ?? true;
  const start = o.now();
  let mismatchRetried = false;
  // What the server said about ranges, carried from one attempt to the next.
  const ranges: RangeState = { resumable: false };
  const meta = (lines: number): FileMeta => ({
    ...(countLines ? { lines } : {}),
    manifest: o.manifestUrl ?? '',
    source: redactUrl(file.url),
  });
  // What the metadata will say when the count matches: known before the first byte.
  const expected: FileMeta = {
    ...(countLines && file.count !== undefined ? { lines: file.count } : {}),
    manifest: o.manifestUrl ?? '',
    source: redactUrl(file.url),
  };
  o.onEvent({
    event: 'file-start',
    file: file.name,
    kind: file.kind,
    resourceType: file.type,
    ...(file.count !== undefined ? { count: file.count } : {}),
  });

  for (let attempt = 1; ; attempt++) {
    let result: { bytes: number; lines: number; upload: SinkUpload };
    try {
      result = await tryOnce(o, sink, ranges, expected);
    } catch (e) {
      if (o.signal?.aborted) throw o.signal.reason ?? e;
      if (!(e instanceof RetryableError) || attempt > retries) {
        throw e instanceof RetryableError
          ? new SmartError(
              'network',
              `download of ${file.name} failed after ${attempt} attempts: ${e.message}`,
              {
                cause: e.cause ?? e,
                code: 'download_failed',
                hint: 'the server or the network keeps failing; completed files are kept, try again later with --resume',
              },
            )
          : e;
      }
      const delay =
        e.retryAfterMs !== undefined
          ? clamp(e.retryAfterMs, 100, 60_000)
          : backoffDelay(attempt - 1, { baseMs: o.backoffMs ?? 500, random, jitter: 'half' });
      o.onEvent({
        event: 'file-retry',
        file: file.name,
        attempt: attempt + 1,
        delayMs: delay,
        reason: e.message,
      });
      await sleep(delay, o.signal);
      continue;
    }
    const { lines, upload } = result;
    if (countLines && file.count !== undefined && lines !== file.count) {
      if ((o.retryMismatch ?? true) && !mismatchRetried && attempt <= retries) {
        mismatchRetried = true;
        await upload.abort();
        o.onEvent({
          event: 'file-retry',
          file: file.name,
          attempt: attempt + 1,
          delayMs: 0,
          reason: `${lines} lines, the manifest says ${file.count}`,
        });
        continue;
      }
      await commit(o, sink, upload, meta(lines));
      return {
        bytes: result.bytes,
        resources: lines,
        ms: o.now() - start,
        attempts: attempt,
        mismatch: { expected: file.count, actual: lines },
      };
    }
    await commit(o, sink, upload, meta(lines));
    return { bytes: result.bytes, resources: lines, ms: o.now() - start, attempts: attempt };
  }
}

/** Make the file visible; a failure drops the upload (nothing half-written stays behind). */
async function commit(
  o: DownloadOptions,
  sink: Sink,
  upload: SinkUpload,
  meta: FileMeta,
): Promise<void> {
  try {
    await upload.commit(meta);
  } catch (e) {
    await upload.abort().catch(() => undefined);
    if (o.signal?.aborted) throw o.signal.reason ?? e;
    throw sink.fatal(e, o.file.name) ?? e;
  }
}

async function request(o: DownloadOptions, init: HttpRequest): Promise<HttpResponse> {
  // requiresAccessToken false: pre-signed storage URLs; the token must not go there.
  if (o.requiresAccessToken) {
    return o.session.request(o.file.url, init, { trustedOrigins: o.trustedOrigins ?? [] });
  }
  const http = await o.http();
  return http.request(o.session.reachable?.(o.file.url) ?? o.file.url, init);
}

/** Read at most `max` bytes of an error body, for the message. */
async function readSome(body: Readable | undefined, max = 64 * 1024): Promise<string> {
  if (!body) return '';
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      chunks.push(Buffer.from(chunk as Uint8Array));
      size += (chunk as Uint8Array).length;
      if (size >= max) break;
    }
  } catch {
    // A broken error body still gives a status to report.
  } finally {
    body.destroy();
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function tryOnce(
  o: DownloadOptions,
  sink: Sink,
  ranges: RangeState,
  expected: FileMeta,
): Promise<{ bytes: number; lines: number; upload: SinkUpload }> {
  const { file } = o;
  const controller = new AbortController();
  const signals = [controller.signal, ...(o.signal ? [o.signal] : [])];
  const signal = AbortSignal.any(signals);
  // Bytes kept from a cut attempt (or an interrupted run): ask for the rest only. A part left by
  // an earlier run is tried too; a server without ranges answers 200 and it starts over.
  const kept = sink.partial ? await sink.partial(file.name) : { bytes: 0 };
  const have = o.gzip ? 0 : kept.bytes;
  const headers: Record<string, string> = { accept: 'application/fhir+ndjson' };
  if (have > 0) {
    headers.range = `bytes=${have}-`;
    if (ranges.validator) headers['if-range'] = ranges.validator;
  }
  let res: HttpResponse;
  try {
    res = await request(o, { headers, stream: 'node', retry: false, signal });
  } catch (e) {
    if (o.signal?.aborted) throw o.signal.reason ?? e;
    if (isSmartError(e) && e.kind === 'network')
      throw new RetryableError(e.message, undefined, { cause: e });
    throw e;
  }
  if (res.status === 416 && have > 0) {
    // The kept bytes do not fit the file (it changed, or is shorter): start over.
    res.nodeBody?.destroy();
    const dropped = await sink.open(file.name);
    await dropped.abort();
    throw new RetryableError(`the server refused to continue at byte ${have} (416)`);
  }
  if (!res.ok) {
    const text = await readSome(res.nodeBody);
    const full: HttpResponse = { ...res, text, nodeBody: undefined };
    if (RETRY_STATUS.has(res.status)) {
      const after = parseRetryAfter(res.headers.get('retry-after'), o.now());
      throw new RetryableError(`HTTP ${res.status}: ${describeErrorBody(full)}`, after);
    }
    if (res.status === 404 || res.status === 410) {
      throw statusError('GET', file.url, full, {
        kind: 'fhir',
        prefix: `export file ${file.name} is gone:`,
        code: 'file_gone',
        hint: "export files expire (see the manifest's Expires) and vanish when the export is deleted; start a new export",
      });
    }
    throw o.session.error(full, 'GET');
  }
  if (!res.nodeBody) {
    throw new RetryableError(`GET ${redactUrl(file.url)} answered ${res.status} without a body`);
  }
  const partial = res.status === 206;
  if (partial && contentRangeStart(res.headers.get('content-range')) !== have) {
    // A range we did not ask for: never splice it in; start over without one.
    res.nodeBody.destroy();
    const dropped = await sink.open(file.name);
    await dropped.abort();
    throw new RetryableError(
      `asked for the bytes from ${have}, the server sent ${res.headers.get('content-range') ?? 'no Content-Range'}`,
    );
  }
  // A gzip file is counted through gunzip, which cannot start mid-stream: never resumed.
  ranges.resumable =
    !o.gzip && (partial || /\bbytes\b/i.test(res.headers.get('accept-ranges') ?? ''));
  const etag = res.headers.get('etag');
  ranges.validator =
    etag && !etag.startsWith('W/') ? etag : (res.headers.get('last-modified') ?? undefined);
  let upload: SinkUpload;
  let counter = new LineCounter();
  try {
    // 206: after the kept bytes; 200: the whole file again, from zero.
    upload = await sink.open(file.name, { append: partial, expected });
    const offset = upload.offset ?? 0;
    const noted = offset > 0 ? parseCount(kept.note) : undefined;
    if (noted?.bytes === offset) counter = LineCounter.from(noted);
    else if (offset > 0 && upload.existing) {
      for await (const chunk of upload.existing()) counter.push(chunk as Buffer);
    }
  } catch (e) {
    res.nodeBody.destroy();
    throw sink.fatal(e, file.name) ?? e;
  }
  const idleMs = o.idleTimeoutMs ?? 30_000;
  let stalled = false;
  const idle = setTimeout(() => {
    stalled = true;
    controller.abort(new Error('stalled'));
  }, idleMs);
  const interval = o.progressIntervalMs ?? 250;
  let lastProgress = o.now();
  // The count at recent chunk boundaries: after a cut, the count at the bytes that reached the
  // disk is found from the last one at or before them, without reading the file again.
  const marks: LineCount[] = [counter.snapshot()];
  const onChunk = () => {
    marks.push(counter.snapshot());
    if (marks.length > 256) marks.splice(0, 128);
    idle.refresh();
    const t = o.now();
    if (t - lastProgress >= interval) {
      lastProgress = t;
      o.onEvent({
        event: 'file-progress',
        file: file.name,
        bytes: counter.bytes,
        resources: counter.lines,
      });
    }
  };
  try {
    const count = o.gzip
      ? gunzipCountingStream(counter, onChunk)
      : countingStream(counter, onChunk);
    await pipeline(res.nodeBody, count, upload.stream, { signal });
  } catch (e) {
    const fatal = sink.fatal(e, file.name);
    // A cut transfer from a server that takes ranges: keep the bytes for the next attempt.
    const keep = ranges.resumable && !fatal;
    await upload.abort(keep).catch(() => undefined);
    if (keep) await noteCount(upload, marks).catch(() => undefined);
    if (o.signal?.aborted) throw o.signal.reason ?? e;
    if (fatal) throw fatal;
    const kept = ranges.resumable ? '; continuing from there' : '';
    if (stalled) {
      throw new RetryableError(
        `no data for ${Math.round(idleMs / 1000)} s after ${counter.bytes} bytes${kept}`,
        undefined,
        { cause: e },
      );
    }
    throw new RetryableError(
      `connection broke off after ${counter.bytes} bytes (${describeStreamError(e)})${kept}`,
      undefined,
      { cause: e },
    );
  } finally {
    clearTimeout(idle);
  }
  return { bytes: counter.bytes, lines: counter.lines, upload };
}

function parseCount(text: string | undefined): LineCount | undefined {
  if (!text) return undefined;
  try {
    const v = JSON.parse(text) as Partial<LineCount>;
    return Number.isSafeInteger(v.bytes) &&
      Number.isSafeInteger(v.lines) &&
      typeof v.pending === 'boolean'
      ? (v as LineCount)
      : undefined;
  } catch {
    return undefined;
  }
}

/** Note the line count at the bytes kept on disk, from the last mark at or before them. */
async function noteCount(upload: SinkUpload, marks: LineCount[]): Promise<void> {
  if (!upload.keptBytes || !upload.note || !upload.existing) return;
  const size = await upload.keptBytes();
  const mark = [...marks].reverse().find((m) => m.bytes <= size);
  if (!mark) return;
  const counter = LineCounter.from(mark);
  for await (const chunk of upload.existing(mark.bytes, size)) counter.push(chunk as Buffer);
  await upload.note(JSON.stringify(counter.snapshot()));
}

function describeStreamError(e: unknown): string {
  const code = systemErrorCode(e);
  const cause = (e as { cause?: { message?: string } })?.cause?.message;
  const msg = (e as Error)?.message ?? String(e);
  return [code, cause ?? msg].filter(Boolean).join(': ');
}
