import { describe, expect, test } from 'vitest';
import { compactVerify, createLocalJWKSet, decodeJwt, decodeProtectedHeader } from 'jose';
import { createPrivateKey } from 'node:crypto';
import {
  DEFAULT_ASSERTION_LIFETIME,
  MAX_ASSERTION_LIFETIME,
  checkLifetime,
  signClientAssertion,
} from '../../../../src/core/auth/assertion.js';
import { SmartError } from '../../../../src/core/errors.js';
import {
  generateSigningKey,
  type SigningAlg,
  type SigningKey,
} from '../../../../src/core/auth/keys.js';

async function key(alg: SigningAlg): Promise<SigningKey> {
  const g = await generateSigningKey(alg);
  return {
    key: createPrivateKey(g.privateKeyPem),
    alg,
    kid: g.kid,
    publicJwk: g.publicJwk,
    source: 'test',
  };
}

const AUD = 'https://aidbox.example.com/auth/token';

describe('signClientAssertion', () => {
  test('header alg/kid/typ and claims iss = sub = client id, aud, iat, exp = iat + 240, jti', async () => {
    const k = await key('RS384');
    const s = await signClientAssertion({
      clientId: 'c1',
      audience: AUD,
      key: k,
      now: 1_700_000_000,
    });
    expect(decodeProtectedHeader(s.jwt)).toEqual({ alg: 'RS384', kid: k.kid, typ: 'JWT' });
    expect(s.header).toEqual({ alg: 'RS384', kid: k.kid, typ: 'JWT' });
    const claims = decodeJwt(s.jwt);
    expect(claims).toEqual(s.claims);
    expect(claims).toMatchObject({
      iss: 'c1',
      sub: 'c1',
      aud: AUD,
      iat: 1_700_000_000,
      exp: 1_700_000_240,
    });
    expect(claims.jti).toMatch(/^[0-9a-f-]{36}$/);
    expect(DEFAULT_ASSERTION_LIFETIME).toBe(240);
  });

  test('the signature verifies with the public JWK', async () => {
    for (const alg of ['RS384', 'ES384'] as const) {
      const k = await key(alg);
      const s = await signClientAssertion({ clientId: 'c1', audience: AUD, key: k });
      const { protectedHeader } = await compactVerify(
        s.jwt,
        createLocalJWKSet({ keys: [k.publicJwk as never] }),
      );
      expect(protectedHeader.alg).toBe(alg);
    }
  });

  test('ES384 signatures are the 96-byte JOSE R||S form, not DER', async () => {
    const s = await signClientAssertion({ clientId: 'c1', audience: AUD, key: await key('ES384') });
    expect(Buffer.from(s.jwt.split('.')[2]!, 'base64url')).toHaveLength(96);
  });

  test('a fresh jti every time', async () => {
    const k = await key('RS384');
    const jtis = new Set<string>();
    for (let i = 0; i < 20; i++) {
      jtis.add(
        (await signClientAssertion({ clientId: 'c1', audience: AUD, key: k, now: 1 })).claims.jti,
      );
    }
    expect(jtis.size).toBe(20);
  });

  test('lifetime and jku', async () => {
    const k = await key('RS384');
    const s = await signClientAssertion({
      clientId: 'c1',
      audience: AUD,
      key: k,
      lifetime: 60,
      jku: 'https://keys.example.org/jwks.json',
      now: 100,
    });
    expect(s.claims.exp).toBe(160);
    expect(decodeProtectedHeader(s.jwt).jku).toBe('https://keys.example.org/jwks.json');
  });

  test('iat defaults to the current time in whole seconds', async () => {
    const s = await signClientAssertion({ clientId: 'c1', audience: AUD, key: await key('RS384') });
    expect(Number.isInteger(s.claims.iat)).toBe(true);
    expect(Math.abs(s.claims.iat - Date.now() / 1000)).toBeLessThan(5);
  });
});

describe('checkLifetime', () => {
  test('1..300 pass', () => {
    expect(checkLifetime(1)).toBe(1);
    expect(checkLifetime(MAX_ASSERTION_LIFETIME)).toBe(300);
  });

  test('over 300 is a usage error (exit 2) that says why', () => {
    try {
      checkLifetime(301);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(SmartError);
      expect((e as SmartError).exitCode).toBe(2);
      expect((e as SmartError).code).toBe('lifetime_too_long');
      expect((e as SmartError).message).toBe('--lifetime 301 is over 300 seconds');
      expect((e as SmartError).hint).toContain('5 minutes');
    }
  });

  test('zero, negative and fractions are refused', () => {
    for (const v of [0, -5, 1.5, Number.NaN]) expect(() => checkLifetime(v)).toThrow(SmartError);
  });

  test('signClientAssertion refuses a long lifetime too', async () => {
    await expect(
      signClientAssertion({
        clientId: 'c',
        audience: AUD,
        key: await key('RS384'),
        lifetime: 3600,
      }),
    ).rejects.toThrow('--lifetime 3600 is over 300 seconds');
  });
});
