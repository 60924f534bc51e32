import { createServer } from 'node:http';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  TEST_CA,
  TLS_DIR,
  startForwardProxy,
  startHttpsServer,
  type ForwardProxy,
} from '../../../helpers/servers.js';
import { client, reply, useServer } from './harness.js';
import { rejected } from '../../../helpers/rejected.js';

const srv = useServer();

describe('private CAs and proxies', () => {
  let https: Awaited<ReturnType<typeof startHttpsServer>>;
  let httpsBase: string;
  let proxy: ForwardProxy;
  let proxyUrl: string;
  /** What went through the proxy: absolute-form URLs for http, host:port for CONNECT tunnels. */
  let proxied: string[];

  beforeAll(async () => {
    https = await startHttpsServer((_req, res) => res.end('secure'));
    httpsBase = https.url;
    proxy = await startForwardProxy();
    proxyUrl = proxy.url;
    proxied = proxy.seen;
  });
  afterAll(async () => {
    await Promise.all([https.close(), proxy.close()]);
  });
  afterEach(() => {
    proxied.length = 0;
  });

  it('refuses a certificate from an unknown CA, and says how to trust it', async () => {
    const { http } = await client({ retries: 0 });
    const e = await rejected(http.request(`${httpsBase}/x`));
    expect(e.kind).toBe('network');
    expect(e.message).toMatch(/^TLS verification failed for 127\.0\.0\.1:\d+ \(/);
    expect(e.hint).toMatch(/--ca-file/);
  });

  it('trusts a private CA given with --ca-file (caFile)', async () => {
    const { http } = await client({ caFile: TEST_CA });
    const res = await http.request(`${httpsBase}/x`);
    expect(res.status).toBe(200);
    expect(res.text).toBe('secure');
  });

  it('names an unreadable CA file as a usage error', async () => {
    const e = await rejected(client({ caFile: join(TLS_DIR, 'missing.pem') }));
    expect(e.kind).toBe('usage');
    expect(e.message).toMatch(/cannot read CA file .*missing\.pem/);
  });

  it('sends plain http through HTTP_PROXY', async () => {
    const { http } = await client({ env: { HTTP_PROXY: proxyUrl } });
    const res = await http.request(`${srv.base}/via-proxy`);
    expect(res.text).toBe('ok');
    expect(proxied).toEqual([`${srv.base}/via-proxy`]);
    expect(srv.hits).toHaveLength(1);
  });

  it('tunnels https through HTTPS_PROXY, still verifying the server with the private CA', async () => {
    const { http } = await client({
      env: { HTTPS_PROXY: proxyUrl },
      caFile: TEST_CA,
    });
    const res = await http.request(`${httpsBase}/tunnel`);
    expect(res.text).toBe('secure');
    expect(proxied).toEqual([`CONNECT ${new URL(httpsBase).host}`]);

    const { http: untrusting } = await client({ env: { HTTPS_PROXY: proxyUrl }, retries: 0 });
    const e = await rejected(untrusting.request(`${httpsBase}/tunnel`));
    expect(e.message).toMatch(/^TLS verification failed/);
  });

  it("stream: 'node' verifies with the private CA, and goes through a proxy when one is set", async () => {
    const read = async (body: NodeJS.ReadableStream | undefined) => {
      const chunks: Buffer[] = [];
      for await (const c of body ?? []) chunks.push(Buffer.from(c as Uint8Array));
      return Buffer.concat(chunks).toString('utf8');
    };
    const { http: untrusting } = await client({ retries: 0 });
    const e = await rejected(untrusting.request(`${httpsBase}/f`, { stream: 'node' }));
    expect(e.message).toMatch(/^TLS verification failed for 127\.0\.0\.1:\d+ \(/);

    const { http } = await client({ caFile: TEST_CA });
    expect(await read((await http.request(`${httpsBase}/f`, { stream: 'node' })).nodeBody)).toBe(
      'secure',
    );

    const { http: viaProxy } = await client({
      env: { HTTPS_PROXY: proxyUrl },
      caFile: TEST_CA,
    });
    const res = await viaProxy.request(`${httpsBase}/f`, { stream: 'node' });
    expect(await read(res.nodeBody)).toBe('secure');
    expect(proxied).toEqual([`CONNECT ${new URL(httpsBase).host}`]);
  });

  it('goes direct for hosts in NO_PROXY', async () => {
    const { http } = await client({ env: { HTTP_PROXY: proxyUrl, NO_PROXY: '127.0.0.1' } });
    const res = await http.request(`${srv.base}/direct`);
    expect(res.text).toBe('ok');
    expect(proxied).toEqual([]);
    expect(srv.hits).toHaveLength(1);
  });
});

describe("stream: 'node' (export downloads over node:http)", () => {
  const read = async (body: NodeJS.ReadableStream | undefined) => {
    const chunks: Buffer[] = [];
    for await (const c of body ?? []) chunks.push(Buffer.from(c as Uint8Array));
    return Buffer.concat(chunks).toString('utf8');
  };

  it('streams the body, with status, headers and the request log', async () => {
    srv.handler = reply(200, { 'content-type': 'application/fhir+ndjson', 'x-n': '1' }, 'a\nb\n');
    const { http, events } = await client();
    const res = await http.request(`${srv.base}/file.ndjson`, { stream: 'node', retry: false });
    expect(res.status).toBe(200);
    expect(res.contentType).toBe('application/fhir+ndjson');
    expect(res.headers.get('x-n')).toBe('1');
    expect(await read(res.nodeBody)).toBe('a\nb\n');
    expect(events).toMatchObject([{ method: 'GET', status: 200, attempt: 1 }]);
    expect(srv.hits[0]?.headers['user-agent']).toBe('smart/9.9.9');
  });

  it('follows redirects, and drops Authorization when they leave the origin', async () => {
    const other = createServer((req, res) => {
      res.writeHead(200, { 'x-auth': req.headers.authorization ?? 'none' });
      res.end('from storage');
    });
    await new Promise<void>((r) => other.listen(0, 'localhost', r));
    const storage = `http://localhost:${(other.address() as AddressInfo).port}/bucket/f?sig=1`;
    srv.handler = (req, res) => {
      if (req.url === '/same') {
        res.writeHead(302, { location: '/there' });
        res.end();
      } else if (req.url === '/there') {
        res.writeHead(200, { 'x-auth': req.headers.authorization ?? 'none' });
        res.end('same origin');
      } else {
        res.writeHead(307, { location: storage });
        res.end();
      }
    };
    try {
      const { http } = await client();
      const headers = { authorization: 'Bearer secret-token' };
      const same = await http.request(`${srv.base}/same`, { stream: 'node', headers });
      expect(await read(same.nodeBody)).toBe('same origin');
      expect(same.headers.get('x-auth')).toBe('Bearer secret-token');
      expect(same.url).toBe(`${srv.base}/there`);
      const away = await http.request(`${srv.base}/away`, { stream: 'node', headers });
      expect(await read(away.nodeBody)).toBe('from storage');
      expect(away.headers.get('x-auth')).toBe('none');
    } finally {
      other.closeAllConnections();
      await new Promise((r) => other.close(r));
    }
  });

  it('times out when no headers come, and names the host', async () => {
    srv.handler = () => undefined; // never answers
    const { http } = await client({ timeoutMs: 100, retries: 0 });
    const e = await rejected(http.request(`${srv.base}/slow`, { stream: 'node' }));
    expect(e.kind).toBe('network');
    expect(e.message).toMatch(/^no response from 127\.0\.0\.1:\d+ within 100ms/);
  });

  it('a timeout after retries says how many attempts there were', async () => {
    srv.handler = () => undefined; // never answers
    const { http } = await client({ timeoutMs: 100, retries: 1, backoffMs: 1 });
    const e = await rejected(http.request(`${srv.base}/slow`));
    expect(e.message).toMatch(/^no response from 127\.0\.0\.1:\d+ within 100ms \(2 attempts\)$/);
  });

  it('names a refused connection', async () => {
    const tmp = createServer();
    await new Promise<void>((r) => tmp.listen(0, '127.0.0.1', r));
    const port = (tmp.address() as AddressInfo).port;
    await new Promise((r) => tmp.close(r));
    const { http } = await client({ retries: 0 });
    const e = await rejected(http.request(`http://127.0.0.1:${port}/f`, { stream: 'node' }));
    expect(e.message).toBe(`cannot connect to 127.0.0.1:${port}: connection refused`);
  });
});
