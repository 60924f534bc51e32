import { FileCache } from '../cache.js';
import type { AccessToken, TokenResponse } from './token.js';

// The token cache: which entry answers a request, when a cached token really expires, and
// what is stored. The files themselves (0600 in a 0700 directory, temp + rename, the trust
// checks with their warnings) are core/cache.ts's.

/** A cached token is reused until this long before it expires. */
export const CACHE_MARGIN_MS = 60_000;

/** What a token is for: a cached one answers only the same four. */
export interface TokenKey {
  tokenUrl: string;
  clientId: string;
  /** The scopes asked for, normalized (single spaces). */
  scope: string;
  /** The signing key, by the bytes it is loaded from (keyFingerprint() in key-file.ts). */
  keyFingerprint: string;
}

/** An entry as stored (an AccessToken without `fromCache`). */
interface CachedToken {
  accessToken: string;
  tokenType: string;
  scope?: string;
  requestedScope: string;
  expiresAt: number;
  obtainedAt: number;
  tokenUrl: string;
  clientId: string;
  kid: string;
  keyFingerprint: string;
  response: TokenResponse;
}

/** exp of a JWT access token, in epoch ms, without verifying it (only to schedule a refresh). */
export function jwtExpiry(token: string): number | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as {
      exp?: unknown;
    };
    return typeof claims.exp === 'number' ? claims.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/** expires_in as a positive number of seconds; some servers send it as a string ("300"). */
function secondsOf(v: unknown): number | undefined {
  const n = typeof v === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(v) ? Number(v) : v;
  return typeof n === 'number' && Number.isFinite(n) && n > 0 ? n : undefined;
}

/** The earliest of the times given, or undefined when none is. */
function earliest(...times: (number | undefined)[]): number | undefined {
  const known = times.filter((t): t is number => typeof t === 'number' && Number.isFinite(t));
  return known.length ? Math.min(...known) : undefined;
}

/**
 * When a token just received expires (epoch ms): the earlier of `expires_in` and the token's
 * own `exp` (a JWT); undefined when the server said nothing and the token is not a readable JWT.
 */
export function tokenExpiry(body: TokenResponse, now: number): number | undefined {
  const expiresIn = secondsOf(body.expires_in);
  return earliest(expiresIn ? now + expiresIn * 1000 : undefined, jwtExpiry(body.access_token));
}

/**
 * Why a cache entry does not answer this request (another token URL, client, scope or key: a
 * hash collision or a file put there by hand), or undefined when it does.
 */
function cachedTokenProblem(hit: CachedToken, want: TokenKey): string | undefined {
  if (typeof hit !== 'object' || typeof hit.accessToken !== 'string' || !hit.accessToken)
    return 'no access token in the entry';
  if (hit.tokenUrl !== want.tokenUrl) return 'it was issued by another token URL';
  if (hit.clientId !== want.clientId) return 'it was issued to another client id';
  if (hit.requestedScope !== want.scope) return 'it was issued for other scopes';
  if (hit.keyFingerprint !== want.keyFingerprint || typeof hit.kid !== 'string')
    return 'it was issued for another key';
  return undefined;
}

/**
 * When a cached token really expires: the recorded time, capped at the token's own `exp` (a JWT)
 * and at issue time + expires_in.
 */
function cachedExpiry(hit: CachedToken): number {
  const expiresIn = secondsOf(hit.response?.expires_in);
  return (
    earliest(
      typeof hit.expiresAt === 'number' ? hit.expiresAt : 0,
      jwtExpiry(hit.accessToken),
      expiresIn && typeof hit.obtainedAt === 'number'
        ? hit.obtainedAt + expiresIn * 1000
        : undefined,
    ) ?? 0
  );
}

/** Access tokens kept between runs, one file per token URL, client, scope and key. */
export class TokenCache {
  private readonly files: FileCache;

  /** `warn` gets one line for an entry that is ignored because its file cannot be trusted. */
  constructor(cacheDir: string, warn?: (message: string) => void) {
    this.files = new FileCache(cacheDir, warn);
  }

  /** The file name of the entry for `key` (a hash: no id or URL appears in it). */
  static keyOf(key: TokenKey): string {
    return FileCache.keyOf(key.tokenUrl, key.clientId, key.scope, key.keyFingerprint);
  }

  /**
   * The cached token for `want` that is still good for CACHE_MARGIN_MS after `now`, else
   * undefined; `log` says why an entry that is there was not used.
   */
  async lookup(
    want: TokenKey,
    now: number,
    log?: (message: string) => void,
  ): Promise<AccessToken | undefined> {
    const hit = await this.files.get<CachedToken>('tokens', TokenCache.keyOf(want));
    if (!hit) return undefined;
    const problem = cachedTokenProblem(hit, want);
    if (problem) {
      log?.(`cached token not used: ${problem}`);
      return undefined;
    }
    const expiresAt = cachedExpiry(hit);
    if (expiresAt - CACHE_MARGIN_MS <= now) return undefined;
    log?.(`using cached token (expires in ${Math.round((expiresAt - now) / 1000)}s)`);
    return { ...hit, expiresAt, fromCache: true };
  }

  /**
   * Keep `token` for later runs, when its expiry is known and more than the margin away; and
   * remove the entries whose token has expired (those of another key, scope or server, which no
   * lookup replaces), so that old tokens do not pile up on disk.
   */
  async store(token: AccessToken, now: number): Promise<void> {
    if (!token.expiresAt || token.expiresAt - CACHE_MARGIN_MS <= now) return;
    const { fromCache: _ignored, ...stored } = token;
    await this.files.set('tokens', TokenCache.keyOf(keyOfToken(token)), stored);
    await this.files.prune(
      'tokens',
      (entry) =>
        typeof entry === 'object' &&
        entry !== null &&
        typeof (entry as CachedToken).accessToken === 'string' &&
        cachedExpiry(entry as CachedToken) > now,
    );
  }

  /** Forget a token the server rejected. */
  async forget(token: AccessToken): Promise<void> {
    await this.files.delete('tokens', TokenCache.keyOf(keyOfToken(token)));
  }
}

function keyOfToken(token: AccessToken): TokenKey {
  return {
    tokenUrl: token.tokenUrl,
    clientId: token.clientId,
    scope: token.requestedScope,
    keyFingerprint: token.keyFingerprint,
  };
}
