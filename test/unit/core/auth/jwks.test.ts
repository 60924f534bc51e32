import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
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
  startJwksServer,
  type JwksFetchEvent,
  type JwksServer,
} from '../../../../src/core/jwks-server.js';
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

describe('startJwksServer', () => {
  let server: JwksServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  async function setup(maxAge?: number) {
    const dir = tmp();
    const file = join(dir, 'jwks.json');
    const key = await generateSigningKey('ES384', { kid: 'k1' });
    writeFileSync(file, JSON.stringify({ keys: [key.publicJwk] }));
    const events: JwksFetchEvent[] = [];
    server = await startJwksServer({ file, port: 0, maxAge, onRequest: (e) => events.push(e) });
    return { file, events, server, key };
  }

  it('serves the JWKS at both paths with JSON and Cache-Control, and logs each fetch', async () => {
    const { server, events, key } = await setup(120);
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\.well-known\/jwks\.json$/);
    const res = await fetch(server.url, { headers: { 'user-agent': 'Aidbox/1.0' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.get('cache-control')).toBe('public, max-age=120');
    expect(await res.json()).toEqual({ keys: [key.publicJwk] });
    const alt = await fetch(server.url.replace('/.well-known/jwks.json', '/jwks.json'));
    expect(alt.status).toBe(200);
    await alt.arrayBuffer();
    const missing = await fetch(server.url.replace('/.well-known/jwks.json', '/other'));
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toBe('application/json');
    expect(((await missing.json()) as { error: string }).error).toBe('not_found');
    expect(events.map((e) => [e.path, e.status])).toEqual([
      ['/.well-known/jwks.json', 200],
      ['/jwks.json', 200],
      ['/other', 404],
    ]);
    expect(events[0]!.userAgent).toBe('Aidbox/1.0');
    expect(events[0]!.remoteAddress).toContain('127.0.0.1');
    expect(events[0]!.time).toBeInstanceOf(Date);
  });

  it('re-reads the file when it changes, but never serves private members', async () => {
    const { file, server } = await setup();
    const k2 = await generateSigningKey('RS384', { kid: 'k2' });
    const first = (await (await fetch(server.url)).json()) as { keys: unknown[] };
    writeFileSync(file, JSON.stringify({ keys: [...first.keys, k2.publicJwk] }));
    const second = (await (await fetch(server.url)).json()) as { keys: Array<{ kid: string }> };
    expect(second.keys.map((k) => k.kid)).toEqual(['k1', 'k2']);
    writeFileSync(file, JSON.stringify({ keys: [{ ...k2.publicJwk, d: 'leak-me-not-please' }] }));
    const third = await (await fetch(server.url)).text();
    expect(third).not.toContain('leak-me');
    expect(JSON.parse(third).keys).toHaveLength(2);
  });

  it('refuses to start on a JWKS with private members, listing them', async () => {
    const dir = tmp();
    const file = join(dir, 'jwks.json');
    writeFileSync(
      file,
      JSON.stringify({ keys: [{ kty: 'EC', kid: 'bad', crv: 'P-256', x: 'a', y: 'b', d: 'c' }] }),
    );
    const e = await rejected(startJwksServer({ file, port: 0 }));
    expect(e.exitCode).toBe(2);
    expect(e.message).toContain('keys[0] (kid bad): d');
  });

  it('says which port is in use', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    try {
      const e = await rejected(startJwksServer({ jwks: { keys: [] }, port }));
      expect(e.message).toBe(`cannot listen on 127.0.0.1:${port}: the port is already in use`);
      expect(e.exitCode).toBe(1);
      expect(e.hint).toContain('--port');
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });
});
