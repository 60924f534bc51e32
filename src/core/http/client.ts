import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { SmartError } from '../errors.js';
import { redactUrl } from '../redact.js';
import { backoffDelay, MAX_RETRY_AFTER_MS, parseRetryAfter, systemClock } from '../clock.js';
import {
  cappedStream,
  checkDeclaredLength,
  decodedBody,
  DEFAULT_MAX_RESPONSE_BYTES,
  readText,
  SMALL_RESPONSE_BYTES,
  type Cap,
} from './body.js';
import { refuseCleartextCredentials, lowerKeys } from './guard.js';
import { ResponseHeaders } from './headers.js';
import { NETWORK_RETRYABLE, networkError } from './network-errors.js';
import { parseJsonBody } from './summary.js';
import { createTransports } from './transport.js';
import type {
  HttpClient,
  HttpClientOptions,
  HttpRequest,
  HttpResponse,
  RequestEvent,
} from './types.js';

const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);
const RETRY_STATUS = new Set([429, 503]);

/**
 * The one HTTP client: node:http(s) with keep-alive agents, an optional private CA, proxy support
 * from the environment (undici's fetch, only then), timeouts, bounded retries with backoff and
 * Retry-After, and a redacted request log. Non-2xx answers are returned, not thrown: callers know
 * what an error means in their protocol.
 *
 * Not fetch: Node's fetch parses HTTP with a WebAssembly build of llhttp, and V8 finishes
 * optimising that module in the background before the process may exit (hundreds of ms after
 * the last byte on a busy machine), besides ~40 MB of memory. node:http parses in C++.
 */
export async function createHttpClient(options: HttpClientOptions = {}): Promise<HttpClient> {
  const env = options.env ?? {};
  const timeoutMs = options.timeoutMs ?? 30_000;
  const retries = options.retries ?? 3;
  const budget = options.retryBudgetMs ?? 60_000;
  const backoffMs = options.backoffMs ?? 500;
  const maxRetryAfter = options.maxRetryAfterMs ?? MAX_RETRY_AFTER_MS;
  const sleep = options.sleep ?? systemClock.sleep;
  const now = options.now ?? systemClock.now;
  const random = options.random ?? Math.random;
  const maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;

  const transports = await createTransports({ caFile: options.caFile, env });

  async function attempt(
    url: string,
    init: HttpRequest,
    method: string,
    n: number,
  ): Promise<HttpResponse> {
    const start = now();
    const controller = new AbortController();
    let timedOut = false;
    const timeout = init.timeoutMs ?? timeoutMs;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new Error('timeout'));
    }, timeout);
    const signals = [controller.signal, options.signal, init.signal].filter(
      Boolean,
    ) as AbortSignal[];
    const headers: Record<string, string> = {
      'user-agent': options.userAgent ?? 'smart',
      accept: '*/*',
      ...lowerKeys(init.headers ?? {}),
    };
    const body = init.body instanceof URLSearchParams ? init.body.toString() : init.body;
    if (body !== undefined && headers['content-type'] === undefined) {
      headers['content-type'] =
        init.body instanceof URLSearchParams
          ? 'application/x-www-form-urlencoded;charset=UTF-8'
          : 'text/plain;charset=UTF-8';
    }
    const capKind = init.sizeCap ?? (init.stream ? false : 'fhir');
    const cap: Cap | undefined =
      capKind === 'small'
        ? { bytes: SMALL_RESPONSE_BYTES, small: true }
        : capKind === 'fhir'
          ? { bytes: maxResponseBytes, small: false }
          : undefined;
    // Export files come as they are (as curl fetches them); other answers may be compressed.
    if (init.stream !== 'node') headers['accept-encoding'] ??= 'gzip, deflate';
    /** Log the answer and give it the common shape. */
    const answered = (
      r: Pick<HttpResponse, 'status' | 'url' | 'headers' | 'text' | 'nodeBody'>,
    ): HttpResponse => {
      options.onRequest?.(
        requestEvent(url, { method, status: r.status, ms: now() - start, attempt: n }),
      );
      const contentType = r.headers.get('content-type') ?? '';
      return {
        ...r,
        ok: r.status >= 200 && r.status < 300,
        contentType,
        json<T>(): T {
          return parseJsonBody<T>(r.text, contentType, url, r.status);
        },
      };
    };
    try {
      const signal = AbortSignal.any(signals);
      if (transports.proxied) {
        const { fetch, dispatcher } = await transports.proxied();
        const res = await fetch(url, {
          method,
          headers,
          body: body as never,
          signal,
          dispatcher,
        });
        const h = new ResponseHeaders(res.headers);
        const { Readable } = await import('node:stream');
        const stream = res.body
          ? Readable.fromWeb(res.body as unknown as NodeReadableStream<Uint8Array>)
          : Readable.from([]);
        const abort = () => controller.abort(new Error('response too large'));
        if (!h.get('content-encoding')) checkDeclaredLength(h.get('content-length'), url, cap);
        if (!init.stream)
          return answered({
            status: res.status,
            url,
            headers: h,
            text: await readText(stream, cap, url, abort),
          });
        return answered({
          status: res.status,
          url: res.url || url,
          headers: h,
          text: '',
          nodeBody: cap ? await cappedStream(stream, cap, url, abort) : stream,
        });
      }
      const sent = await transports.nodeRequest(
        url,
        method,
        headers,
        body as Buffer | string | undefined,
        signal,
      );
      const h = new ResponseHeaders(sent.res.headers);
      // Past the cap, the socket goes: a body that never ends is not read to its end.
      const abort = () => sent.res.destroy();
      try {
        checkDeclaredLength(sent.res.headers['content-length'], url, cap);
      } catch (e) {
        abort();
        throw e;
      }
      const decoded = await decodedBody(sent.res, sent.method);
      const status = sent.res.statusCode ?? 0;
      if (!init.stream)
        return answered({
          status,
          url,
          headers: h,
          text: await readText(decoded, cap, url, abort),
        });
      return answered({
        status,
        url: init.stream === 'node' ? sent.url : url,
        headers: h,
        text: '',
        nodeBody: cap ? await cappedStream(decoded, cap, url, abort) : decoded,
      });
    } catch (e) {
      const aborted = options.signal?.aborted || init.signal?.aborted;
      if (aborted)
        throw (options.signal?.aborted ? options.signal.reason : init.signal?.reason) ?? e;
      if (e instanceof SmartError) throw e;
      const err = networkError(e, url, timedOut, timeout);
      options.onRequest?.(
        requestEvent(url, {
          method,
          error: err.code ?? 'error',
          ms: now() - start,
          attempt: n,
        }),
      );
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    async request(url, init = {}) {
      if (!options.allowInsecureHttp) refuseCleartextCredentials(url, init);
      const method = (init.method ?? 'GET').toUpperCase();
      const retryable = init.retry ?? IDEMPOTENT.has(method);
      const first = now();
      for (let n = 1; ; n++) {
        const canRetry = () => retryable && n <= retries && now() - first < budget;
        let res: HttpResponse;
        try {
          res = await attempt(url, init, method, n);
        } catch (e) {
          if (
            e instanceof SmartError &&
            e.kind === 'network' &&
            NETWORK_RETRYABLE.has(e.code ?? '') &&
            canRetry()
          ) {
            await sleep(backoffDelay(n - 1, { baseMs: backoffMs, random }), options.signal);
            continue;
          }
          // "within 2s" after 4 attempts of 2 s each: say how many there were.
          if (e instanceof SmartError && e.code === 'ETIMEDOUT' && n > 1) {
            throw new SmartError(e.kind, `${e.message} (${n} attempts)`, {
              cause: e.cause,
              code: e.code,
              hint: e.hint,
            });
          }
          throw e;
        }
        if (RETRY_STATUS.has(res.status) && canRetry()) {
          const after = parseRetryAfter(res.headers.get('retry-after'), now());
          const delay = Math.min(
            after ?? backoffDelay(n - 1, { baseMs: backoffMs, random }),
            maxRetryAfter,
          );
          if (now() - first + delay < budget) {
            // Free the connection before waiting.
            res.nodeBody?.destroy();
            await sleep(delay, options.signal);
            continue;
          }
        }
        return res;
      }
    },
  };
}

/** A request's event, its URL redacted when first read: most runs log no request line. */
function requestEvent(url: string, fields: Omit<RequestEvent, 'url'>): RequestEvent {
  let shown: string | undefined;
  return {
    ...fields,
    get url() {
      return (shown ??= redactUrl(url));
    },
  };
}
