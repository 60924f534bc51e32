import { SmartError, usageError } from '../errors.js';
import type { HttpClient } from '../http/index.js';
import { SIGNING_ALGS, parseJwks, readJwksFile, type Jwks } from './keys.js';
import { MAX_ASSERTION_LIFETIME } from './assertion.js';
import { formatDuration } from '../duration.js';
import { redactUrl } from '../redact.js';
import { statusError } from '../http/status-error.js';

/**
 * Reading JWTs without trusting them: decode, describe the times, check the SMART client
 * assertion rules, and optionally verify the signature against a JWKS. The token itself is never
 * sent anywhere; verification against a URL only GETs the JWKS.
 */

export interface DecodedJwt {
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
}

function decodePart(part: string, what: string): Record<string, unknown> {
  if (!/^[A-Za-z0-9_-]*$/.test(part)) {
    throw usageError(
      `the JWT ${what} is not base64url`,
      'paste the whole token, header.payload.signature',
      {
        code: 'not_jwt',
      },
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    throw usageError(`the JWT ${what} is not base64url-encoded JSON`, undefined, {
      code: 'not_jwt',
    });
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw usageError(`the JWT ${what} is not a JSON object`, undefined, { code: 'not_jwt' });
  }
  return value as Record<string, unknown>;
}

/** Split and decode a compact JWS; no verification. Errors never repeat the token. */
export function decodeJwt(token: string): DecodedJwt {
  const t = token.trim().replace(/^Bearer\s+/i, '');
  const parts = t.split('.');
  if (parts.length === 5) {
    throw usageError(
      'this is an encrypted JWT (JWE, five parts): it cannot be decoded without the key',
      undefined,
      {
        code: 'not_jwt',
      },
    );
  }
  if (parts.length !== 3 || !parts[0] || !parts[1]) {
    throw usageError(
      `not a JWT: expected three base64url parts separated by dots, got ${parts.length} part${parts.length === 1 ? '' : 's'}`,
      'pass the token itself, or - to read it from stdin',
      { code: 'not_jwt' },
    );
  }
  return { header: decodePart(parts[0], 'header'), claims: decodePart(parts[1], 'payload') };
}

export interface TimeInfo {
  claim: 'iat' | 'nbf' | 'exp';
  epoch: number;
  iso: string;
  /** "expires in 4m12s", "expired 3m ago", "issued 12s ago", "valid from ... (in 1m)". */
  relative: string;
}

/** iat, nbf and exp as dates and as time from now. Non-numeric values are left out. */
export function describeTimes(claims: Record<string, unknown>, nowMs: number): TimeInfo[] {
  const now = nowMs / 1000;
  const out: TimeInfo[] = [];
  for (const claim of ['iat', 'nbf', 'exp'] as const) {
    const v = claims[claim];
    if (typeof v !== 'number' || !Number.isFinite(v)) continue;
    const d = v - now;
    const ago = `${formatDuration(d * 1000, 'units')} ago`;
    const ahead = `in ${formatDuration(d * 1000, 'units')}`;
    let relative: string;
    if (claim === 'exp') relative = d > 0 ? `expires ${ahead}` : `expired ${ago}`;
    else if (claim === 'iat')
      relative = d > 0 ? `issued ${ahead} (in the future: clock skew?)` : `issued ${ago}`;
    else relative = d > 0 ? `not valid yet: valid ${ahead}` : `valid since ${ago}`;
    let iso: string;
    try {
      iso = new Date(v * 1000).toISOString();
    } catch {
      iso = 'invalid date';
    }
    out.push({ claim, epoch: v, iso, relative });
  }
  return out;
}

function looksLikeUrl(v: unknown): boolean {
  if (typeof v !== 'string') return false;
  try {
    const u = new URL(v);
    return u.protocol === 'https:' || u.protocol === 'http:';
  } catch {
    return false;
  }
}

/** Claims that only access tokens carry (RFC 9068, SMART, Aidbox), never a client assertion. */
const ACCESS_TOKEN_CLAIMS = ['scope', 'scp', 'client_id', 'azp', 'atv'];

/**
 * Whether a JWT is meant as a SMART client assertion: an aud that is a URL (the token endpoint),
 * an iss or sub, and nothing of an access token. The rules themselves (typ, iss = sub, jti...)
 * are not part of the test, or a broken assertion would escape the very checks it fails.
 */
export function looksLikeClientAssertion(d: DecodedJwt): boolean {
  const { header, claims } = d;
  if (typeof header.typ === 'string' && /^(application\/)?at\+jwt$/i.test(header.typ)) return false;
  if (ACCESS_TOKEN_CLAIMS.some((c) => c in claims)) return false;
  const auds: unknown[] = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!auds.some(looksLikeUrl)) return false;
  const { iss, sub } = claims;
  if (typeof iss !== 'string' && typeof sub !== 'string') return false;
  // An access token names its server (a URL) as iss and the client or user as sub.
  if (looksLikeUrl(iss) && iss !== sub) return false;
  return true;
}

export interface RuleCheck {
  rule: string;
  ok: boolean;
  detail: string;
}

export interface AssertionRuleOptions {
  nowMs: number;
  /** Algorithms accepted; default every alg smart can sign with. */
  allowedAlgs?: readonly string[];
  /** The token endpoint the assertion is meant for; checked when given. */
  audience?: string;
}

/** Each SMART Backend Services rule for a client assertion (header and claims), pass or fail. */
export function checkAssertionRules(d: DecodedJwt, o: AssertionRuleOptions): RuleCheck[] {
  const { header, claims } = d;
  const algs = o.allowedAlgs ?? SIGNING_ALGS;
  const now = Math.floor(o.nowMs / 1000);
  const checks: RuleCheck[] = [];
  const add = (rule: string, ok: boolean, detail: string) => checks.push({ rule, ok, detail });

  add(
    'typ',
    header.typ === 'JWT',
    header.typ === 'JWT'
      ? 'typ is JWT'
      : `header typ must be "JWT", got ${JSON.stringify(header.typ ?? null)}`,
  );
  const kidOk = typeof header.kid === 'string' && header.kid !== '';
  add(
    'kid',
    kidOk,
    kidOk
      ? `kid ${String(header.kid)}`
      : "header has no kid: the server cannot pick the key in the client's JWKS",
  );
  const alg = typeof header.alg === 'string' ? header.alg : '';
  const algOk = algs.includes(alg);
  add(
    'alg',
    algOk,
    algOk
      ? `alg ${alg}`
      : `alg ${JSON.stringify(header.alg ?? null)} is not one of ${algs.join(', ')} (SMART: RS384 or ES384)`,
  );

  const iss = claims.iss;
  const sub = claims.sub;
  const issOk = typeof iss === 'string' && iss !== '' && iss === sub;
  add(
    'iss = sub',
    issOk,
    issOk
      ? `iss and sub are the client id ${String(iss)}`
      : typeof iss !== 'string' || typeof sub !== 'string'
        ? 'iss and sub must both be the client id'
        : `iss "${iss}" and sub "${String(sub)}" differ: both must be the client id`,
  );

  const aud = claims.aud;
  const auds = Array.isArray(aud) ? aud : aud === undefined ? [] : [aud];
  let audOk = auds.length > 0 && auds.every((a) => typeof a === 'string' && a !== '');
  let audDetail = audOk
    ? `aud ${auds.join(' ')}`
    : 'aud is missing: it must be the token endpoint URL';
  if (audOk && o.audience !== undefined && !auds.includes(o.audience)) {
    audOk = false;
    audDetail = `aud ${auds.join(' ')} is not the token endpoint ${o.audience}`;
  } else if (audOk && !auds.some(looksLikeUrl)) {
    audOk = false;
    audDetail = `aud ${auds.join(' ')} is not a URL: it must be the token endpoint URL`;
  }
  add('aud', audOk, audDetail);

  const exp = claims.exp;
  if (typeof exp !== 'number' || !Number.isInteger(exp)) {
    add(
      'exp',
      false,
      exp === undefined
        ? 'exp is missing'
        : 'exp must be a whole number of seconds since the epoch',
    );
  } else {
    const from = typeof claims.iat === 'number' ? claims.iat : now;
    const lifetime = exp - from;
    const ok = lifetime <= MAX_ASSERTION_LIFETIME;
    add(
      'exp ≤ 5 min',
      ok,
      ok
        ? `exp is ${lifetime}s after ${typeof claims.iat === 'number' ? 'iat' : 'now'}`
        : `exp is ${lifetime}s after ${typeof claims.iat === 'number' ? 'iat' : 'now'}; at most ${MAX_ASSERTION_LIFETIME}s is allowed`,
    );
    add(
      'not expired',
      exp > now,
      exp > now
        ? `expires in ${formatDuration((exp - now) * 1000, 'units')}`
        : `expired ${formatDuration((now - exp) * 1000, 'units')} ago`,
    );
  }
  const jtiOk = typeof claims.jti === 'string' && claims.jti !== '';
  add(
    'jti',
    jtiOk,
    jtiOk ? 'jti present' : 'jti is missing: every assertion needs a fresh unique jti',
  );
  return checks;
}

export interface Verification {
  verified: boolean;
  /** The JWKS source: a URL or a file path. */
  source: string;
  kid?: string;
  alg?: string;
  /** Why it failed. */
  reason?: string;
}

export function isUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

/** A JWKS from a URL (a GET of the JWKS only) or from a file. */
export async function loadJwks(source: string, http: () => Promise<HttpClient>): Promise<Jwks> {
  if (!isUrl(source)) return readJwksFile(source);
  const res = await (await http()).request(source, { headers: { accept: 'application/json' } });
  if (!res.ok) {
    throw statusError(undefined, source, res, {
      prefix: 'JWKS',
      said: false,
      code: 'jwks_unavailable',
    });
  }
  try {
    return parseJwks(res.text, `JWKS ${redactUrl(source)}`);
  } catch (e) {
    const type = res.contentType.split(';')[0] || 'no content type';
    throw new SmartError('http', `${redactUrl(source)} did not answer with a JWKS (${type})`, {
      cause: e,
      code: 'not_jwks',
    });
  }
}

/** Verify the signature (only: claims are checked separately) with the matching key of a JWKS. */
export async function verifyJwtSignature(
  token: string,
  jwks: Jwks,
  source: string,
): Promise<Verification> {
  const { createLocalJWKSet, compactVerify, errors } = await import('jose');
  const t = token.trim().replace(/^Bearer\s+/i, '');
  const d = decodeJwt(t);
  const kid = typeof d.header.kid === 'string' ? d.header.kid : undefined;
  const alg = typeof d.header.alg === 'string' ? d.header.alg : undefined;
  const base = { source, kid, alg };
  if (!alg || alg === 'none')
    return { ...base, verified: false, reason: 'the token is not signed (alg none)' };
  try {
    const getKey = createLocalJWKSet(jwks as Parameters<typeof createLocalJWKSet>[0]);
    await compactVerify(t, getKey, { algorithms: [alg] });
    return { ...base, verified: true };
  } catch (e) {
    let reason: string;
    if (e instanceof errors.JWKSNoMatchingKey) {
      reason = `no key in ${source} matches kid ${kid ?? '(none)'} and alg ${alg}`;
    } else if (e instanceof errors.JWKSMultipleMatchingKeys) {
      reason = `several keys in ${source} match kid ${kid ?? '(none)'}: kids must be unique`;
    } else if (e instanceof errors.JWSSignatureVerificationFailed) {
      reason = `the signature does not verify with key ${kid ?? '(no kid)'} of ${source}`;
    } else if (e instanceof errors.JOSENotSupported || e instanceof errors.JOSEAlgNotAllowed) {
      reason = `alg ${alg} cannot be verified: ${(e as Error).message}`;
    } else if (e instanceof errors.JOSEError) {
      reason = `${(e as Error).message}`;
    } else {
      throw e;
    }
    return { ...base, verified: false, reason };
  }
}
