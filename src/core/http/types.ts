/** The shapes of the HTTP client: options, a request, a response. */
import type { Readable } from 'node:stream';
import type { Clock } from '../clock.js';
import type { HeaderMap } from './headers.js';

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
