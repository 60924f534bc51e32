import { SmartError, type ErrorKind, type SystemErrorCode } from '../errors.js';
import { redactText, redactUrl } from '../redact.js';

/** Failures without a response: what they mean, named by host, and which are worth a retry. */

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

/** Redirects followed for one request (as fetch does); one more is a loop. */
export const MAX_REDIRECTS = 20;

/** "<url> redirected more than 20 times": a server configuration problem, exit 1. */
export function redirectLoop(url: string, last?: string): SmartError {
  return new SmartError('http', `${redactUrl(url)} redirected more than ${MAX_REDIRECTS} times`, {
    code: 'redirect_loop',
    hint: `the server sends redirects in a loop${last ? ` (the last one to ${redactUrl(last)})` : ''}: check the URL, or the server's or proxy's configuration`,
  });
}

/** OpenSSL's words for a TLS handshake answered in plain text (an http:// port). */
const NOT_TLS = /WRONG_VERSION_NUMBER|wrong version number|packet length too long|http request/i;

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
  } else if (
    codes.includes('ERR_SSL_WRONG_VERSION_NUMBER') ||
    (url.startsWith('https:') && NOT_TLS.test(deepestMessage(e)))
  ) {
    // An https:// URL for a port that speaks plain http: not a certificate problem.
    message = `the server at ${host} does not speak TLS on this port (try http://)`;
    kind = 'network';
    hint = `if it is a plain http server, use ${redactUrl(url.replace(/^https:/, 'http:'))}; otherwise check the port`;
  } else if (/redirect count exceeded/i.test(deepestMessage(e))) {
    return redirectLoop(url);
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

/** Network failures a retry may get past. */
export const NETWORK_RETRYABLE = new Set([
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'EAI_AGAIN',
]);
