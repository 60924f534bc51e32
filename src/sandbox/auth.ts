import type { Quirks } from './quirks.js';
import { randomUUID } from 'node:crypto';
import {
  type CryptoKey,
  type JWK,
  type KeyObject,
  SignJWT,
  calculateJwkThumbprint,
  compactVerify,
  decodeJwt,
  decodeProtectedHeader,
  exportJWK,
  generateKeyPair,
  importJWK,
  jwtVerify,
} from 'jose';
import { type Client, type Jwk, JWT_BEARER, type Registry } from './admin.js';
import { type Exchange, HttpError, JSON_TYPE, mediaType, readBody, send } from './http.js';
import { covers, expandScope, parseScope, type Scope } from './scopes.js';

/**
 * Algorithms accepted for client assertions (advertised in discovery): the two the SMART spec
 * makes every client support. Aidbox itself takes RS384 only; no other alg passes anywhere.
 */
export const ASSERTION_ALGS = ['RS384', 'ES384'];
/** What the sandbox advertises and accepts by default (`--algs` changes it). */
export const DEFAULT_ALGS = ['RS384'];
/** What `--algs` may name. */
export const KNOWN_ALGS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
];
/**
 * Assertions may expire at most this far ahead of the server's clock, with no leeway (as on
 * Aidbox): a client clock that runs ahead shows here.
 */
const MAX_ASSERTION_LIFETIME = 300;
const CLOCK_SKEW = 60;
const JWKS_TIMEOUT_MS = 5000;
const TOKEN_ALG = 'ES256';

type Key = CryptoKey | KeyObject;

export interface ServerKey {
  privateKey: Key;
  publicKey: Key;
  publicJwk: JWK;
  kid: string;
}

export async function createServerKey(): Promise<ServerKey> {
  const { privateKey, publicKey } = await generateKeyPair(TOKEN_ALG, { extractable: true });
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk);
  return { privateKey, publicKey, publicJwk: { ...jwk, kid, alg: TOKEN_ALG, use: 'sig' }, kid };
}

/** RFC 6749 §5.2 error. invalid_client is 401, everything else 400. */
export class OAuthError extends HttpError {
  constructor(error: string, description: string) {
    super(
      error === 'invalid_client' ? 401 : 400,
      { error, error_description: description },
      { 'Cache-Control': 'no-store', Pragma: 'no-cache' },
      JSON_TYPE,
    );
  }
}

export function smartConfiguration(url: string, scopes: string[], algs = DEFAULT_ALGS) {
  return {
    token_endpoint: `${url}/auth/token`,
    jwks_uri: `${url}/.well-known/jwks.json`,
    token_endpoint_auth_methods_supported: ['private_key_jwt'],
    token_endpoint_auth_signing_alg_values_supported: algs,
    grant_types_supported: ['client_credentials'],
    scopes_supported: scopes,
    response_types_supported: ['token'],
    capabilities: ['client-confidential-asymmetric', 'permission-v1', 'permission-v2'],
  };
}

interface CachedJwks {
  keys: Jwk[];
  expiresAt: number;
}

/** Fetches client JWKS over HTTP and keeps each as long as its Cache-Control allows. */
export class JwksCache {
  private readonly cache = new Map<string, CachedJwks>();
  private readonly inflight = new Map<string, Promise<Jwk[]>>();

  constructor(private readonly now: () => number = Date.now) {}

  /** The keys; `fresh` says whether they were just fetched. */
  async get(uri: string, forceFetch = false): Promise<{ keys: Jwk[]; fresh: boolean }> {
    const hit = this.cache.get(uri);
    if (!forceFetch && hit && hit.expiresAt > this.now()) return { keys: hit.keys, fresh: false };
    let p = this.inflight.get(uri);
    if (!p) {
      p = this.fetch(uri).finally(() => this.inflight.delete(uri));
      this.inflight.set(uri, p);
    }
    return { keys: await p, fresh: true };
  }

  private async fetch(uri: string): Promise<Jwk[]> {
    const fail = (why: string) =>
      new OAuthError('invalid_client', `could not fetch the client's JWKS from ${uri}: ${why}`);
    let res: Response;
    try {
      res = await fetch(uri, {
        headers: { accept: 'application/json' },
        signal: AbortSignal.timeout(JWKS_TIMEOUT_MS),
      });
    } catch (e) {
      throw fail(describeFetchError(e));
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw fail(`HTTP ${res.status}`);
    }
    let body: unknown;
    try {
      body = await res.json();
    } catch {
      throw fail(
        `the answer is not JSON (${res.headers.get('content-type') ?? 'no content type'})`,
      );
    }
    const keys = (body as { keys?: unknown })?.keys;
    if (!Array.isArray(keys)) throw fail('the answer is not a JWK Set (no "keys" array)');
    this.cache.delete(uri);
    const maxAge = cacheSeconds(res.headers.get('cache-control'));
    if (maxAge > 0) this.cache.set(uri, { keys, expiresAt: this.now() + maxAge * 1000 });
    return keys as Jwk[];
  }
}

/** Seconds a response may be cached: max-age, none for no-store/no-cache or no header. */
export function cacheSeconds(header: string | null): number {
  if (!header) return 0;
  const h = header.toLowerCase();
  if (/\b(no-store|no-cache)\b/.test(h)) return 0;
  const m = /\bmax-age\s*=\s*"?(\d+)/.exec(h);
  return m ? Number(m[1]) : 0;
}

function describeFetchError(e: unknown): string {
  let cur: unknown = e;
  for (let i = 0; cur && i < 5; i++) {
    const err = cur as { name?: string; code?: string; message?: string; cause?: unknown };
    if (err.name === 'TimeoutError') return `no answer within ${JWKS_TIMEOUT_MS / 1000} s`;
    if (err.code === 'ECONNREFUSED') return 'connection refused';
    if (err.code === 'ENOTFOUND') return 'host not found';
    if (err.code === 'ECONNRESET') return 'connection reset';
    if (typeof err.code === 'string' && err.code) return err.code;
    if (!err.cause) return err.message ?? String(cur);
    cur = err.cause;
  }
  return String(e);
}

/** Which JWK kty and crv verify an alg. */
function keyFits(jwk: Jwk, alg: string): boolean {
  if (alg.startsWith('RS') || alg.startsWith('PS')) return jwk.kty === 'RSA';
  const crv = { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' }[alg];
  return jwk.kty === 'EC' && jwk.crv === crv;
}

export interface TokenContext {
  url: string;
  registry: Registry;
  jwks: JwksCache;
  key: ServerKey;
  /** Resource types in the data, for wildcard expansion. */
  types: () => string[];
  /** client id -> jti -> expiry (epoch seconds) */
  seenJti: Map<string, Map<string, number>>;
  /** The sandbox's clock, in milliseconds since 1970. */
  now: () => number;
  /** Behaviours of real servers this sandbox reproduces (quirks.ts). */
  quirks?: Quirks;
  /** Assertion algs advertised and accepted (default RS384 only, as Aidbox). */
  algs?: string[];
  /** Opaque access tokens (Clients without token_format): token -> what it grants. */
  opaque?: Map<string, { clientId: string; scope: string; exp: number }>;
}

/** POST /auth/token: client_credentials with a private_key_jwt assertion. */
export async function handleToken(ex: Exchange, tc: TokenContext): Promise<void> {
  if (ex.method !== 'POST') {
    throw new HttpError(
      405,
      { error: 'invalid_request', error_description: 'use POST' },
      {
        Allow: 'POST',
      },
      JSON_TYPE,
    );
  }
  const ct = mediaType(ex.req.headers['content-type']);
  const text = await readBody(ex);
  if (ct !== 'application/x-www-form-urlencoded') {
    throw new OAuthError(
      'invalid_request',
      `the token request must be application/x-www-form-urlencoded, not '${ct || 'no content type'}'`,
    );
  }
  const form = new URLSearchParams(text);
  const grantType = form.get('grant_type');
  if (!grantType) throw new OAuthError('invalid_request', 'grant_type is missing');
  if (grantType !== 'client_credentials') {
    throw new OAuthError(
      'unsupported_grant_type',
      `grant_type '${grantType}' is not supported; use client_credentials`,
    );
  }
  const assertionType = form.get('client_assertion_type');
  if (!assertionType) throw new OAuthError('invalid_request', 'client_assertion_type is missing');
  if (assertionType !== JWT_BEARER) {
    throw new OAuthError(
      'invalid_request',
      `client_assertion_type '${assertionType}' is not supported; use ${JWT_BEARER}`,
    );
  }
  const assertion = form.get('client_assertion');
  if (!assertion) throw new OAuthError('invalid_request', 'client_assertion is missing');

  const now = Math.floor(tc.now() / 1000);
  const client = await verifyAssertion(ex, tc, assertion, form, now);

  // Scopes: required by SMART Backend Services; each one must lie within the client's (a Client
  // without scope is limited by its AccessPolicy only, as on Aidbox).
  const clientScopes = client.scope ?? ['system/*.*'];
  const allowed = clientScopes
    .map((s) => parseScope(s))
    .filter((s): s is Scope => typeof s !== 'string');
  const requestedText = form.get('scope');
  if (requestedText === null) {
    throw new OAuthError(
      'invalid_request',
      'scope is missing: SMART Backend Services requires it in the token request',
    );
  }
  const requested: Scope[] = [];
  const texts = requestedText.split(/\s+/).filter(Boolean);
  if (texts.length === 0) throw new OAuthError('invalid_scope', 'scope is empty');
  for (const t of texts) {
    const s = parseScope(t);
    if (typeof s === 'string') throw new OAuthError('invalid_scope', s);
    if (s.context !== 'system') {
      throw new OAuthError(
        'invalid_scope',
        `'${t}': client_credentials allows only system/ scopes`,
      );
    }
    if (!covers(allowed, s)) {
      throw new OAuthError(
        'invalid_scope',
        `requested scope '${t}' is not within the client's scopes (${clientScopes.join(' ') || 'none'})`,
      );
    }
    requested.push(s);
  }
  const granted = [...new Set(requested.flatMap((s) => expandScope(s, tc.types())))].join(' ');
  const expiresIn = client.auth?.client_credentials?.access_token_expiration ?? 300;
  if (client.auth?.client_credentials?.token_format !== 'jwt') {
    // Aidbox without token_format: an opaque token, and no expires_in in the answer.
    const opaque = randomUUID().replace(/-/g, '') + randomUUID().replace(/-/g, '');
    tc.opaque ??= new Map();
    tc.opaque.set(opaque, { clientId: client.id, scope: granted, exp: now + expiresIn });
    send(
      ex,
      200,
      { token_type: 'Bearer', scope: granted, access_token: opaque, refresh_token: null },
      JSON_TYPE,
      { 'Cache-Control': 'no-store', Pragma: 'no-cache' },
    );
    return;
  }
  const accessToken = await new SignJWT({ scope: granted, client_id: client.id, atv: 2 })
    .setProtectedHeader({ alg: TOKEN_ALG, kid: tc.key.kid, typ: 'JWT' })
    .setIssuer(tc.url)
    .setSubject(client.id)
    .setJti(randomUUID())
    .setIssuedAt(now)
    .setExpirationTime(now + expiresIn)
    .sign(tc.key.privateKey);
  send(
    ex,
    200,
    {
      token_type: tc.quirks?.tokenType() ?? 'Bearer',
      scope: granted,
      need_patient_banner: true,
      expires_in: expiresIn,
      access_token: accessToken,
      refresh_token: null,
    },
    JSON_TYPE,
    { 'Cache-Control': 'no-store', Pragma: 'no-cache' },
  );
}

async function verifyAssertion(
  ex: Exchange,
  tc: TokenContext,
  assertion: string,
  form: URLSearchParams,
  now: number,
): Promise<Client> {
  const bad = (why: string) => new OAuthError('invalid_client', why);
  let header: ReturnType<typeof decodeProtectedHeader>;
  let claims: ReturnType<typeof decodeJwt>;
  try {
    header = decodeProtectedHeader(assertion);
    claims = decodeJwt(assertion);
  } catch {
    throw bad('client_assertion is not a signed JWT (expected header.payload.signature)');
  }
  if (typeof claims.sub === 'string') ex.clientId = claims.sub;
  const alg = header.alg ?? '';
  const algs = tc.algs ?? DEFAULT_ALGS;
  if (!algs.includes(alg)) {
    throw bad(
      `client assertion alg '${alg || 'none'}' is not supported; use ${algs.length > 1 ? 'one of ' : ''}${algs.join(', ')}`,
    );
  }
  if (header.typ !== 'JWT') {
    throw bad(
      `client assertion header typ must be 'JWT'${header.typ ? `, not '${header.typ}'` : ' (missing)'}`,
    );
  }
  if (typeof header.kid !== 'string' || !header.kid) {
    throw bad('client assertion header has no kid: name the signing key of the client JWKS');
  }
  if (typeof claims.iss !== 'string' || typeof claims.sub !== 'string') {
    throw bad('client assertion needs iss and sub, both the client_id');
  }
  if (claims.iss !== claims.sub) {
    throw bad(
      `client assertion iss '${claims.iss}' and sub '${claims.sub}' differ; both must be the client_id`,
    );
  }
  const clientId = claims.sub;
  const formClientId = form.get('client_id');
  if (formClientId !== null && formClientId !== clientId) {
    throw bad(`client_id '${formClientId}' does not match the assertion sub '${clientId}'`);
  }
  const client = tc.registry.clients.get(clientId);
  if (!client) throw bad(`unknown client '${clientId}'`);
  if (client.active === false) throw bad(`client '${clientId}' is not active`);
  // A Client registered for another way of authenticating (a secret) cannot use this one.
  if (!client.auth?.client_credentials?.client_assertion_types?.includes(JWT_BEARER)) {
    throw bad(
      `client '${clientId}' is not registered for client assertions: its auth.client_credentials.client_assertion_types lacks ${JWT_BEARER}`,
    );
  }
  if (header.jku !== undefined && header.jku !== client.jwks_uri) {
    throw bad(
      `client assertion jku '${String(header.jku)}' does not match the registered jwks_uri ${client.jwks_uri ? `'${client.jwks_uri}'` : '(none; the client has an inline jwks)'}`,
    );
  }
  const jwk = await findKey(tc, client, header.kid, alg);
  let key: Key | Uint8Array;
  try {
    key = await importJWK(jwk as JWK, alg);
  } catch (e) {
    throw bad(
      `key '${header.kid}' of the client's JWKS cannot be used for ${alg}: ${(e as Error).message}`,
    );
  }
  try {
    await compactVerify(assertion, key, { algorithms: [alg] });
  } catch {
    throw bad(
      `client assertion signature does not verify with key '${header.kid}' of the client's JWKS`,
    );
  }
  // Claims, checked after the signature so that only the key holder learns about them.
  const aud = claims.aud;
  const hostTokenUrl = `${ex.origin}/auth/token`;
  const tokenUrl = `${tc.url}/auth/token`;
  const auds = Array.isArray(aud) ? aud : aud === undefined ? [] : [aud];
  if (!auds.some((a) => a === tokenUrl || a === hostTokenUrl)) {
    throw bad(
      `client assertion aud '${auds.join(' ') || '(missing)'}' does not match the token endpoint '${tokenUrl}'`,
    );
  }
  if (typeof claims.exp !== 'number') throw bad('client assertion has no exp');
  if (claims.exp <= now - CLOCK_SKEW) {
    throw bad(`client assertion expired ${now - claims.exp} s ago (exp ${claims.exp})`);
  }
  if (claims.exp > now + MAX_ASSERTION_LIFETIME) {
    throw bad(
      `client assertion exp is ${claims.exp - now} s ahead; at most ${MAX_ASSERTION_LIFETIME} s is allowed`,
    );
  }
  if (typeof claims.nbf === 'number' && claims.nbf > now + CLOCK_SKEW) {
    throw bad('client assertion is not valid yet (nbf in the future)');
  }
  if (typeof claims.iat === 'number' && claims.iat > now + CLOCK_SKEW) {
    throw bad('client assertion iat is in the future');
  }
  if (typeof claims.jti !== 'string' || !claims.jti) throw bad('client assertion has no jti');
  let seen = tc.seenJti.get(clientId);
  if (!seen) tc.seenJti.set(clientId, (seen = new Map()));
  for (const [j, exp] of seen) if (exp + CLOCK_SKEW < now) seen.delete(j);
  if (seen.has(claims.jti)) throw bad(`client assertion jti '${claims.jti}' was already used`);
  seen.set(claims.jti, claims.exp);
  // RFC 6749 §5.2: the authenticated client is not allowed this grant.
  if (!client.grant_types.includes('client_credentials')) {
    throw new OAuthError(
      'unauthorized_client',
      `client '${clientId}' may not use the client_credentials grant (its grant_types: ${client.grant_types.join(', ') || 'none'})`,
    );
  }
  return client;
}

async function findKey(tc: TokenContext, client: Client, kid: string, alg: string): Promise<Jwk> {
  const where = client.jwks_uri ?? 'the inline jwks of the client';
  let { keys, fresh } = client.jwks_uri
    ? await tc.jwks.get(client.jwks_uri)
    : { keys: client.jwks ?? [], fresh: true };
  let byKid = keys.filter((k) => k && k.kid === kid);
  if (byKid.length === 0 && !fresh && client.jwks_uri) {
    // Rotated keys: refetch once before giving up.
    ({ keys, fresh } = await tc.jwks.get(client.jwks_uri, true));
    byKid = keys.filter((k) => k && k.kid === kid);
  }
  if (byKid.length === 0) {
    const quirk = tc.quirks?.unknownKid(kid);
    if (quirk) throw new OAuthError(quirk.error, quirk.description);
    throw new OAuthError(
      'invalid_client',
      `no key with kid '${kid}' in the client's JWKS at ${where}`,
    );
  }
  const fit = byKid.filter((k) => keyFits(k, alg));
  if (fit.length === 0) {
    throw new OAuthError(
      'invalid_client',
      `key '${kid}' in the client's JWKS is kty '${byKid[0]!.kty}'${byKid[0]!.crv ? ` ${byKid[0]!.crv}` : ''}, which cannot verify ${alg}`,
    );
  }
  if (fit.length > 1) {
    throw new OAuthError(
      'invalid_client',
      `${fit.length} keys with kid '${kid}' in the client's JWKS at ${where}; kid must be unique`,
    );
  }
  const k = fit[0]!;
  if (k.alg !== undefined && k.alg !== alg) {
    throw new OAuthError(
      'invalid_client',
      `key '${kid}' is for alg '${k.alg}', but the assertion uses ${alg}`,
    );
  }
  return k;
}

export interface AccessToken {
  clientId: string;
  scopes: Scope[];
  scopeText: string;
  admin: boolean;
}

/** Verifies a Bearer access token issued by this sandbox. */
export async function verifyAccessToken(
  header: string | undefined,
  tc: TokenContext,
): Promise<AccessToken> {
  const unauthorized = (why: string, error = 'invalid_token') =>
    new HttpError(
      401,
      {
        resourceType: 'OperationOutcome',
        issue: [{ severity: 'error', code: 'login', diagnostics: why }],
      },
      {
        'WWW-Authenticate': `Bearer realm="fhir", error="${error}", error_description="${why.replace(/"/g, "'")}"`,
      },
    );
  if (!header || !/^bearer /i.test(header)) {
    throw new HttpError(
      401,
      {
        resourceType: 'OperationOutcome',
        issue: [
          { severity: 'error', code: 'login', diagnostics: 'a Bearer access token is required' },
        ],
      },
      { 'WWW-Authenticate': 'Bearer realm="fhir"' },
    );
  }
  const token = header.slice(7).trim();
  const opaque = tc.opaque?.get(token);
  if (opaque) {
    if (opaque.exp <= Math.floor(tc.now() / 1000)) {
      tc.opaque!.delete(token);
      throw unauthorized('the access token has expired');
    }
    const owner = tc.registry.clients.get(opaque.clientId);
    if (!owner || owner.active === false) {
      throw unauthorized(
        `client '${opaque.clientId}' of the access token no longer exists or is inactive`,
      );
    }
    const scopes = opaque.scope
      .split(' ')
      .map((s) => parseScope(s))
      .filter((s): s is Scope => typeof s !== 'string');
    return { clientId: opaque.clientId, scopes, scopeText: opaque.scope, admin: false };
  }
  let payload;
  try {
    ({ payload } = await jwtVerify(token, tc.key.publicKey, {
      issuer: tc.url,
      algorithms: [TOKEN_ALG],
      clockTolerance: 0,
      currentDate: new Date(tc.now()),
    }));
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ERR_JWT_EXPIRED') throw unauthorized('the access token has expired');
    throw unauthorized('the access token is malformed or not signed by this server');
  }
  const clientId = String(payload.sub);
  const client = tc.registry.clients.get(clientId);
  if (!client || client.active === false) {
    throw unauthorized(`client '${clientId}' of the access token no longer exists or is inactive`);
  }
  const scopeText = typeof payload.scope === 'string' ? payload.scope : '';
  const scopes = scopeText
    .split(' ')
    .map((s) => parseScope(s))
    .filter((s): s is Scope => typeof s !== 'string');
  return { clientId, scopes, scopeText, admin: false };
}
