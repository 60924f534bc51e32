import { describe, expect, test } from 'vitest';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import {
  CACHE_MARGIN_MS,
  TokenCache,
  jwtExpiry,
  tokenExpiry,
  type TokenKey,
} from '../../../../src/core/auth/token-cache.js';
import type { AccessToken, TokenResponse } from '../../../../src/core/auth/token.js';
import { tempDir } from '../../../helpers/tmp.js';

const T0 = 1_800_000_000_000;
const WANT: TokenKey = {
  tokenUrl: 'https://auth.example.org/auth/token',
  clientId: 'client-1',
  scope: 'system/*.read',
  keyFingerprint: 'a'.repeat(64),
};

function jwt(claims: Record<string, unknown>): string {
  return `e30.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.sig`;
}

function token(over: Partial<AccessToken> = {}): AccessToken {
  return {
    accessToken: 'tok-1',
    tokenType: 'Bearer',
    scope: WANT.scope,
    requestedScope: WANT.scope,
    expiresAt: T0 + 300_000,
    obtainedAt: T0,
    tokenUrl: WANT.tokenUrl,
    clientId: WANT.clientId,
    kid: 'kid-1',
    keyFingerprint: WANT.keyFingerprint,
    fromCache: false,
    response: { access_token: 'tok-1', token_type: 'Bearer', expires_in: 300 },
    ...over,
  };
}

/** A token response as a server may send it (expires_in of any type). */
function answer(access_token: string, expires_in?: unknown): TokenResponse {
  return { access_token, token_type: 'bearer', expires_in } as TokenResponse;
}

function entryFile(dir: string, key: TokenKey = WANT): string {
  return join(dir, 'tokens', `${TokenCache.keyOf(key)}.json`);
}

describe('jwtExpiry and tokenExpiry', () => {
  test('a JWT exp in ms; not a JWT, a bad payload or no numeric exp: undefined', () => {
    expect(jwtExpiry(jwt({ exp: 1_900_000_000 }))).toBe(1_900_000_000_000);
    expect(jwtExpiry('opaque')).toBeUndefined();
    expect(jwtExpiry('a.!!!.c')).toBeUndefined();
    expect(jwtExpiry(jwt({ exp: '1900000000' }))).toBeUndefined();
  });

  test('the earlier of expires_in (a number or a numeric string) and the JWT exp', () => {
    expect(tokenExpiry(answer('x', 300), T0)).toBe(T0 + 300_000);
    expect(tokenExpiry(answer('x', ' 60 '), T0)).toBe(T0 + 60_000);
    const exp = T0 / 1000 + 100;
    expect(tokenExpiry(answer(jwt({ exp }), 300), T0)).toBe(exp * 1000);
    expect(tokenExpiry(answer(jwt({ exp })), T0)).toBe(exp * 1000);
  });

  test('no usable expiry at all: undefined (zero, negative, text, an opaque token)', () => {
    for (const expires_in of [0, -5, 'soon', null, undefined, Number.NaN])
      expect(tokenExpiry(answer('opaque', expires_in), T0)).toBeUndefined();
  });
});

describe('TokenCache', () => {
  test('a stored token is found again for the same four, as fromCache, and the file is 0600', async () => {
    const dir = tempDir('token-cache-');
    const cache = new TokenCache(dir);
    await cache.store(token(), T0);
    expect(statSync(entryFile(dir)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(entryFile(dir), 'utf8'))).not.toHaveProperty('fromCache');
    const hit = await cache.lookup(WANT, T0 + 1000);
    expect(hit).toMatchObject({ accessToken: 'tok-1', fromCache: true, expiresAt: T0 + 300_000 });
  });

  test('reused until CACHE_MARGIN_MS before it expires, not after', async () => {
    const cache = new TokenCache(tempDir('token-cache-'));
    await cache.store(token(), T0);
    expect(await cache.lookup(WANT, T0 + 300_000 - CACHE_MARGIN_MS - 1)).toBeDefined();
    expect(await cache.lookup(WANT, T0 + 300_000 - CACHE_MARGIN_MS)).toBeUndefined();
  });

  test('not stored: no expiry, or one inside the margin', async () => {
    const dir = tempDir('token-cache-');
    const cache = new TokenCache(dir);
    await cache.store(token({ expiresAt: undefined }), T0);
    await cache.store(token({ expiresAt: T0 + CACHE_MARGIN_MS }), T0);
    expect(existsSync(entryFile(dir))).toBe(false);
  });

  test('each key has its own entry: another token URL, client, scope or key is a miss', async () => {
    const cache = new TokenCache(tempDir('token-cache-'));
    await cache.store(token(), T0);
    for (const other of [
      { tokenUrl: 'https://elsewhere.example.org/token' },
      { clientId: 'client-2' },
      { scope: 'system/*.rs' },
      { keyFingerprint: 'b'.repeat(64) },
    ])
      expect(await cache.lookup({ ...WANT, ...other }, T0)).toBeUndefined();
  });

  test('an entry under the right name that was issued for something else is not used, and --verbose says why', async () => {
    const dir = tempDir('token-cache-');
    const cache = new TokenCache(dir);
    const cases: [Partial<AccessToken>, string][] = [
      [{ tokenUrl: 'https://other.example.org/token' }, 'it was issued by another token URL'],
      [{ clientId: 'someone-else' }, 'it was issued to another client id'],
      [{ requestedScope: 'system/*.*' }, 'it was issued for other scopes'],
      [{ keyFingerprint: 'c'.repeat(64) }, 'it was issued for another key'],
      [{ kid: undefined }, 'it was issued for another key'],
      [{ accessToken: '' }, 'no access token in the entry'],
    ];
    for (const [over, why] of cases) {
      // As a file put there by hand (or a hash collision) would be: the right name, other content.
      await cache.store(token(), T0);
      const stored = JSON.parse(readFileSync(entryFile(dir), 'utf8')) as Record<string, unknown>;
      writeFileSync(entryFile(dir), JSON.stringify({ ...stored, ...over }), { mode: 0o600 });
      const log: string[] = [];
      expect(await cache.lookup(WANT, T0, (m) => log.push(m))).toBeUndefined();
      expect(log).toEqual([`cached token not used: ${why}`]);
    }
  });

  test('storing a token removes the entries whose token has expired (another key, scope or server)', async () => {
    const dir = tempDir('token-cache-');
    const cache = new TokenCache(dir);
    // Stored earlier: one for another key that is still good, one for another scope that is not.
    const other = { keyFingerprint: 'b'.repeat(64) };
    await cache.store(token(other), T0);
    const stale = { requestedScope: 'system/Patient.read', expiresAt: T0 + 100_000 };
    await cache.store(token(stale), T0);
    expect(readdirSync(join(dir, 'tokens'))).toHaveLength(2);
    // 200 s on, the second has expired: storing a new token removes it, and only it.
    await cache.store(token({ expiresAt: T0 + 500_000 }), T0 + 200_000);
    expect(readdirSync(join(dir, 'tokens')).sort()).toEqual(
      [entryFile(dir), entryFile(dir, { ...WANT, ...other })].map((f) => basename(f)).sort(),
    );
    expect(existsSync(entryFile(dir, { ...WANT, scope: stale.requestedScope }))).toBe(false);
  });

  test("a cached token's expiry is capped at its JWT exp and at issue time + expires_in", async () => {
    const dir = tempDir('token-cache-');
    const cache = new TokenCache(dir);
    const exp = (T0 + 120_000) / 1000;
    await cache.store(token({ accessToken: jwt({ exp }), expiresAt: T0 + 3_600_000 }), T0);
    // The file claims an hour; the JWT inside says two minutes.
    expect((await cache.lookup(WANT, T0))?.expiresAt).toBe(T0 + 120_000);
    expect(await cache.lookup(WANT, T0 + 120_000 - CACHE_MARGIN_MS)).toBeUndefined();

    await cache.store(
      token({
        expiresAt: T0 + 3_600_000,
        response: { access_token: 'tok-1', token_type: 'Bearer', expires_in: 90 },
      }),
      T0,
    );
    expect((await cache.lookup(WANT, T0))?.expiresAt).toBe(T0 + 90_000);
  });

  test('a corrupt entry is a miss; forget removes the entry', async () => {
    const dir = tempDir('token-cache-');
    const cache = new TokenCache(dir);
    await cache.store(token(), T0);
    writeFileSync(entryFile(dir), '{not json', { mode: 0o600 });
    expect(await cache.lookup(WANT, T0)).toBeUndefined();
    await cache.store(token(), T0);
    await cache.forget(token());
    expect(existsSync(entryFile(dir))).toBe(false);
    expect(await cache.lookup(WANT, T0)).toBeUndefined();
  });

  test('the file name is a hash: no client id or URL appears in it', () => {
    const name = TokenCache.keyOf(WANT);
    expect(name).toMatch(/^[0-9a-f]{32}$/);
    expect(TokenCache.keyOf({ ...WANT, scope: 'x' })).not.toBe(name);
  });
});
