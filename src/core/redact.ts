/**
 * Redaction for anything that may reach a log line: tokens, assertions, secrets. The rule is
 * simple on purpose: a JWT-shaped string or a secret-named parameter never leaves in clear.
 */
// Not `code`: in FHIR it is the most common search parameter (Observation?code=...), and a
// backend-services client never handles an OAuth authorization code.
// Includes the signatures of pre-signed storage URLs (Azure SAS `sig`, S3, GCS): a working
// signed URL is as good as a token for whoever reads the log.
const SECRET_PARAMS =
  /^(access_token|id_token|refresh_token|client_assertion|client_secret|password|secret|token|assertion|sig|signature|x-amz-signature|x-amz-security-token|x-goog-signature|x-goog-credential)$/i;

const JWT = /\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;

/** Shorten a secret for display: enough to recognise it, not enough to use it. */
export function shorten(secret: string): string {
  if (secret.length <= 12) return '***';
  return `${secret.slice(0, 6)}…${secret.slice(-4)} (${secret.length} chars)`;
}

/**
 * A client id for a log line, a hint or a --verbose line: whole when short, else its head and
 * tail (`eyJhbGci…OQw`). Some servers assign 800-character JWT-like ids; print them whole only
 * where asked (`smart config get clientId`, register-client's answer).
 */
export function shortId(id: string): string {
  return id.length <= 40 ? id : `${id.slice(0, 8)}…${id.slice(-3)}`;
}

export function redactUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return redactText(url);
  }
  if (u.username || u.password) {
    u.username = u.username ? '***' : '';
    u.password = u.password ? '***' : '';
  }
  for (const key of [...u.searchParams.keys()]) {
    if (SECRET_PARAMS.test(key)) u.searchParams.set(key, '***');
  }
  return redactText(u.toString());
}

export function redactText(text: string): string {
  return text
    .replace(JWT, '[redacted JWT]')
    .replace(/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi, '$1 [redacted]')
    .replace(
      /((?:access_token|id_token|refresh_token|client_assertion|client_secret|password|secret)["']?\s*[:=]\s*["']?)(?!\[redacted)[^"'&\s,}]+/gi,
      '$1[redacted]',
    );
}

// The characters a secret, a token or a Base64 credential is made of: a secret is masked only
// where it stands alone, so a short one (`x`) never garbles other words (`text/html`).
const VALUE_CHAR = 'A-Za-z0-9._~+/=-';

/** `text` with every standalone occurrence of `secret` replaced by `***`. */
export function maskExact(text: string, secret: string): string {
  if (!secret) return text;
  const escaped = secret.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return text.replace(new RegExp(`(?<![${VALUE_CHAR}])${escaped}(?![${VALUE_CHAR}])`, 'g'), '***');
}

export const SECRET_HEADERS = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
]);

export function redactHeaders(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    out[k] = SECRET_HEADERS.has(k.toLowerCase()) ? `${v.split(' ')[0]} [redacted]` : v;
  }
  return out;
}
