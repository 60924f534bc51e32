import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { SmartError, type ErrorKind, type SystemErrorCode } from './errors.js';
import { redactUrl, redactText } from './redact.js';
import {
  backoffDelay,
  type Clock,
  MAX_RETRY_AFTER_MS,
  parseRetryAfter,
  systemClock,
} from './clock.js';
import { tryJson } from './json.js';

export interface RequestEvent {
  method: string;
  /** Redacted URL: safe to print. */
  url: string;
  status?: number;
  /** A short network error code when there was no response. */
  error?: string;
  ms: number;
  attempt: number;
}

export interface HttpClientOptions {
  timeoutMs?: number;
  userAgent?: string;
  /** A PEM bundle trusted in addition to the system CAs (and NODE_EXTRA_CA_CERTS). */
  caFile?: string;
  /**
   * Let credentials (an Authorization header, a client assertion) go over plain http to a host
   * that is not loopback. Off by default: a bearer token in clear text is a token given away.
   */
  allowInsecureHttp?: boolean;
  /** Environment for proxies (HTTPS_PROXY, HTTP_PROXY, NO_PROXY) and NODE_EXTRA_CA_CERTS. */
  env?: Record<string, string | undefined>;
  /** Aborts every request (Ctrl-C). */
  signal?: AbortSignal;
  /** Retries after the first attempt for retryable failures. */
  retries?: number;
  /** No retry is started once this much time has passed since the first attempt. */
  retryBudgetMs?: number;
  /** Base of the exponential backoff. */
  backoffMs?: number;
  /** A Retry-After above this is clamped to it. */
  maxRetryAfterMs?: number;
  onRequest?: (event: RequestEvent) => void;
  /**
   * The largest body read into memory (FHIR pages, reads, manifests, error bodies), in bytes:
   * default 256 MiB (`--max-response`). See HttpRequest.sizeCap.
   */
  maxResponseBytes?: number;
  /** Injectable for tests (the run's clock: see clock.ts). */
  sleep?: Clock['sleep'];
  now?: Clock['now'];
  random?: () => number;
}

export interface HttpRequest {
  method?: string;
  headers?: Record<string, string>;
  body?: string | URLSearchParams | Uint8Array;
  /** Retry network errors, 429 and 503. Default: true for GET, HEAD, PUT, DELETE, OPTIONS. */
  retry?: boolean;
  signal?: AbortSignal;
  timeoutMs?: number;
  /**
   * Return the body as a Node stream (`nodeBody`); the timeout then covers only the headers.
   * `'node'`, for large downloads (export files): the body as the server sends it (no
   * Accept-Encoding is offered), and `url` is where the redirects ended. Redirects are followed;
   * the Authorization header never leaves the origin.
   */
  stream?: boolean | 'node';
  /**
   * A cap on the body, checked while it is read: past it the socket is destroyed and the read
   * fails with "response from <url> is over N MiB" (exit 1). `'fhir'` is the client's
   * maxResponseBytes (default 256 MiB), `'small'` 1 MiB (token and discovery answers), `false`
   * none. Default: `'fhir'` for a buffered body, `false` for a streamed one (`smart api`, export
   * files); a streamed body with a cap fails while it is consumed.
   */
  sizeCap?: 'fhir' | 'small' | false;
}

export interface HttpResponse {
  status: number;
  ok: boolean;
  /** The URL asked for (for `stream: 'node'`, where the redirects ended). */
  url: string;
  headers: HeaderMap;
  contentType: string;
  /** The body as text (empty for streamed responses). */
  text: string;
  /** The body as a Node stream, for `stream: true` or `'node'`. */
  nodeBody?: Readable;
  /** Parse the body as JSON, or fail with a message naming the URL and content type. */
  json<T = unknown>(): T;
}

export interface HttpClient {
  request(url: string, init?: HttpRequest): Promise<HttpResponse>;
}

const REDIRECT_STATUS = new Set([301, 302, 303, 307, 308]);

/** 127.0.0.0/8, ::1, 0.0.0.0, localhost and *.localhost: traffic that never leaves the machine. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return (
    h === 'localhost' ||
    h === '0.0.0.0' ||
    h.endsWith('.localhost') ||
    h === '::1' ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) ||
    /^::ffff:127\./.test(h)
  );
}

/**
 * SMART requires TLS: a token, an assertion or an admin password is never sent over plain http
 * to another machine unless the user says so (--insecure), e.g. on a private docker network.
 */
function refuseCleartextCredentials(url: string, init: HttpRequest): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return; // the request itself reports the bad URL
  }
  if (u.protocol !== 'http:' || isLoopbackHost(u.hostname)) return;
  const auth = lowerKeys(init.headers ?? {}).authorization;
  const body =
    typeof init.body === 'string' || init.body instanceof URLSearchParams ? String(init.body) : '';
  const what = auth
    ? /^basic /i.test(auth)
      ? 'admin credentials'
      : 'an access token'
    : /(^|&)client_assertion=/.test(body)
      ? 'a client assertion'
      : undefined;
  if (!what) return;
  throw new SmartError('usage', `refusing to send ${what} over plain http to ${u.host}`, {
    code: 'insecure_http',
    hint: 'use an https:// URL; on a trusted private network (e.g. a docker network) pass --insecure or set SMART_INSECURE=1',
  });
}
const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);
const RETRY_STATUS = new Set([429, 503]);

function hostOf(url: string): string {
  try {
    const u = new URL(url);
    return u.host || url;
  } catch {
    return url;
  }
}

function errorCodes(e: unknown): string[] {
  const codes: string[] = [];
  let cur: unknown = e;
  for (let i = 0; cur && i < 8; i++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string') codes.push(code);
    const errors = (cur as { errors?: unknown }).errors;
    if (Array.isArray(errors)) for (const inner of errors) codes.push(...errorCodes(inner));
    cur = (cur as { cause?: unknown }).cause;
  }
  return codes;
}

const TLS_CODES = /CERT|SELF_SIGNED|TLS|SSL|UNABLE_TO_(GET|VERIFY)|ERR_TLS/;

/** Map a failure without a response to a one-line SmartError that names the host. */
export function networkError(
  e: unknown,
  url: string,
  timedOut: boolean,
  timeoutMs: number,
): SmartError {
  const host = hostOf(url);
  if (timedOut) {
    return new SmartError(
      'network',
      `no response from ${host} within ${timeoutMs < 1000 ? `${timeoutMs}ms` : `${Math.round(timeoutMs / 1000)}s`}`,
      {
        cause: e,
        code: 'ETIMEDOUT',
        hint: 'the server may be slow or unreachable; raise --timeout or check the URL',
      },
    );
  }
  const codes = errorCodes(e);
  const code = (codes.find((c) => c !== 'UND_ERR' && c !== 'ERR_INVALID_ARG_TYPE') ?? codes[0]) as
    SystemErrorCode | undefined;
  const has = (c: string) => codes.includes(c);
  let message: string;
  let hint = 'check the URL and that the server is running and reachable from this machine';
  let kind: ErrorKind = 'network';
  if (has('ECONNREFUSED')) message = `cannot connect to ${host}: connection refused`;
  else if (has('ENOTFOUND') || has('EAI_AGAIN')) {
    message = `cannot resolve host ${new URL(url).hostname} (DNS lookup failed)`;
    hint = 'check the host name in the URL, and your network or proxy (HTTPS_PROXY)';
  } else if (has('ECONNRESET') || has('UND_ERR_SOCKET') || has('EPIPE')) {
    message = `connection to ${host} was closed unexpectedly`;
  } else if (has('ETIMEDOUT') || has('UND_ERR_CONNECT_TIMEOUT') || has('UND_ERR_HEADERS_TIMEOUT')) {
    message = `connection to ${host} timed out`;
  } else if (has('EHOSTUNREACH') || has('ENETUNREACH')) {
    message = `cannot reach ${host}: no route to host`;
  } else if (codes.some((c) => TLS_CODES.test(c))) {
    const tls = codes.find((c) => TLS_CODES.test(c));
    message = `TLS verification failed for ${host} (${tls})`;
    hint =
      'for a private CA, pass --ca-file <pem> or set NODE_EXTRA_CA_CERTS; verification is never turned off';
  } else if (has('ERR_INVALID_URL') || (e instanceof TypeError && /invalid url/i.test(e.message))) {
    message = `invalid URL: ${redactUrl(url)}`;
    kind = 'usage';
    hint = 'URLs must be absolute, e.g. https://server.example.com/fhir';
  } else if (deepestMessage(e) === 'bad port') {
    // fetch refuses the ports of the WHATWG "bad ports" list (1, 6000, 6665-6669, 10080, ...).
    message = `cannot connect to ${host}: fetch refuses port ${new URL(url).port} (a blocked "bad port")`;
    hint = 'run the server on another port, e.g. 8080';
  } else {
    message = `request to ${host} failed: ${redactText(deepestMessage(e))}`;
  }
  return new SmartError(kind, message, { cause: e, code, hint });
}

/** The innermost message of a cause chain: `fetch failed` says less than what caused it. */
function deepestMessage(e: unknown): string {
  let cur = e as { message?: unknown; cause?: unknown } | undefined;
  let message = String((e as Error)?.message ?? e);
  for (let depth = 0; cur && depth < 10; depth++) {
    if (typeof cur.message === 'string' && cur.message) message = cur.message;
    cur = cur.cause as typeof cur;
  }
  return message;
}

const NETWORK_RETRYABLE = new Set([
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'EAI_AGAIN',
]);

async function readCaBundle(path: string, what: string): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new SmartError(
      'usage',
      `cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      {
        cause: e,
        hint: 'give a readable PEM file of CA certificates',
      },
    );
  }
  // A file without one certificate would silently trust nothing more: say so.
  if (!text.includes('-----BEGIN CERTIFICATE-----')) {
    throw new SmartError('usage', `${what} ${path} holds no PEM certificate`, {
      code: 'bad_ca_file',
      hint: 'give a PEM file of CA certificates (-----BEGIN CERTIFICATE----- blocks)',
    });
  }
  return text;
}

/** What callers read of response headers (fetch's Headers fits too). */
export interface HeaderMap {
  get(name: string): string | null;
  has(name: string): boolean;
  forEach(callback: (value: string, name: string) => void): void;
}

/**
 * Response headers, lower-case names, iterated in name order (as fetch's Headers are). A small
 * class of our own: the global Headers would load Node's whole bundled fetch stack.
 */
export class ResponseHeaders implements HeaderMap, Iterable<[string, string]> {
  private readonly map = new Map<string, string>();

  constructor(init?: Iterable<[string, string]> | Record<string, string | string[] | undefined>) {
    if (!init) return;
    const pairs: Iterable<[string, string | string[] | undefined]> =
      Symbol.iterator in init
        ? (init as Iterable<[string, string]>)
        : Object.entries(init as Record<string, string | string[] | undefined>);
    for (const [k, v] of pairs) {
      if (Array.isArray(v)) for (const one of v) this.append(k, one);
      else if (v !== undefined) this.append(k, v);
    }
  }

  append(name: string, value: string): void {
    const k = name.toLowerCase();
    const had = this.map.get(k);
    this.map.set(k, had === undefined ? value : `${had}, ${value}`);
  }

  get(name: string): string | null {
    return this.map.get(name.toLowerCase()) ?? null;
  }

  has(name: string): boolean {
    return this.map.has(name.toLowerCase());
  }

  forEach(callback: (value: string, name: string) => void): void {
    for (const [k, v] of this) callback(v, k);
  }

  *[Symbol.iterator](): IterableIterator<[string, string]> {
    yield* [...this.map].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }
}

type NodeHttp = typeof import('node:http');
type Transport = { request: NodeHttp['request']; agent: import('node:http').Agent };

/** A response body in the content coding the server applied, decoded (gzip, deflate, br). */
async function decodedBody(res: IncomingMessage, method: string): Promise<Readable> {
  const coding = (res.headers['content-encoding'] ?? '').trim().toLowerCase();
  const status = res.statusCode ?? 0;
  if (!coding || coding === 'identity' || method === 'HEAD' || status === 204 || status === 304)
    return res;
  const zlib = await import('node:zlib');
  // Lenient about a truncated end, as browsers (and fetch) are.
  const flush = { flush: zlib.constants.Z_SYNC_FLUSH, finishFlush: zlib.constants.Z_SYNC_FLUSH };
  const decoder =
    coding === 'gzip' || coding === 'x-gzip'
      ? zlib.createGunzip(flush)
      : coding === 'deflate'
        ? zlib.createInflate(flush)
        : coding === 'br'
          ? zlib.createBrotliDecompress({
              flush: zlib.constants.BROTLI_OPERATION_FLUSH,
              finishFlush: zlib.constants.BROTLI_OPERATION_FLUSH,
            })
          : undefined;
  if (!decoder) return res;
  const { pipeline } = await import('node:stream');
  return pipeline(res, decoder, () => undefined);
}

const MIB = 1024 * 1024;
export const DEFAULT_MAX_RESPONSE_BYTES = 256 * MIB;
/** Token and discovery answers are a few hundred bytes: 1 MiB is plenty. */
export const SMALL_RESPONSE_BYTES = MIB;

/** A size cap in force for one response. */
interface Cap {
  bytes: number;
  small: boolean;
}

/** "response from <url> is over N MiB", exit 1. */
export function responseTooLarge(url: string, cap: Cap): SmartError {
  const mib = Number((cap.bytes / MIB).toFixed(3));
  return new SmartError('http', `response from ${redactUrl(url)} is over ${mib} MiB`, {
    code: 'response_too_large',
    hint: cap.small
      ? 'a token or discovery answer is never this big: check the URL (is it the token endpoint or FHIR base?)'
      : `raise --max-response <MiB> (SMART_MAX_RESPONSE, now ${mib}), or use \`smart api\`, which streams the body`,
  });
}

/** Content-Length above the cap: no need to read a byte. */
function checkDeclaredLength(length: string | null | undefined, url: string, cap?: Cap): void {
  if (!cap || !length || !/^\d+$/.test(length.trim())) return;
  if (Number(length) > cap.bytes) throw responseTooLarge(url, cap);
}

/**
 * The whole body, decoded as UTF-8 (a BOM dropped), as fetch's text() does. Past the cap,
 * `abort` frees the connection and the read fails: the memory held stays bounded.
 */
async function readText(
  body: Readable,
  cap: Cap | undefined,
  url: string,
  abort: () => void,
): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    total += (chunk as Buffer).length;
    if (cap && total > cap.bytes) {
      chunks.length = 0;
      abort();
      body.destroy();
      throw responseTooLarge(url, cap);
    }
    chunks.push(chunk as Buffer);
  }
  return new TextDecoder().decode(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
}

/** The `maxResponse` setting (MiB, as text) in bytes; the default when unset. */
export function maxResponseBytesOf(mib: string | undefined): number {
  return mib ? Math.round(Number(mib) * MIB) : DEFAULT_MAX_RESPONSE_BYTES;
}

/**
 * A streamed body read whole (an error body shown by `smart api`), within `maxBytes` like any
 * buffered answer.
 */
export function readBodyCapped(body: Readable, url: string, maxBytes: number): Promise<string> {
  return readText(body, { bytes: maxBytes, small: false }, url, () => body.destroy());
}

/** A streamed body that fails (and frees the connection) once it passes the cap. */
async function cappedStream(
  body: Readable,
  cap: Cap,
  url: string,
  abort: () => void,
): Promise<Readable> {
  const { Transform, pipeline } = await import('node:stream');
  let total = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      total += chunk.length;
      if (total > cap.bytes) {
        abort();
        body.destroy();
        done(responseTooLarge(url, cap));
        return;
      }
      done(null, chunk);
    },
  });
  // pipeline: destroying the result (a page released early) also frees the connection.
  return pipeline(body, counter, () => undefined);
}

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

  let connect: { ca: string[] } | undefined;
  if (options.caFile) {
    // Replacing `ca` drops the defaults, so put the system roots (and NODE_EXTRA_CA_CERTS) back.
    // node:tls only when a CA file is given: it costs a few ms on every start otherwise.
    const { rootCertificates } = await import('node:tls');
    const ca = [...rootCertificates, await readCaBundle(options.caFile, 'CA file')];
    if (env.NODE_EXTRA_CA_CERTS)
      ca.push(await readCaBundle(env.NODE_EXTRA_CA_CERTS, 'NODE_EXTRA_CA_CERTS file'));
    connect = { ca };
  }
  const proxyEnv = {
    httpProxy: env.HTTP_PROXY ?? env.http_proxy,
    httpsProxy: env.HTTPS_PROXY ?? env.https_proxy,
    noProxy: env.NO_PROXY ?? env.no_proxy,
  };
  const useProxy = Boolean(proxyEnv.httpProxy || proxyEnv.httpsProxy);

  // With a proxy: the undici package's fetch and its EnvHttpProxyAgent (~40 ms to load).
  // Plain http goes to an http proxy in absolute form, as curl does (many proxies allow CONNECT
  // to port 443 only); https is tunnelled with CONNECT, and the private CA, if any, verifies
  // both the server at the end of the tunnel and an https proxy.
  type Undici = typeof import('undici');
  let proxied:
    { fetch: Undici['fetch']; dispatcher: InstanceType<Undici['Dispatcher']> } | undefined;
  async function proxyFetch() {
    if (!proxied) {
      const undici = await import('undici');
      proxied = {
        fetch: undici.fetch,
        dispatcher: new undici.EnvHttpProxyAgent({
          ...proxyEnv,
          proxyTunnel: false,
          ...(connect ? { connect, requestTls: connect, proxyTls: connect } : {}),
        }),
      };
    }
    return proxied;
  }

  // node:http(s) with keep-alive agents, loaded on the first request. Node unrefs idle pooled
  // sockets, so they never hold the exit.
  let transports: Record<string, Transport> | undefined;
  async function nodeTransports(): Promise<Record<string, Transport>> {
    if (!transports) {
      const [http, https] = await Promise.all([import('node:http'), import('node:https')]);
      transports = {
        'http:': { request: http.request, agent: new http.Agent({ keepAlive: true }) },
        'https:': {
          request: https.request,
          agent: new https.Agent({ keepAlive: true, ...(connect ? { ca: connect.ca } : {}) }),
        },
      };
    }
    return transports;
  }

  /**
   * A request over node:http(s), following up to 20 redirects as fetch does: 303 (and 301/302
   * after a POST) become a GET without a body; the Authorization header and cookies never leave
   * the origin.
   */
  async function nodeRequest(
    url: string,
    method: string,
    headers: Record<string, string>,
    body: Buffer | string | undefined,
    signal: AbortSignal,
  ): Promise<{ res: IncomingMessage; url: string; method: string }> {
    const byScheme = await nodeTransports();
    let current = new URL(url);
    let hdrs = { ...headers };
    let payload = body;
    for (let hop = 0; ; hop++) {
      const transport = byScheme[current.protocol];
      if (!transport) {
        throw new SmartError('usage', `invalid URL: ${redactUrl(current.href)}`, {
          code: 'ERR_INVALID_URL',
          hint: 'URLs must be absolute http(s) URLs',
        });
      }
      if (payload !== undefined) hdrs['content-length'] = String(Buffer.byteLength(payload));
      const res = await new Promise<IncomingMessage>((resolve, reject) => {
        const req = transport.request(
          current,
          { method, headers: hdrs, signal, agent: transport.agent },
          resolve,
        );
        req.on('error', reject);
        req.end(payload);
      });
      const status = res.statusCode ?? 0;
      const location = res.headers.location;
      if (REDIRECT_STATUS.has(status) && location && hop < 20) {
        res.resume();
        const next = new URL(location, current);
        // A bearer token is for its own server: never for storage a file URL redirects to.
        if (next.origin !== current.origin) {
          const { authorization: _a, cookie: _c, ...rest } = hdrs;
          hdrs = rest;
        }
        if (
          (status === 303 && method !== 'HEAD') ||
          ((status === 301 || status === 302) && method === 'POST')
        ) {
          method = 'GET';
          payload = undefined;
          const { 'content-length': _l, 'content-type': _t, ...rest } = hdrs;
          hdrs = rest;
        }
        current = next;
        continue;
      }
      return { res, url: current.href, method };
    }
  }

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
      options.onRequest?.({
        method,
        url: redactUrl(url),
        status: r.status,
        ms: now() - start,
        attempt: n,
      });
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
      if (useProxy) {
        const { fetch, dispatcher } = await proxyFetch();
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
      const sent = await nodeRequest(
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
      options.onRequest?.({
        method,
        url: redactUrl(url),
        error: err.code ?? 'error',
        ms: now() - start,
        attempt: n,
      });
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

function lowerKeys(h: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) out[k.toLowerCase()] = v;
  return out;
}

/** Text on one line: runs of whitespace (newlines included) become one space. */
export function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/** The first characters of a body, on one line, for an error message. */
export function snippet(text: string, max = 200): string {
  const one = oneLine(redactText(text));
  return one.length > max ? `${one.slice(0, max)}…` : one;
}

export function parseJsonBody<T>(
  text: string,
  contentType: string,
  url: string,
  status: number,
): T {
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    const type = contentType.split(';')[0] || 'no content type';
    throw new SmartError(
      'http',
      text.trim() === ''
        ? `expected JSON from ${redactUrl(url)} but the ${status} response was empty`
        : `expected JSON from ${redactUrl(url)} but got ${type} (HTTP ${status}): ${snippet(text)}`,
      {
        cause: e,
        status,
        code: 'not_json',
        hint: 'is this the right URL? a proxy or web server may be answering instead of the FHIR/OAuth server',
      },
    );
  }
}

export interface OperationOutcomeIssue {
  severity?: string;
  code?: string;
  diagnostics?: string;
  details?: { text?: string; coding?: Array<{ code?: string; display?: string }> };
  expression?: string[];
}

/** "error invalid: diagnostics" for each issue of an OperationOutcome, or undefined. */
export function summarizeOperationOutcome(body: unknown): string | undefined {
  if (!body || typeof body !== 'object') return undefined;
  const oo = body as { resourceType?: string; issue?: OperationOutcomeIssue[] };
  if (oo.resourceType !== 'OperationOutcome' || !Array.isArray(oo.issue)) return undefined;
  const parts = oo.issue.map((i) => {
    const text = i.diagnostics ?? i.details?.text ?? i.details?.coding?.[0]?.display ?? '';
    const where = i.expression?.length ? ` at ${i.expression.join(', ')}` : '';
    return `${[i.severity, i.code].filter(Boolean).join(' ')}${text ? `: ${text}` : ''}${where}`;
  });
  return parts.length ? parts.join('; ') : 'OperationOutcome without issues';
}

/** A summary of a non-2xx body: OAuth error, OperationOutcome, other JSON, or text. */
export function describeErrorBody(res: HttpResponse): string {
  const body = tryJson(res.text);
  // Servers echo what they were sent: a summary goes through the redactor, on one line.
  const oo = summarizeOperationOutcome(body);
  if (oo) return oneLine(redactText(oo));
  if (body && typeof body === 'object') {
    const b = body as Record<string, unknown>;
    if (typeof b.error === 'string') {
      const text = `${b.error}${typeof b.error_description === 'string' ? `: ${b.error_description}` : ''}`;
      return oneLine(redactText(text));
    }
    if (typeof b.message === 'string') return redactText(b.message);
    return snippet(res.text);
  }
  if (res.text.trim() === '') return 'empty body';
  return `${res.contentType.split(';')[0] || 'no content type'}: ${snippet(res.text)}`;
}

/** A generic error for an unexpected status: names the method, URL, status and body summary. */
export function httpError(
  res: HttpResponse,
  method: string,
  extra: { kind?: ErrorKind; hint?: string } = {},
): SmartError {
  const kind: ErrorKind =
    extra.kind ?? (res.status === 401 || res.status === 403 ? 'auth' : 'http');
  return new SmartError(
    kind,
    `${method} ${redactUrl(res.url)} answered ${res.status}: ${describeErrorBody(res)}`,
    {
      status: res.status,
      hint: extra.hint,
      details: { body: tryJson(res.text) },
    },
  );
}
