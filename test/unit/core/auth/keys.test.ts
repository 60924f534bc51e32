import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT, createLocalJWKSet, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { SmartError } from '../../../../src/core/errors.js';
import {
  KEYGEN_ALGS,
  SIGNING_ALGS,
  checkAlg,
  generateSigningKey,
  loadSigningKey,
  parseJwks,
  parseKey,
  privateMembers,
  publicJwkOf,
  thumbprint,
  type SigningAlg,
} from '../../../../src/core/auth/keys.js';
import { tempDir } from '../../../helpers/tmp.js';
import { rejected } from '../../../helpers/rejected.js';

const tmp = () => tempDir('smart-keys-');

function thrown(fn: () => unknown): SmartError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(SmartError);
    return e as SmartError;
  }
  throw new Error('expected a throw');
}

/** Sign with the loaded private key, verify with the public JWKS entry. */
async function roundTrip(keyPath: string, jwks: { keys: object[] }, alg?: string) {
  const signing = await loadSigningKey(keyPath, alg ? { alg } : {});
  const jwt = await new SignJWT({ sub: 'client' })
    .setProtectedHeader({ alg: signing.alg, kid: signing.kid, typ: 'JWT' })
    .setIssuer('client')
    .setExpirationTime('5m')
    .sign(signing.key);
  const { payload, protectedHeader } = await jwtVerify(
    jwt,
    createLocalJWKSet(jwks as Parameters<typeof createLocalJWKSet>[0]),
    { algorithms: [signing.alg] },
  );
  expect(payload.iss).toBe('client');
  expect(protectedHeader.kid).toBe(signing.kid);
  return signing;
}

describe('generateSigningKey', () => {
  it.each([...KEYGEN_ALGS, 'PS256', 'PS512'] as SigningAlg[])(
    '%s: generate, sign with the PEM, verify with the JWKS',
    async (alg) => {
      const key = await generateSigningKey(alg);
      expect(key.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
      expect(key.publicJwk.kid).toBe(key.kid);
      expect(key.kid).toBe(await thumbprint(key.publicJwk));
      expect(key.publicJwk.alg).toBe(alg);
      expect(key.publicJwk.use).toBe('sig');
      expect(privateMembers({ keys: [key.publicJwk] })).toEqual([]);
      if (alg.startsWith('ES')) expect(key.bits).toBeUndefined();
      else expect(key.bits).toBe(2048);
      const dir = tmp();
      writeFileSync(join(dir, 'k.pem'), key.privateKeyPem);
      const jwks = { keys: [key.publicJwk] };
      writeFileSync(join(dir, 'jwks.json'), JSON.stringify(jwks));
      const signing = await roundTrip(join(dir, 'k.pem'), jwks);
      expect(signing.alg).toBe(alg);
    },
  );

  it('keeps a custom kid, recovered from the jwks.json beside the key', async () => {
    const key = await generateSigningKey('RS384', { kid: 'my-kid-2026', bits: 3072 });
    expect(key.publicJwk.kid).toBe('my-kid-2026');
    expect(key.bits).toBe(3072);
    const dir = tmp();
    writeFileSync(join(dir, 'k.pem'), key.privateKeyPem);
    writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [key.publicJwk] }));
    const signing = await roundTrip(join(dir, 'k.pem'), { keys: [key.publicJwk] });
    expect(signing.kid).toBe('my-kid-2026');
  });

  it('refuses RSA keys under 2048 bits and bits for EC keys', async () => {
    const small = await rejected(generateSigningKey('RS384', { bits: 1024 }));
    expect(small.code).toBe('bad_bits');
    expect(small.exitCode).toBe(2);
    expect((await rejected(generateSigningKey('ES384', { bits: 2048 }))).message).toContain(
      'RSA keys only',
    );
  });

  it('checks algorithm names', () => {
    expect(checkAlg('rs384')).toBe('RS384');
    const e = thrown(() => checkAlg('HS256'));
    expect(e.code).toBe('bad_alg');
    expect(e.hint).toContain(SIGNING_ALGS[0]);
    expect(thrown(() => checkAlg('PS256', KEYGEN_ALGS)).message).toContain('PS256');
  });
});

describe('importing keys made elsewhere', () => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });

  it('reads PKCS#1 "RSA PRIVATE KEY" and signs RS384 with it', async () => {
    const pem = rsa.privateKey.export({ format: 'pem', type: 'pkcs1' }) as string;
    expect(pem).toContain('BEGIN RSA PRIVATE KEY');
    const parsed = parseKey(pem, 'rsa.pem');
    expect(parsed.type).toBe('private');
    expect(parsed.format).toBe('RSA PRIVATE KEY');
    const dir = tmp();
    writeFileSync(join(dir, 'rsa.pem'), pem);
    const jwk = publicJwkOf(rsa.publicKey, {
      kid: await thumbprint(publicJwkOf(rsa.publicKey)),
      alg: 'RS384',
    });
    const signing = await roundTrip(join(dir, 'rsa.pem'), { keys: [jwk] });
    expect(signing.alg).toBe('RS384');
  });

  it('reads SEC1 "EC PRIVATE KEY" and signs ES384 with it', async () => {
    const pem = ec.privateKey.export({ format: 'pem', type: 'sec1' }) as string;
    expect(pem).toContain('BEGIN EC PRIVATE KEY');
    const dir = tmp();
    writeFileSync(join(dir, 'ec.pem'), pem);
    const jwk = publicJwkOf(ec.publicKey, {
      kid: await thumbprint(publicJwkOf(ec.publicKey)),
      alg: 'ES384',
    });
    const signing = await roundTrip(join(dir, 'ec.pem'), { keys: [jwk] });
    expect(signing.alg).toBe('ES384');
  });

  it('reads SPKI public PEM as a public key (not usable for signing)', async () => {
    const pem = rsa.publicKey.export({ format: 'pem', type: 'spki' }) as string;
    const parsed = parseKey(pem, 'pub.pem');
    expect(parsed.type).toBe('public');
    expect(publicJwkOf(parsed.key).n).toBe(publicJwkOf(rsa.publicKey).n);
    const dir = tmp();
    writeFileSync(join(dir, 'pub.pem'), pem);
    expect((await rejected(loadSigningKey(join(dir, 'pub.pem')))).message).toContain('public key');
  });

  it('reads a private JWK, keeping its kid and alg', async () => {
    const jwk = {
      ...(ec.privateKey.export({ format: 'jwk' }) as object),
      kid: 'ec-1',
      alg: 'ES384',
    };
    const dir = tmp();
    writeFileSync(join(dir, 'k.json'), JSON.stringify(jwk));
    const pub = publicJwkOf(ec.publicKey, { kid: 'ec-1', alg: 'ES384' });
    const signing = await roundTrip(join(dir, 'k.json'), { keys: [pub] });
    expect(signing.kid).toBe('ec-1');
    expect(parseKey(JSON.stringify({ keys: [jwk] }), 'set.json').type).toBe('private');
  });

  it('rejects malformed, encrypted and unsupported input with a usage error naming the file', () => {
    expect(thrown(() => parseKey('hello', 'x.pem')).message).toContain('x.pem');
    expect(thrown(() => parseKey('{"a":1}', 'x.json')).message).toContain('not a JWK');
    expect(thrown(() => parseKey('{', 'x.json')).message).toContain('not valid JSON');
    expect(
      thrown(() =>
        parseKey('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----', 'bad.pem'),
      ).message,
    ).toContain('malformed');
    const encrypted = rsa.privateKey.export({
      format: 'pem',
      type: 'pkcs8',
      cipher: 'aes-256-cbc',
      passphrase: 'x',
    }) as string;
    expect(thrown(() => parseKey(encrypted, 'enc.pem')).message).toContain('encrypted');
    expect(
      thrown(() => parseKey('-----BEGIN FOO-----\n-----END FOO-----', 'foo.pem')).message,
    ).toContain('FOO');
  });

  it('refuses small RSA keys and algorithms that do not fit the key', async () => {
    const dir = tmp();
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 });
    writeFileSync(
      join(dir, 'small.pem'),
      small.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string,
    );
    expect((await rejected(loadSigningKey(join(dir, 'small.pem')))).message).toContain('1024 bits');
    writeFileSync(
      join(dir, 'ec.pem'),
      ec.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string,
    );
    const e = await rejected(loadSigningKey(join(dir, 'ec.pem'), { alg: 'RS384' }));
    expect(e.code).toBe('bad_alg');
    expect((await rejected(loadSigningKey(join(dir, 'missing.pem')))).message).toContain(
      'not found',
    );
  });
});

describe('JWKS parsing', () => {
  it('accepts a JWKS and reports private members', () => {
    const jwks = parseJwks(
      JSON.stringify({ keys: [{ kty: 'RSA', kid: 'a', n: 'x', e: 'AQAB', d: 'secret', p: 'q' }] }),
      'f',
    );
    expect(privateMembers(jwks)).toEqual(['keys[0] (kid a): d, p']);
  });

  it('rejects what is not a JWKS', () => {
    expect(thrown(() => parseJwks('[]', 'f.json')).code).toBe('not_jwks');
    expect(thrown(() => parseJwks('{"keys":[{"kid":"x"}]}', 'f.json')).message).toContain(
      'keys[0]',
    );
    expect(thrown(() => parseJwks('nope', 'f.json')).message).toContain('f.json');
  });
});
