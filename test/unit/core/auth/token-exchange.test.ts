import { describe, expect, test } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { exchangeToken, type TokenExchange } from '../../../../src/core/auth/token-exchange.js';
import { generateSigningKey, signingKeyOf } from '../../../../src/core/auth/keys.js';
import { fakeHttp, formOf, testSettings, type FakeHandler } from '../../../helpers/fake-http.js';

// The exchange on its own; through the TokenProvider (cache, discovery, the hints of every
// refusal) it is covered by token.test.ts.

const TOKEN_URL = 'https://auth.example.org/auth/token';
const T0 = 1_800_000_000_000;

async function exchange(handler: FakeHandler, over: Partial<TokenExchange> = {}) {
  const g = await generateSigningKey('ES256');
  const key = await signingKeyOf({ path: 'key.pem', text: g.privateKeyPem });
  const http = fakeHttp(handler);
  const sleeps: number[] = [];
  let now = T0;
  const x: TokenExchange = {
    settings: testSettings({ clientId: 'c1', tokenUrl: TOKEN_URL }),
    http,
    now: () => now,
    sleep: async (ms) => {
      sleeps.push(ms);
      now += ms;
    },
    audience: 'https://own-name.example.org/auth/token',
    ...over,
  };
  const p = {
    tokenUrl: TOKEN_URL,
    clientId: 'c1',
    scope: 'system/*.read',
    key,
    keyFingerprint: 'f'.repeat(16),
  };
  return { x, p, http, sleeps, key, run: () => exchangeToken(x, p) };
}

describe('exchangeToken', () => {
  test('one POST with an assertion for the audience given; the token as answered, not stored', async () => {
    const e = await exchange(() => ({
      body: { access_token: 'tok', token_type: 'bearer', expires_in: 300, scope: 'system/*.read' },
    }));
    const t = await e.run();
    expect(t).toMatchObject({
      accessToken: 'tok',
      tokenType: 'bearer',
      requestedScope: 'system/*.read',
      expiresAt: T0 + 300_000,
      obtainedAt: T0,
      kid: e.key.kid,
      keyFingerprint: 'f'.repeat(16),
      fromCache: false,
    });
    expect(e.http.calls.map((c) => `${c.method} ${c.url}`)).toEqual([`POST ${TOKEN_URL}`]);
    const claims = decodeJwt(formOf(e.http.calls[0]!).client_assertion!);
    expect(claims.aud).toBe('https://own-name.example.org/auth/token');
    // The provider stores it; the exchange writes nothing.
    expect(existsSync(join(e.x.settings.paths.cacheDir, 'tokens'))).toBe(false);
  });

  test('a 429 with Retry-After: waits that long, then signs a new assertion', async () => {
    let n = 0;
    const e = await exchange(() =>
      ++n === 1
        ? { status: 429, headers: { 'retry-after': '2' } }
        : { body: { access_token: 'tok', token_type: 'Bearer', expires_in: 60 } },
    );
    expect((await e.run()).accessToken).toBe('tok');
    expect(e.sleeps).toEqual([2000]);
    const [a, b] = e.http.calls.map((c) => decodeJwt(formOf(c).client_assertion!).jti);
    expect(a).not.toBe(b);
  });

  test('a refusal names the algs the server advertises, as the provider passes them', async () => {
    const e = await exchange(
      () => ({
        status: 400,
        body: { error: 'invalid_client', error_description: "assertion alg 'ES256' not allowed" },
      }),
      { advertisedAlgs: ['RS384'] },
    );
    await expect(e.run()).rejects.toMatchObject({
      hint: 'the key signs with ES256; the server advertises RS384: make a key with `smart keygen --alg RS384`',
    });
  });
});
