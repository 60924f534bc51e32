/**
 * The one HTTP client (see client.ts) and what callers use around it. The parts:
 * - client.ts: createHttpClient: timeouts, retries with backoff and Retry-After, the request log;
 * - transport.ts: node:http(s) and its redirect loop, undici behind a proxy, private CAs;
 * - guard.ts: no credentials over plain http to another machine;
 * - network-errors.ts: a failure without a response, as one line naming the host;
 * - body.ts: decoding and the size caps of response bodies;
 * - summary.ts: what a server said, for an error line (OperationOutcome, OAuth error, text);
 * - status-error.ts: the generic "<METHOD> <url> answered <status>: <what it said>" error;
 * - headers.ts, types.ts: the shapes.
 */
export { createHttpClient } from './client.js';
export {
  DEFAULT_MAX_RESPONSE_BYTES,
  SMALL_RESPONSE_BYTES,
  maxResponseBytesOf,
  readBodyCapped,
  responseTooLarge,
} from './body.js';
export { isLoopbackHost } from './guard.js';
export { ResponseHeaders, type HeaderMap } from './headers.js';
export { networkError } from './network-errors.js';
export { statusError, type StatusErrorOptions } from './status-error.js';
export {
  describeErrorBody,
  oneLine,
  parseJsonBody,
  snippet,
  summarizeOperationOutcome,
  type OperationOutcomeIssue,
} from './summary.js';
export type {
  HttpClient,
  HttpClientOptions,
  HttpRequest,
  HttpResponse,
  RequestEvent,
} from './types.js';
