import { randomUUID } from 'node:crypto';
import { usageError } from '../errors.js';
import type { SigningKey } from './keys.js';

/** The client_assertion_type of a JWT client assertion (RFC 7523), as SMART requires it. */
export const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** SMART caps the assertion lifetime at five minutes. */
export const MAX_ASSERTION_LIFETIME = 300;
/**
 * Below the cap, so that a client clock a little ahead of the server's does not push exp past
 * the server's five minutes (Aidbox counts them on its own clock, with no leeway).
 */
export const DEFAULT_ASSERTION_LIFETIME = 240;

export interface AssertionOptions {
  clientId: string;
  /** The token endpoint URL, exactly where the assertion will be POSTed. */
  audience: string;
  key: SigningKey;
  /** Seconds until exp; at most 300, default 240. */
  lifetime?: number;
  /** Optional jku header; it must equal the registered JWKS URL. */
  jku?: string;
  /** Seconds since the epoch; injectable for tests. */
  now?: number;
}

export interface SignedAssertion {
  jwt: string;
  header: { alg: string; kid: string; typ: 'JWT'; jku?: string };
  claims: { iss: string; sub: string; aud: string; iat: number; exp: number; jti: string };
}

export function checkLifetime(lifetime: number): number {
  if (!Number.isInteger(lifetime) || lifetime <= 0) {
    throw usageError(`--lifetime ${lifetime} is not a positive whole number of seconds`);
  }
  if (lifetime > MAX_ASSERTION_LIFETIME) {
    throw usageError(
      `--lifetime ${lifetime} is over ${MAX_ASSERTION_LIFETIME} seconds`,
      'SMART Backend Services rejects client assertions that expire more than 5 minutes ahead',
      { code: 'lifetime_too_long' },
    );
  }
  return lifetime;
}

/**
 * Sign a SMART client assertion (RFC 7523): iss = sub = client id, aud = token endpoint, a fresh
 * jti on every call (servers reject a replayed jti, retries included), kid and typ in the header.
 */
export async function signClientAssertion(options: AssertionOptions): Promise<SignedAssertion> {
  const { SignJWT } = await import('jose');
  const lifetime = checkLifetime(options.lifetime ?? DEFAULT_ASSERTION_LIFETIME);
  const iat = Math.floor(options.now ?? Date.now() / 1000);
  const header: SignedAssertion['header'] = {
    alg: options.key.alg,
    kid: options.key.kid,
    typ: 'JWT',
  };
  if (options.jku) header.jku = options.jku;
  const claims = {
    iss: options.clientId,
    sub: options.clientId,
    aud: options.audience,
    iat,
    exp: iat + lifetime,
    jti: randomUUID(),
  };
  const jwt = await new SignJWT(claims).setProtectedHeader(header).sign(options.key.key);
  return { jwt, header, claims };
}
