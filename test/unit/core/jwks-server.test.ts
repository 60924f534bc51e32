import { rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { generateSigningKey } from '../../../src/core/auth/keys.js';
import { SmartError } from '../../../src/core/errors.js';
import {
  JWKS_PATHS,
  checkPublishable,
  startJwksServer,
  type JwksFetchEvent,
  type JwksServer,
} from '../../../src/core/jwks-server.js';
import { rejected } from '../../helpers/rejected.js';
import { tempDir } from '../../helpers/tmp.js';

const tmp = () => tempDir('smart-jwks-');

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
    const k2 = await generateSigningKey('ES384', { kid: 'k2' });
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
  it('answers GET and HEAD only: 405 with Allow for anything else, even with a large body', async () => {
    const { server, events } = await setup();
    const head = await fetch(server.url, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-type')).toBe('application/json');
    expect(Number(head.headers.get('content-length'))).toBeGreaterThan(10);
    expect(await head.text()).toBe('');
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const res = await fetch(server.url, { method, body: 'x'.repeat(256 * 1024) });
      expect(res.status, method).toBe(405);
      expect(res.headers.get('allow')).toBe('GET, HEAD');
      expect(await res.json()).toEqual({ error: 'method_not_allowed' });
    }
    expect(events.map((e) => `${e.method} ${e.status}`)).toEqual([
      'HEAD 200',
      'POST 405',
      'PUT 405',
      'DELETE 405',
    ]);
  });

  it('bounds what a client sends: an oversized request head is refused, the server goes on', async () => {
    const { server } = await setup();
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(server.url, { headers: { 'x-big': 'x'.repeat(64 * 1024) } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(431);
    expect((await fetch(server.url)).status).toBe(200);
  });

  it('says when the file changed: reloaded, or kept the previous keys because the new file is unusable', async () => {
    const dir = tmp();
    const file = join(dir, 'jwks.json');
    const k1 = await generateSigningKey('ES384', { kid: 'k1' });
    const k2 = await generateSigningKey('ES384', { kid: 'k2' });
    writeFileSync(file, JSON.stringify({ keys: [k1.publicJwk] }));
    const reloads: Array<{ file: string; keys: number; error?: SmartError }> = [];
    server = await startJwksServer({ file, port: 0, onReload: (r) => reloads.push(r) });
    await (await fetch(server.url)).arrayBuffer();
    expect(reloads).toEqual([]);
    writeFileSync(file, JSON.stringify({ keys: [k1.publicJwk, k2.publicJwk] }));
    await (await fetch(server.url)).arrayBuffer();
    expect(reloads).toEqual([{ file, keys: 2 }]);
    writeFileSync(file, '{"keys": [');
    const kept = (await (await fetch(server.url)).json()) as { keys: unknown[] };
    expect(kept.keys).toHaveLength(2);
    expect(reloads[1]).toMatchObject({ file, keys: 2 });
    expect(reloads[1]!.error?.message).toMatch(/is not valid JSON/);
    // The file removed: the previous keys are still served, and the error names the file.
    rmSync(file);
    expect((await fetch(server.url)).status).toBe(200);
    expect(reloads[2]).toMatchObject({ file, keys: 2 });
    expect(reloads[2]!.error?.message).toMatch(new RegExp(`^cannot read ${file}: .*ENOENT`));
  });

  it('serves a JWKS held in memory, on the host it was given', async () => {
    const key = await generateSigningKey('ES384', { kid: 'mem' });
    server = await startJwksServer({ jwks: { keys: [key.publicJwk] }, port: 0, host: '::1' });
    expect(server.url).toBe(`http://[::1]:${server.port}${JWKS_PATHS[0]}`);
    expect(server.host).toBe('::1');
    const res = await fetch(server.url);
    expect(res.headers.get('cache-control')).toBe('public, max-age=300');
    expect(await res.json()).toEqual({ keys: [key.publicJwk] });
  });

  it('needs a file or a JWKS; a missing file is a usage error naming it', async () => {
    expect((await rejected(startJwksServer({ port: 0 }))).exitCode).toBe(2);
    const file = join(tmp(), 'none.json');
    const e = await rejected(startJwksServer({ file, port: 0 }));
    expect(e.message).toBe(`JWKS file not found: ${file}`);
    expect(e.exitCode).toBe(2);
  });

  it('an address that is not local is a usage error with a hint', async () => {
    // 192.0.2.1 is TEST-NET-1: never an address of this machine.
    const e = await rejected(startJwksServer({ jwks: { keys: [] }, port: 0, host: '192.0.2.1' }));
    expect(e.message).toBe('cannot listen on 192.0.2.1:0: no such local address');
    expect([e.exitCode, e.code]).toEqual([2, 'EADDRNOTAVAIL']);
    expect(e.hint).toContain('--host 127.0.0.1');
  });

  it('close() ends idle connections at once, and can be called twice', async () => {
    const { server: s } = await setup();
    // A keep-alive connection stays open after its answer.
    await (await fetch(s.url, { headers: { connection: 'keep-alive' } })).arrayBuffer();
    const closing = s.close(5_000);
    expect(s.close()).toBe(closing);
    await closing;
    server = undefined;
    await expect(fetch(s.url)).rejects.toThrow();
  });
});

describe('checkPublishable', () => {
  it('passes a public JWKS through and refuses private members, listing them', async () => {
    const key = await generateSigningKey('ES384', { kid: 'k' });
    const jwks = { keys: [key.publicJwk] };
    expect(checkPublishable(jwks, 'x')).toBe(jwks);
    const e = (() => {
      try {
        checkPublishable({ keys: [{ ...key.publicJwk, d: 'secret' }] }, 'my.json');
      } catch (err) {
        return err as SmartError;
      }
      throw new Error('no error');
    })();
    expect(e.message).toBe(
      'my.json holds private key material, refusing to publish it: keys[0] (kid k): d',
    );
    expect([e.exitCode, e.code, e.details]).toEqual([
      2,
      'private_members',
      { keys: ['keys[0] (kid k): d'] },
    ]);
  });
});
