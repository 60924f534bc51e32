import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { BIN, json, makeWorkspace, runSmart, type Workspace } from '../helpers/cli.js';

const PRIVATE = ['d', 'p', 'q', 'dp', 'dq', 'qi'];

async function keygen(ws: Workspace, ...args: string[]) {
  const r = await runSmart(['keygen', '--no-save', '-o', 'json', ...args], { ws });
  expect(r.exitCode).toBe(0);
  return json<{ kid: string; jwks: string; privateKey: string }>(r);
}

describe('smart jwks show / add / remove', () => {
  it('shows the keys as a table, and the JWKS itself as JSON', async () => {
    const ws = makeWorkspace();
    const a = await keygen(ws);
    const b = await keygen(ws, '--alg', 'ES384', '--kid', 'ec-key');
    const table = await runSmart(['jwks', 'show', '-o', 'table'], { ws });
    expect(table.exitCode).toBe(0);
    expect(table.stdout).toContain(a.kid);
    expect(table.stdout).toMatch(/RSA.*RS384.*sig.*2048 bits/);
    expect(table.stdout).toMatch(/ec-key.*EC.*ES384.*sig.*P-384/);
    const asJson = await runSmart(['jwks', 'show', a.jwks], { ws });
    expect(json(asJson)).toEqual(JSON.parse(readFileSync(b.jwks, 'utf8')));
    const csv = await runSmart(['jwks', 'show', '-o', 'csv'], { ws });
    expect(csv.stdout.split('\r\n')[0]).toBe('kid,kty,alg,use,size');
  });

  it('imports a PKCS#1 key: only the public part is written', async () => {
    const ws = makeWorkspace();
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(join(ws.home, 'legacy.pem'), privateKey.export({ format: 'pem', type: 'pkcs1' }));
    const out = join(ws.home, 'public', 'jwks.json');
    const r = await runSmart(
      ['jwks', 'add', 'legacy.pem', '--kid', 'legacy', '--file', out, '-o', 'json'],
      { ws },
    );
    expect(r.exitCode).toBe(0);
    expect(json(r)).toMatchObject({ kid: 'legacy', alg: 'RS384', jwks: out });
    expect(r.stderr).toContain('RSA PRIVATE KEY');
    const jwks = JSON.parse(readFileSync(out, 'utf8'));
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kty: 'RSA', kid: 'legacy', alg: 'RS384', use: 'sig' });
    for (const m of PRIVATE) expect(jwks.keys[0]).not.toHaveProperty(m);
    expect(r.stdout).not.toMatch(/"d"/);

    const again = await runSmart(['jwks', 'add', 'legacy.pem', '--kid', 'other', '--file', out], {
      ws,
    });
    expect(again.exitCode).toBe(2);
    expect(again.stderr.split('\n')[0]).toContain('already holds this key (kid "legacy")');
  });

  it('removes a key by kid, and names the kids when it is unknown', async () => {
    const ws = makeWorkspace();
    const a = await keygen(ws, '--kid', 'one');
    await keygen(ws, '--kid', 'two', '--alg', 'ES256');
    const r = await runSmart(['jwks', 'remove', 'one', '-o', 'json'], { ws });
    expect(r.exitCode).toBe(0);
    expect(json(r)).toEqual({ removed: 'one', jwks: a.jwks, remaining: 1 });
    const missing = await runSmart(['jwks', 'remove', 'nope'], { ws });
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toBe(
      `error: no key with kid "nope" in ${a.jwks}\nhint: kids in that file: two\n`,
    );
  });

  it('rejects a malformed key file and a file that is not a JWKS', async () => {
    const ws = makeWorkspace();
    writeFileSync(join(ws.home, 'junk.pem'), 'not a key');
    const bad = await runSmart(['jwks', 'add', 'junk.pem'], { ws });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr.split('\n')[0]).toContain(join(ws.home, 'junk.pem'));
    writeFileSync(join(ws.home, 'x.json'), '[1,2]');
    const notJwks = await runSmart(['jwks', 'show', 'x.json'], { ws });
    expect(notJwks.exitCode).toBe(2);
    expect(notJwks.stderr.split('\n')[0]).toBe(
      `error: ${join(ws.home, 'x.json')} is not a JWKS (no "keys" array)`,
    );
    const missing = await runSmart(['jwks', 'show'], { ws });
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr.split('\n')[0]).toContain('JWKS file not found');
  });

  it('show never prints private members', async () => {
    const ws = makeWorkspace();
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    const jwk = { ...(privateKey.export({ format: 'jwk' }) as object), kid: 'leaky' };
    writeFileSync(join(ws.home, 'leaky.json'), JSON.stringify({ keys: [jwk] }));
    const r = await runSmart(['jwks', 'show', 'leaky.json', '-o', 'json'], { ws });
    expect(r.exitCode).toBe(0);
    expect(json<{ keys: object[] }>(r).keys[0]).not.toHaveProperty('d');
    expect(r.stderr).toContain('private key material');
  });
});

describe('smart jwks serve', () => {
  it('serves the JWKS with JSON and Cache-Control, logs fetches, and stops on SIGTERM', async () => {
    const ws = makeWorkspace();
    const key = await keygen(ws);
    const child = execa(
      process.execPath,
      [BIN, 'jwks', 'serve', '--port', '0', '--max-age', '60', '-o', 'json'],
      {
        env: { PATH: process.env.PATH, NO_COLOR: '1', ...ws.env },
        extendEnv: false,
        reject: false,
        cwd: ws.home,
        stdin: 'ignore',
      },
    );
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const firstLine = await new Promise<string>((resolve, reject) => {
      const rl = createInterface({ input: child.stdout! });
      rl.once('line', resolve);
      child.once('exit', () => reject(new Error(`exited early: ${stderr}`)));
    });
    const { url } = JSON.parse(firstLine) as { url: string };
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\.well-known\/jwks\.json$/);
    expect(stderr).toContain(url);

    const res = await fetch(url, { headers: { 'user-agent': 'test-agent/1' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.get('cache-control')).toBe('public, max-age=60');
    expect(await res.json()).toEqual(JSON.parse(readFileSync(key.jwks, 'utf8')));
    const other = await fetch(new URL('/nothing', url));
    expect(other.status).toBe(404);
    await other.arrayBuffer();

    child.kill('SIGTERM');
    const done = await child;
    expect(done.exitCode).toBe(0);
    expect(stderr).toMatch(/127\.0\.0\.1 GET \/\.well-known\/jwks\.json 200 "test-agent\/1"/);
    expect(stderr).toMatch(/GET \/nothing 404/);
  });

  it('refuses a JWKS with private members, listing them (exit 2)', async () => {
    const ws = makeWorkspace();
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = { ...(privateKey.export({ format: 'jwk' }) as object), kid: 'oops' };
    writeFileSync(join(ws.home, 'jwks.json'), JSON.stringify({ keys: [jwk] }));
    const r = await runSmart(['jwks', 'serve', '--port', '0', 'jwks.json'], {
      ws,
      timeout: 10_000,
    });
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.split('\n')[0]).toBe(
      `error: ${join(ws.home, 'jwks.json')} holds private key material, refusing to publish it: keys[0] (kid oops): d, p, q, dp, dq, qi`,
    );
  });

  it('says when the port is in use (exit 1)', async () => {
    const ws = makeWorkspace();
    await keygen(ws);
    const { createServer } = await import('node:net');
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    try {
      const r = await runSmart(['jwks', 'serve', '--port', String(port)], { ws, timeout: 10_000 });
      expect(r.exitCode).toBe(1);
      expect(r.stderr.split('\n')[0]).toBe(
        `error: cannot listen on 127.0.0.1:${port}: the port is already in use`,
      );
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });
});
