import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { SmartError, isSmartError, systemErrorCode } from '../errors.js';
import {
  describeErrorBody,
  type HttpClient,
  type HttpRequest,
  type HttpResponse,
} from '../http.js';
import { redactUrl } from '../redact.js';
import { DirectorySink } from './sinks/directory.js';
import type { FileMeta, Sink, SinkUpload } from './sinks/types.js';
import { LineCounter, countingStream } from './lines.js';
import { clamp, downloadBackoff, sleep as defaultSleep } from './timing.js';
import { parseRetryAfter } from '../http.js';
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
 * completed upload) only when it is complete. A broken transfer is restarted from zero with
 * backoff; a line count that differs from the manifest's gets one more attempt and is then
 * reported as a mismatch (the file is kept).
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
  const meta = (lines: number): FileMeta => ({
    ...(countLines ? { lines } : {}),
    manifest: o.manifestUrl ?? '',
    source: redactUrl(file.url),
  });
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
      result = await tryOnce(o, sink);
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
          : downloadBackoff(attempt - 1, o.backoffMs ?? 500, random);
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
      if (!mismatchRetried && attempt <= retries) {
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
  if (o.requiresAccessToken) return o.session.request(o.file.url, init);
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
): Promise<{ bytes: number; lines: number; upload: SinkUpload }> {
  const { file } = o;
  const controller = new AbortController();
  const signals = [controller.signal, ...(o.signal ? [o.signal] : [])];
  const signal = AbortSignal.any(signals);
  let res: HttpResponse;
  try {
    res = await request(o, {
      headers: { accept: 'application/fhir+ndjson' },
      stream: 'node',
      retry: false,
      signal,
    });
  } catch (e) {
    if (o.signal?.aborted) throw o.signal.reason ?? e;
    if (isSmartError(e) && e.kind === 'network')
      throw new RetryableError(e.message, undefined, { cause: e });
    throw e;
  }
  if (!res.ok) {
    const text = await readSome(res.nodeBody);
    const full: HttpResponse = { ...res, text, nodeBody: undefined };
    if (RETRY_STATUS.has(res.status)) {
      const after = parseRetryAfter(res.headers.get('retry-after'), o.now());
      throw new RetryableError(`HTTP ${res.status}: ${describeErrorBody(full)}`, after);
    }
    if (res.status === 404 || res.status === 410) {
      throw new SmartError(
        'fhir',
        `export file ${file.name} is gone: GET ${redactUrl(file.url)} answered ${res.status}: ${describeErrorBody(full)}`,
        {
          status: res.status,
          code: 'file_gone',
          hint: "export files expire (see the manifest's Expires) and vanish when the export is deleted; start a new export",
        },
      );
    }
    throw o.session.error(full, 'GET');
  }
  if (!res.nodeBody) {
    throw new RetryableError(`GET ${redactUrl(file.url)} answered ${res.status} without a body`);
  }
  let upload: SinkUpload;
  try {
    upload = await sink.open(file.name);
  } catch (e) {
    res.nodeBody.destroy();
    throw sink.fatal(e, file.name) ?? e;
  }
  const counter = new LineCounter();
  const idleMs = o.idleTimeoutMs ?? 30_000;
  let stalled = false;
  const idle = setTimeout(() => {
    stalled = true;
    controller.abort(new Error('stalled'));
  }, idleMs);
  const interval = o.progressIntervalMs ?? 250;
  let lastProgress = o.now();
  const onChunk = () => {
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
    await pipeline(res.nodeBody, countingStream(counter, onChunk), upload.stream, { signal });
  } catch (e) {
    await upload.abort().catch(() => undefined);
    if (o.signal?.aborted) throw o.signal.reason ?? e;
    const fatal = sink.fatal(e, file.name);
    if (fatal) throw fatal;
    if (stalled) {
      throw new RetryableError(
        `no data for ${Math.round(idleMs / 1000)} s after ${counter.bytes} bytes`,
        undefined,
        {
          cause: e,
        },
      );
    }
    throw new RetryableError(
      `connection broke off after ${counter.bytes} bytes (${describeStreamError(e)})`,
      undefined,
      {
        cause: e,
      },
    );
  } finally {
    clearTimeout(idle);
  }
  return { bytes: counter.bytes, lines: counter.lines, upload };
}

function describeStreamError(e: unknown): string {
  const code = systemErrorCode(e);
  const cause = (e as { cause?: { message?: string } })?.cause?.message;
  const msg = (e as Error)?.message ?? String(e);
  return [code, cause ?? msg].filter(Boolean).join(': ');
}
