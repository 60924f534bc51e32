import { createWriteStream, promises as fs } from 'node:fs';
import { dirname, join } from 'node:path';
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
import { fileError } from '../fsutil.js';
import { LineCounter, countingStream } from './lines.js';
import { clamp, downloadBackoff, sleep as defaultSleep } from './timing.js';
import { parseRetryAfter } from '../http.js';
import type { ExportEvent, ExportSession, PlannedFile } from './types.js';

/** Statuses worth another attempt; anything else non-2xx is final. */
const RETRY_STATUS = new Set([408, 429, 500, 502, 503, 504]);
/** Local failures that another attempt will not fix. */
const LOCAL_FATAL = new Set(['ENOSPC', 'EDQUOT', 'EACCES', 'EPERM', 'EROFS', 'EISDIR', 'ENOTDIR']);

export interface DownloadOptions {
  file: PlannedFile;
  outDir: string;
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

export function partPath(outDir: string, name: string): string {
  return join(outDir, `${name}.part`);
}

/**
 * Download one manifest file to `<name>.part`, streaming with backpressure (memory stays flat
 * whatever the file size), counting lines on the way, then rename it into place. A broken
 * transfer is restarted from zero with backoff; a line count that differs from the manifest's
 * gets one more attempt and is then reported as a mismatch (the file is kept).
 */
export async function downloadFile(o: DownloadOptions): Promise<DownloadResult> {
  const { file } = o;
  const retries = o.retries ?? 5;
  const sleep = o.sleep ?? defaultSleep;
  const random = o.random ?? Math.random;
  const finalPath = join(o.outDir, file.name);
  const part = partPath(o.outDir, file.name);
  const countLines = o.countLines ?? true;
  const start = o.now();
  let mismatchRetried = false;
  await fs.mkdir(dirname(finalPath), { recursive: true, mode: 0o700 });
  o.onEvent({
    event: 'file-start',
    file: file.name,
    kind: file.kind,
    resourceType: file.type,
    ...(file.count !== undefined ? { count: file.count } : {}),
  });

  for (let attempt = 1; ; attempt++) {
    let result: { bytes: number; lines: number };
    try {
      result = await tryOnce(o, part);
    } catch (e) {
      await fs.rm(part, { force: true }).catch(() => undefined);
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
    const lines = result.lines;
    if (countLines && file.count !== undefined && lines !== file.count) {
      if (!mismatchRetried && attempt <= retries) {
        mismatchRetried = true;
        await fs.rm(part, { force: true });
        o.onEvent({
          event: 'file-retry',
          file: file.name,
          attempt: attempt + 1,
          delayMs: 0,
          reason: `${lines} lines, the manifest says ${file.count}`,
        });
        continue;
      }
      await fs.rename(part, finalPath);
      return {
        bytes: result.bytes,
        resources: lines,
        ms: o.now() - start,
        attempts: attempt,
        mismatch: { expected: file.count, actual: lines },
      };
    }
    await fs.rename(part, finalPath);
    return { bytes: result.bytes, resources: lines, ms: o.now() - start, attempts: attempt };
  }
}

async function request(o: DownloadOptions, init: HttpRequest): Promise<HttpResponse> {
  // requiresAccessToken false: pre-signed storage URLs; the token must not go there.
  if (o.requiresAccessToken) return o.session.request(o.file.url, init);
  const http = await o.http();
  return http.request(o.file.url, init);
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
  part: string,
): Promise<{ bytes: number; lines: number }> {
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
    await pipeline(
      res.nodeBody,
      countingStream(counter, onChunk),
      createWriteStream(part, { mode: 0o600 }),
      { signal },
    );
  } catch (e) {
    if (o.signal?.aborted) throw o.signal.reason ?? e;
    const code = systemErrorCode(e);
    if (code && LOCAL_FATAL.has(code)) throw fileError(e, part, 'write');
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
  return { bytes: counter.bytes, lines: counter.lines };
}

function describeStreamError(e: unknown): string {
  const code = systemErrorCode(e);
  const cause = (e as { cause?: { message?: string } })?.cause?.message;
  const msg = (e as Error)?.message ?? String(e);
  return [code, cause ?? msg].filter(Boolean).join(': ');
}
