import { describe, expect, test } from 'vitest';
import { createPrivateKey } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { signClientAssertion } from '../../../../src/core/auth/assertion.js';
import { SmartError } from '../../../../src/core/errors.js';
import { generateSigningKey, type SigningAlg } from '../../../../src/core/auth/keys.js';
import {
  checkAssertionRules,
  decodeJwt,
  describeTimes,
  loadJwks,
  looksLikeClientAssertion,
  verifyJwtSignature,
} from '../../../../src/core/auth/jwt.js';
import { fakeHttp } from '../../../helpers/fake-http.js';
import { tempDir } from '../../../helpers/tmp.js';

const AUD = 'https://server.example.org/auth/token';
const NOW = 1_800_000_000;

async function material(alg: SigningAlg = 'RS384') {
  const g = await generateSigningKey(alg);
  const key = createPrivateKey(g.privateKeyPem);
  return { g, key, signing: { key, alg, kid: g.kid, publicJwk: g.publicJwk, source: 't' } };
}

describe('decodeJwt', () => {
  test('header and claims, with or without "Bearer "', async () => {
    const { signing } = await material();
    const s = await signClientAssertion({ clientId: 'c', audience: AUD, key: signing, now: NOW });
    expect(decodeJwt(s.jwt)).toEqual({ header: s.header, claims: s.claims });
    expect(decodeJwt(`Bearer ${s.jwt}\n`).claims).toEqual(s.claims);
  });

  test('errors are usage errors that never repeat the token', () => {
    const cases: Array<[string, RegExp]> = [
      ['secret-thing', /expected three base64url parts separated by dots, got 1 part$/],
      ['a.b', /got 2 parts/],
      ['a.b.c.d.e', /encrypted JWT/],
      ['e30.!!!.x', /payload is not base64url/],
      [`${Buffer.from('[1]').toString('base64url')}.e30.x`, /header is not a JSON object/],
      [
        `e30.${Buffer.from('not json').toString('base64url')}.x`,
        /payload is not base64url-encoded JSON/,
      ],
    ];
    for (const [input, message] of cases) {
      try {
        decodeJwt(input);
        expect.unreachable(input);
      } catch (e) {
        expect((e as SmartError).kind).toBe('usage');
        expect((e as SmartError).message).toMatch(message);
        expect((e as SmartError).message).not.toContain(input);
      }
    }
  });
});

describe('describeTimes', () => {
  test('iat, nbf and exp as ISO dates and relative to now', () => {
    const t = describeTimes({ iat: NOW - 48, nbf: NOW + 60, exp: NOW + 252, other: 1 }, NOW * 1000);
    expect(t).toEqual([
      {
        claim: 'iat',
        epoch: NOW - 48,
        iso: new Date((NOW - 48) * 1000).toISOString(),
        relative: 'issued 48s ago',
      },
      {
        claim: 'nbf',
        epoch: NOW + 60,
        iso: new Date((NOW + 60) * 1000).toISOString(),
        relative: 'not valid yet: valid in 1m',
      },
      {
        claim: 'exp',
        epoch: NOW + 252,
        iso: new Date((NOW + 252) * 1000).toISOString(),
        relative: 'expires in 4m12s',
      },
    ]);
  });

  test('expired, and iat in the future', () => {
    const t = describeTimes({ iat: NOW + 30, exp: NOW - 180 }, NOW * 1000);
    expect(t.map((x) => x.relative)).toEqual([
      'issued in 30s (in the future: clock skew?)',
      'expired 3m ago',
    ]);
  });

  test('non-numeric times are skipped', () => {
    expect(describeTimes({ exp: 'tomorrow' }, NOW * 1000)).toEqual([]);
  });
});

function decoded(header: Record<string, unknown>, claims: Record<string, unknown>) {
  return { header, claims };
}

const GOOD = decoded(
  { alg: 'RS384', kid: 'k1', typ: 'JWT' },
  { iss: 'c', sub: 'c', aud: AUD, iat: NOW, exp: NOW + 300, jti: 'j1' },
);

describe('client assertion rules', () => {
  test('looksLikeClientAssertion: an aud URL, an iss or sub, no access-token claims', () => {
    expect(looksLikeClientAssertion(GOOD)).toBe(true);
    const is = (header: Record<string, unknown>, claims: Record<string, unknown>) =>
      looksLikeClientAssertion(decoded(header, claims));
    // Access tokens: RFC 9068 typ, scope / client_id claims, a server URL as iss.
    expect(is({ ...GOOD.header, typ: 'at+jwt' }, GOOD.claims)).toBe(false);
    expect(is(GOOD.header, { ...GOOD.claims, scope: 'system/*.read' })).toBe(false);
    expect(is(GOOD.header, { ...GOOD.claims, client_id: 'c' })).toBe(false);
    expect(is(GOOD.header, { ...GOOD.claims, iss: 'https://auth.example.org', sub: 'c' })).toBe(
      false,
    );
    // An ID token: aud is a client id, not a URL.
    expect(is(GOOD.header, { ...GOOD.claims, aud: 'fhir' })).toBe(false);
    expect(is(GOOD.header, { ...GOOD.claims, iss: undefined, sub: undefined })).toBe(false);
  });

  test('a broken assertion is still recognised, so that its violations are listed', () => {
    const { typ: _typ, ...noTyp } = GOOD.header;
    expect(looksLikeClientAssertion(decoded(noTyp, GOOD.claims))).toBe(true);
    expect(looksLikeClientAssertion(decoded(GOOD.header, { ...GOOD.claims, sub: 'x' }))).toBe(true);
    expect(looksLikeClientAssertion(decoded(GOOD.header, { ...GOOD.claims, jti: undefined }))).toBe(
      true,
    );
    expect(
      looksLikeClientAssertion(decoded({ alg: 'RS256' }, { iss: 'c', aud: AUD, exp: NOW + 3600 })),
    ).toBe(true);
  });

  test('a good assertion passes every rule', () => {
    const checks = checkAssertionRules(GOOD, { nowMs: NOW * 1000 });
    expect(checks.map((c) => c.rule)).toEqual([
      'typ',
      'kid',
      'alg',
      'iss = sub',
      'aud',
      'exp ≤ 5 min',
      'not expired',
      'jti',
    ]);
    expect(checks.filter((c) => !c.ok)).toEqual([]);
  });

  const failing = (
    header: Record<string, unknown>,
    claims: Record<string, unknown>,
    audience?: string,
  ) =>
    checkAssertionRules(decoded({ ...GOOD.header, ...header }, { ...GOOD.claims, ...claims }), {
      nowMs: NOW * 1000,
      audience,
    })
      .filter((c) => !c.ok)
      .map((c) => c.rule);

  test.each([
    ['typ missing', { typ: undefined }, {}, ['typ']],
    ['kid missing', { kid: undefined }, {}, ['kid']],
    ['alg none', { alg: 'none' }, {}, ['alg']],
    ['alg HS256', { alg: 'HS256' }, {}, ['alg']],
    ['iss != sub', {}, { sub: 'other' }, ['iss = sub']],
    ['no iss', {}, { iss: undefined }, ['iss = sub']],
    ['no aud', {}, { aud: undefined }, ['aud']],
    ['aud not a URL', {}, { aud: 'my-server' }, ['aud']],
    ['exp missing', {}, { exp: undefined }, ['exp']],
    ['exp 301 s after iat', {}, { exp: NOW + 301 }, ['exp ≤ 5 min']],
    ['expired', {}, { iat: NOW - 400, exp: NOW - 100 }, ['not expired']],
    ['exp fractional', {}, { exp: NOW + 10.5 }, ['exp']],
    ['no jti', {}, { jti: undefined }, ['jti']],
  ])('%s', (_name, header, claims, rules) => {
    expect(failing(header, claims)).toEqual(rules);
  });

  test('without iat, exp is measured from now', () => {
    expect(failing({}, { iat: undefined, exp: NOW + 299 })).toEqual([]);
    expect(failing({}, { iat: undefined, exp: NOW + 400 })).toEqual(['exp ≤ 5 min']);
  });

  test('an expected audience is compared exactly', () => {
    expect(failing({}, {}, AUD)).toEqual([]);
    expect(failing({}, {}, 'https://other.example.org/token')).toEqual(['aud']);
  });

  test('an allowed-alg list narrows the set', () => {
    const checks = checkAssertionRules(GOOD, { nowMs: NOW * 1000, allowedAlgs: ['ES384'] });
    expect(checks.find((c) => c.rule === 'alg')!.ok).toBe(false);
  });
});

describe('verifyJwtSignature', () => {
  test('verified with the matching key', async () => {
    const { g, signing } = await material('ES384');
    const s = await signClientAssertion({ clientId: 'c', audience: AUD, key: signing });
    expect(await verifyJwtSignature(s.jwt, { keys: [g.publicJwk] }, 'jwks.json')).toEqual({
      verified: true,
      source: 'jwks.json',
      kid: g.kid,
      alg: 'ES384',
    });
  });

  test('an expired token still has a valid signature (claims are checked apart)', async () => {
    const { g, signing } = await material();
    const s = await signClientAssertion({ clientId: 'c', audience: AUD, key: signing, now: 1000 });
    expect((await verifyJwtSignature(s.jwt, { keys: [g.publicJwk] }, 'f')).verified).toBe(true);
  });

  test('no matching kid, wrong key material, alg none', async () => {
    const a = await material();
    const b = await material();
    const s = await signClientAssertion({ clientId: 'c', audience: AUD, key: a.signing });
    const noKid = await verifyJwtSignature(s.jwt, { keys: [b.g.publicJwk] }, 'f');
    expect(noKid).toMatchObject({
      verified: false,
      reason: `no key in f matches kid ${a.g.kid} and alg RS384`,
    });
    const impostor = await verifyJwtSignature(
      s.jwt,
      { keys: [{ ...b.g.publicJwk, kid: a.g.kid }] },
      'f',
    );
    expect(impostor).toMatchObject({
      verified: false,
      reason: `the signature does not verify with key ${a.g.kid} of f`,
    });
    const unsigned = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{}').toString('base64url')}.`;
    expect(await verifyJwtSignature(unsigned, { keys: [a.g.publicJwk] }, 'f')).toMatchObject({
      verified: false,
      reason: 'the token is not signed (alg none)',
    });
  });

  test('duplicate kids are reported', async () => {
    const a = await material();
    const s = await new SignJWT({}).setProtectedHeader({ alg: 'RS384', kid: 'dup' }).sign(a.key);
    const r = await verifyJwtSignature(
      s,
      {
        keys: [
          { ...a.g.publicJwk, kid: 'dup' },
          { ...a.g.publicJwk, kid: 'dup' },
        ],
      },
      'f',
    );
    expect(r).toMatchObject({ verified: false });
    expect(r.reason).toContain('several keys');
  });
});

describe('loadJwks', () => {
  test('from a file', async () => {
    const { g } = await material();
    const dir = tempDir('jwt-test-');
    const file = join(dir, 'jwks.json');
    writeFileSync(file, JSON.stringify({ keys: [g.publicJwk] }));
    const http = fakeHttp(() => ({ status: 500 }));
    expect(await loadJwks(file, async () => http)).toEqual({ keys: [g.publicJwk] });
    expect(http.calls).toHaveLength(0);
  });

  test('from a URL: one GET with Accept JSON and nothing else', async () => {
    const { g } = await material();
    const http = fakeHttp(() => ({ body: { keys: [g.publicJwk] } }));
    expect(await loadJwks('https://keys.example.org/jwks.json', async () => http)).toEqual({
      keys: [g.publicJwk],
    });
    expect(http.calls).toEqual([
      {
        url: 'https://keys.example.org/jwks.json',
        method: 'GET',
        headers: { accept: 'application/json' },
        body: '',
      },
    ]);
  });

  test('a URL that is not a JWKS, or answers 404', async () => {
    const html = fakeHttp(() => ({ body: '<html></html>', contentType: 'text/html' }));
    await expect(loadJwks('https://k.example.org/j', async () => html)).rejects.toThrow(
      'did not answer with a JWKS (text/html)',
    );
    const gone = fakeHttp(() => ({ status: 404, body: 'nope' }));
    await expect(loadJwks('https://k.example.org/j', async () => gone)).rejects.toThrow(
      'answered 404',
    );
  });
});
