import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SmartError } from '../../../../src/core/errors.js';
import {
  addKeyFileToJwks,
  addKeyToJwks,
  createKeyPair,
  importPublicJwk,
  privateKeyFileName,
  readJwksOrEmpty,
  removeKeyFromJwks,
  removeKidFromJwksFile,
  stripPrivate,
  summarizeJwk,
  writeJwksFile,
} from '../../../../src/core/auth/jwks.js';
import {
  generateSigningKey,
  privateMembers,
  publicJwkOf,
  thumbprint,
} from '../../../../src/core/auth/keys.js';
import { tempDir } from '../../../helpers/tmp.js';
import { rejected } from '../../../helpers/rejected.js';

const tmp = () => tempDir('smart-jwks-');

describe('JWKS file operations', () => {
  it('adds keys beside each other (rotation) and refuses a duplicate kid without force', async () => {
    const a = await generateSigningKey('RS384', { kid: 'a' });
    const b = await generateSigningKey('ES384', { kid: 'b' });
    let { jwks } = await addKeyToJwks({ keys: [] }, a.publicJwk, 'f');
    ({ jwks } = await addKeyToJwks(jwks, b.publicJwk, 'f'));
    expect(jwks.keys.map((k) => k.kid)).toEqual(['a', 'b']);

    const a2 = await generateSigningKey('RS384', { kid: 'a' });
    const dup = await rejected(addKeyToJwks(jwks, a2.publicJwk, 'f'));
    expect(dup.code).toBe('kid_exists');
    expect(dup.hint).toContain('--force');
    const forced = await addKeyToJwks(jwks, a2.publicJwk, 'f', { force: true });
    expect(forced.replaced).toEqual(['a']);
    expect(forced.jwks.keys.map((k) => k.kid)).toEqual(['b', 'a']);
    expect(forced.jwks.keys[1]!.n).toBe(a2.publicJwk.n);
  });

  it('notices the same key under another kid', async () => {
    const a = await generateSigningKey('ES256', { kid: 'one' });
    const { jwks } = await addKeyToJwks({ keys: [] }, a.publicJwk, 'f');
    const e = await rejected(addKeyToJwks(jwks, { ...a.publicJwk, kid: 'two' }, 'f'));
    expect(e.message).toContain('"one"');
  });

  it('removes by kid, listing the kids there are when it is unknown', () => {
    const jwks = {
      keys: [
        { kty: 'EC', kid: 'x' },
        { kty: 'EC', kid: 'y' },
      ],
    };
    expect(removeKeyFromJwks(jwks, 'x', 'f').keys).toEqual([{ kty: 'EC', kid: 'y' }]);
    try {
      removeKeyFromJwks(jwks, 'z', 'f.json');
      throw new Error('no throw');
    } catch (e) {
      expect((e as SmartError).message).toBe('no key with kid "z" in f.json');
      expect((e as SmartError).hint).toContain('x, y');
    }
  });

  it('writes JWKS files with mode 0644, never with private members', async () => {
    const dir = tmp();
    const path = join(dir, 'sub', 'jwks.json');
    expect(await readJwksOrEmpty(path)).toEqual({ keys: [] });
    await writeJwksFile(path, { keys: [{ kty: 'EC', kid: 'x', crv: 'P-256', x: 'a', y: 'b' }] });
    expect(statSync(path).mode & 0o777).toBe(0o644);
    const e = await rejected(writeJwksFile(path, { keys: [{ kty: 'EC', kid: 'x', d: 'secret' }] }));
    expect(e.code).toBe('private_members');
    expect(JSON.parse(readFileSync(path, 'utf8')).keys[0].d).toBeUndefined();
    await removeKidFromJwksFile(path, 'x');
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({ keys: [] });
  });

  it('summarizes keys for a table and strips private members for display', () => {
    expect(
      summarizeJwk({
        kty: 'RSA',
        kid: 'k',
        alg: 'RS384',
        use: 'sig',
        n: Buffer.alloc(256).toString('base64url'),
        e: 'AQAB',
      }),
    ).toEqual({
      kid: 'k',
      kty: 'RSA',
      alg: 'RS384',
      use: 'sig',
      size: '2048 bits',
      private: false,
    });
    expect(summarizeJwk({ kty: 'EC', crv: 'P-384', d: 'x' })).toMatchObject({
      size: 'P-384',
      private: true,
    });
    expect(stripPrivate({ keys: [{ kty: 'EC', d: 'x', x: 'y' }] })).toEqual({
      keys: [{ kty: 'EC', x: 'y' }],
    });
  });

  it('names private key files readably', () => {
    expect(privateKeyFileName('RS384', 'AbCdEfGhIjK')).toBe('private-rs384-AbCdEfGh.pem');
    expect(privateKeyFileName('ES384', 'my key/1')).toBe('private-es384-my_key_1.pem');
  });
});

describe('importing a key into a JWKS', () => {
  it('imports the public part of a PKCS#1 key with its thumbprint as kid', async () => {
    const dir = tmp();
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(join(dir, 'rsa.pem'), privateKey.export({ format: 'pem', type: 'pkcs1' }));
    const added = await addKeyFileToJwks(join(dir, 'rsa.pem'), join(dir, 'jwks.json'));
    expect(added.kid).toBe(await thumbprint(publicJwkOf(publicKey)));
    expect(added.alg).toBe('RS384');
    const jwks = JSON.parse(readFileSync(join(dir, 'jwks.json'), 'utf8'));
    expect(jwks.keys).toHaveLength(1);
    expect(privateMembers(jwks)).toEqual([]);
    expect(jwks.keys[0]).toMatchObject({ kty: 'RSA', alg: 'RS384', use: 'sig', kid: added.kid });
  });

  it('takes --kid and --alg, and refuses an alg that does not fit', async () => {
    const dir = tmp();
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    writeFileSync(join(dir, 'ec.pem'), privateKey.export({ format: 'pem', type: 'sec1' }));
    const imported = await importPublicJwk(join(dir, 'ec.pem'), { kid: 'ec' });
    expect([imported.kid, imported.alg]).toEqual(['ec', 'ES256']);
    expect((await rejected(importPublicJwk(join(dir, 'ec.pem'), { alg: 'ES384' }))).code).toBe(
      'bad_alg',
    );
  });

  it('refuses a small RSA key', async () => {
    const dir = tmp();
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    writeFileSync(join(dir, 'pub.pem'), publicKey.export({ format: 'pem', type: 'spki' }));
    expect((await rejected(importPublicJwk(join(dir, 'pub.pem')))).message).toContain('1024 bits');
  });
});

describe('createKeyPair', () => {
  it('writes a 0600 PKCS#8 key and a 0644 JWKS, and refuses to overwrite', async () => {
    const dir = join(tmp(), 'keys');
    const created = await createKeyPair({ dir, kid: 'fixed' });
    expect(created.alg).toBe('RS384');
    expect(created.bits).toBe(2048);
    expect(created.privateKey).toBe(join(dir, 'private-rs384-fixed.pem'));
    expect(statSync(created.privateKey).mode & 0o777).toBe(0o600);
    expect(statSync(created.jwks).mode & 0o777).toBe(0o644);
    expect(readFileSync(created.privateKey, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);

    const again = await rejected(createKeyPair({ dir, kid: 'fixed' }));
    expect(again.code).toBe('file_exists');
    expect(again.hint).toContain('--force');
    const forced = await createKeyPair({ dir, kid: 'fixed', force: true });
    expect(forced.count).toBe(1);
    expect(forced.replaced).toEqual(['fixed']);

    const second = await createKeyPair({ dir, alg: 'ES384' });
    expect(second.count).toBe(2);
    expect(existsSync(second.privateKey)).toBe(true);
  });

  it('checks alg and bits before writing anything', async () => {
    const dir = join(tmp(), 'keys');
    expect((await rejected(createKeyPair({ dir, alg: 'HS256' }))).code).toBe('bad_alg');
    expect((await rejected(createKeyPair({ dir, bits: 1024 }))).code).toBe('bad_bits');
    expect(existsSync(dir)).toBe(false);
  });
});
