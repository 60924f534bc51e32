import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SmartError } from '../../../src/core/errors.js';
import {
  createHttpClient,
  describeErrorBody,
  isLoopbackHost,
  type HttpClientOptions,
  type HttpRequest,
  type RequestEvent,
} from '../../../src/core/http/index.js';
import {
  TEST_CA,
  TLS_DIR,
  startForwardProxy,
  startHttpsServer,
  type ForwardProxy,
} from '../../helpers/servers.js';

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;

let server: Server;
let base: string;
let handler: Handler = (_req, res) => res.end('ok');
let hits: IncomingMessage[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    hits.push(req);
    handler(req, res, hits.length);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});
afterEach(() => {
  hits = [];
  handler = (_req, res) => res.end('ok');
});

/** A client whose sleeps are recorded, not waited for. */
async function client(extra: HttpClientOptions = {}) {
  const delays: number[] = [];
  const events: RequestEvent[] = [];
  const http = await createHttpClient({
    userAgent: 'smart/9.9.9',
    sleep: async (ms) => void delays.push(ms),
    random: () => 0.5,
    onRequest: (e) => events.push(e),
    ...extra,
  });
  return { http, delays, events };
}

const reply =
  (status: number, headers: Record<string, string> = {}, body = '') =>
  (_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(status, headers);
    res.end(body);
  };

async function failure(p: Promise<unknown>): Promise<SmartError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(SmartError);
    return e as SmartError;
  }
  throw new Error('expected a failure');
}

describe('retries', () => {
  it('retries a 503 honouring Retry-After in seconds', async () => {
    handler = (req, res, n) =>
      n === 1 ? reply(503, { 'retry-after': '2' })(req, res) : res.end('{"a":1}');
    const { http, delays, events } = await client();
    const res = await http.request(`${base}/x`);
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({ a: 1 });
    expect(hits).toHaveLength(2);
    expect(delays).toEqual([2000]);
    expect(events.map((e) => [e.status, e.attempt])).toEqual([
      [503, 1],
      [200, 2],
    ]);
  });

  it('retries a 429 honouring Retry-After as an HTTP date', async () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    const at = new Date(now + 5000).toUTCString();
    handler = (req, res, n) => (n === 1 ? reply(429, { 'retry-after': at })(req, res) : res.end());
    const { http, delays } = await client({ now: () => now });
    expect((await http.request(`${base}/x`)).status).toBe(200);
    expect(delays).toEqual([5000]);
  });

  it('backs off exponentially without Retry-After, and stops after the retry count', async () => {
    handler = reply(503);
    const { http, delays } = await client({ retries: 2, backoffMs: 100 });
    const res = await http.request(`${base}/x`);
    expect(res.status).toBe(503);
    expect(hits).toHaveLength(3);
    // full jitter with random() = 0.5: 0.5 * 100 * 2^n
    expect(delays).toEqual([50, 100]);
  });

  it('clamps a long Retry-After and respects the total budget', async () => {
    handler = reply(503, { 'retry-after': '3600' });
    const clamped = await client({ retries: 1, maxRetryAfterMs: 250 });
    await clamped.http.request(`${base}/x`);
    expect(clamped.delays).toEqual([250]);
    hits = [];
    const budget = await client({ retries: 5, retryBudgetMs: 1000 });
    const res = await budget.http.request(`${base}/x`);
    expect(res.status).toBe(503);
    expect(hits).toHaveLength(1);
    expect(budget.delays).toEqual([]);
  });

  it('does not retry a POST unless asked', async () => {
    handler = reply(503, { 'retry-after': '1' });
    const { http } = await client();
    expect((await http.request(`${base}/token`, { method: 'POST', body: 'a=b' })).status).toBe(503);
    expect(hits).toHaveLength(1);
    hits = [];
    await http.request(`${base}/token`, { method: 'POST', body: 'a=b', retry: true });
    expect(hits).toHaveLength(4);
  });

  it('does not retry other errors', async () => {
    handler = reply(500);
    const { http } = await client();
    expect((await http.request(`${base}/x`)).status).toBe(500);
    expect(hits).toHaveLength(1);
  });

  it('retries a connection reset on a GET', async () => {
    handler = (req, res, n) => (n === 1 ? req.socket.destroy() : res.end('fine'));
    const { http, delays } = await client();
    const res = await http.request(`${base}/x`);
    expect(res.text).toBe('fine');
    expect(delays).toHaveLength(1);
  });
});

describe('network errors', () => {
  it('names host:port when the connection is refused, as a network error (exit 4)', async () => {
    const tmp = createServer();
    await new Promise<void>((r) => tmp.listen(0, '127.0.0.1', r));
    const port = (tmp.address() as AddressInfo).port;
    await new Promise((r) => tmp.close(r));
    const { http, events } = await client();
    const e = await failure(http.request(`http://127.0.0.1:${port}/fhir/metadata`));
    expect(e.kind).toBe('network');
    expect(e.exitCode).toBe(4);
    expect(e.message).toBe(`cannot connect to 127.0.0.1:${port}: connection refused`);
    expect(e.hint).toBeTruthy();
    expect(events[0]?.error).toBe('ECONNREFUSED');
  });

  it('connects to a port that fetch would refuse (the "bad ports" list): node:http has no such list', async () => {
    const { http, events } = await client({ retries: 0 });
    const e = await failure(http.request('http://127.0.0.1:6000/fhir/metadata'));
    expect(e.kind).toBe('network');
    expect(e.message).toBe('cannot connect to 127.0.0.1:6000: connection refused');
    expect(events[0]?.error).toBe('ECONNREFUSED');
  });

  it('times out a request that gets no answer', async () => {
    handler = () => undefined; // never answers
    const { http } = await client({ timeoutMs: 150, retries: 0 });
    const e = await failure(http.request(`${base}/slow`));
    expect(e.kind).toBe('network');
    expect(e.code).toBe('ETIMEDOUT');
    expect(e.message).toContain(`127.0.0.1:${new URL(base).port}`);
    expect(e.message).toContain('150ms');
  });

  it('stops when the run is aborted', async () => {
    handler = () => undefined;
    const controller = new AbortController();
    const { http } = await client({ signal: controller.signal });
    const p = http.request(`${base}/slow`);
    setTimeout(() => controller.abort(new Error('interrupted')), 50);
    await expect(p).rejects.toThrow('interrupted');
  });
});

describe('requests', () => {
  it('sends User-Agent and the caller headers', async () => {
    const { http } = await client();
    await http.request(`${base}/x`, { headers: { Accept: 'application/fhir+json' } });
    expect(hits[0]!.headers['user-agent']).toBe('smart/9.9.9');
    expect(hits[0]!.headers.accept).toBe('application/fhir+json');
  });

  it('reports each request with a redacted URL', async () => {
    const assertion = 'eyJhbGciOiJSUzM4NCJ9.eyJpc3MiOiJjbGllbnQifQ.c2lnbmF0dXJl';
    const { http, events } = await client();
    await http.request(
      `${base}/x?access_token=tok-secret-123&client_assertion=${assertion}&_count=5`,
    );
    expect(events).toHaveLength(1);
    const e = events[0]!;
    expect(e.method).toBe('GET');
    expect(e.status).toBe(200);
    expect(e.ms).toBeGreaterThanOrEqual(0);
    expect(e.url).not.toContain('tok-secret-123');
    expect(e.url).not.toContain(assertion);
    expect(e.url).toContain('_count=5');
  });

  it('offers gzip and decodes a compressed answer (gzip, deflate, br), dropping a UTF-8 BOM', async () => {
    const { gzipSync, deflateSync, brotliCompressSync } = await import('node:zlib');
    const text = '\ufeff{"resourceType":"Patient","name":"Zoë"}';
    const codings: Record<string, (b: Buffer) => Buffer> = {
      gzip: gzipSync,
      deflate: deflateSync,
      br: brotliCompressSync,
    };
    handler = (req, res) => {
      const coding = req.url!.slice(1);
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': coding });
      res.end(codings[coding]!(Buffer.from(text)));
    };
    const { http } = await client();
    for (const coding of Object.keys(codings)) {
      const res = await http.request(`${base}/${coding}`);
      expect(res.json()).toEqual({ resourceType: 'Patient', name: 'Zoë' });
    }
    expect(hits[0]!.headers['accept-encoding']).toBe('gzip, deflate');
    // Export files come as they are, as curl fetches them.
    await http.request(`${base}/gzip`, { stream: 'node' }).then((r) => r.nodeBody?.resume());
    expect(hits[3]!.headers['accept-encoding']).toBeUndefined();
  });

  it('follows a 303 after a POST with a GET without the body, as fetch does', async () => {
    handler = (req, res) => {
      if (req.url === '/kickoff') {
        res.writeHead(303, { location: '/status' });
        res.end();
      } else {
        res.writeHead(200, {
          'x-method': req.method!,
          'x-type': req.headers['content-type'] ?? '-',
        });
        res.end('done');
      }
    };
    const { http } = await client();
    const res = await http.request(`${base}/kickoff`, {
      method: 'POST',
      body: new URLSearchParams({ a: '1' }),
    });
    expect(res.text).toBe('done');
    expect(res.headers.get('x-method')).toBe('GET');
    expect(res.headers.get('x-type')).toBe('-');
    expect(hits[0]!.headers['content-type']).toBe(
      'application/x-www-form-urlencoded;charset=UTF-8',
    );
    expect(hits[0]!.headers['content-length']).toBe('3');
  });

  it('explains a non-JSON body with its content type', async () => {
    handler = reply(200, { 'content-type': 'text/html' }, '<html>login</html>');
    const { http } = await client();
    const res = await http.request(`${base}/fhir/Patient`);
    let err: SmartError | undefined;
    try {
      res.json();
    } catch (e) {
      err = e as SmartError;
    }
    expect(err?.code).toBe('not_json');
    expect(err?.message).toContain('text/html');
    expect(err?.exitCode).toBe(1);
  });

  it('summarizes OAuth and OperationOutcome error bodies', async () => {
    handler = reply(
      400,
      { 'content-type': 'application/json' },
      '{"error":"invalid_client","error_description":"bad kid"}',
    );
    const { http } = await client();
    expect(describeErrorBody(await http.request(`${base}/token`))).toBe('invalid_client: bad kid');
    handler = reply(
      404,
      { 'content-type': 'application/fhir+json' },
      JSON.stringify({
        resourceType: 'OperationOutcome',
        issue: [{ severity: 'error', code: 'not-found', diagnostics: 'no Foo' }],
      }),
    );
    expect(describeErrorBody(await http.request(`${base}/Foo/1`))).toBe('error not-found: no Foo');
  });

  it('never repeats a token or assertion a server echoes in its error, and keeps it on one line', async () => {
    const jwt = 'eyJhbGciOiJSUzM4NCJ9.eyJpc3MiOiJjIn0.c2lnbmF0dXJlc2lnbmF0dXJl';
    handler = reply(
      400,
      { 'content-type': 'application/json' },
      JSON.stringify({
        error: 'invalid_request',
        error_description: `bad assertion\n${jwt}\nclient_secret=hunter2`,
      }),
    );
    const { http } = await client();
    const oauth = describeErrorBody(await http.request(`${base}/token`));
    expect(oauth).toBe('invalid_request: bad assertion [redacted JWT] client_secret=[redacted]');
    handler = reply(
      401,
      { 'content-type': 'application/fhir+json' },
      JSON.stringify({
        resourceType: 'OperationOutcome',
        issue: [{ severity: 'error', code: 'login', diagnostics: `Authorization: Bearer ${jwt}` }],
      }),
    );
    const oo = describeErrorBody(await http.request(`${base}/Patient`));
    expect(oo).not.toContain(jwt);
    expect(oo).toMatch(/^error login: Authorization: Bearer \[redacted/);
  });
});

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
    const e = await failure(http.request(`${httpsBase}/x`));
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
    const e = await failure(client({ caFile: join(TLS_DIR, 'missing.pem') }));
    expect(e.kind).toBe('usage');
    expect(e.message).toMatch(/cannot read CA file .*missing\.pem/);
  });

  it('sends plain http through HTTP_PROXY', async () => {
    const { http } = await client({ env: { HTTP_PROXY: proxyUrl } });
    const res = await http.request(`${base}/via-proxy`);
    expect(res.text).toBe('ok');
    expect(proxied).toEqual([`${base}/via-proxy`]);
    expect(hits).toHaveLength(1);
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
    const e = await failure(untrusting.request(`${httpsBase}/tunnel`));
    expect(e.message).toMatch(/^TLS verification failed/);
  });

  it("stream: 'node' verifies with the private CA, and goes through a proxy when one is set", async () => {
    const read = async (body: NodeJS.ReadableStream | undefined) => {
      const chunks: Buffer[] = [];
      for await (const c of body ?? []) chunks.push(Buffer.from(c as Uint8Array));
      return Buffer.concat(chunks).toString('utf8');
    };
    const { http: untrusting } = await client({ retries: 0 });
    const e = await failure(untrusting.request(`${httpsBase}/f`, { stream: 'node' }));
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
    const res = await http.request(`${base}/direct`);
    expect(res.text).toBe('ok');
    expect(proxied).toEqual([]);
    expect(hits).toHaveLength(1);
  });
});

describe("stream: 'node' (export downloads over node:http)", () => {
  const read = async (body: NodeJS.ReadableStream | undefined) => {
    const chunks: Buffer[] = [];
    for await (const c of body ?? []) chunks.push(Buffer.from(c as Uint8Array));
    return Buffer.concat(chunks).toString('utf8');
  };

  it('streams the body, with status, headers and the request log', async () => {
    handler = reply(200, { 'content-type': 'application/fhir+ndjson', 'x-n': '1' }, 'a\nb\n');
    const { http, events } = await client();
    const res = await http.request(`${base}/file.ndjson`, { stream: 'node', retry: false });
    expect(res.status).toBe(200);
    expect(res.contentType).toBe('application/fhir+ndjson');
    expect(res.headers.get('x-n')).toBe('1');
    expect(await read(res.nodeBody)).toBe('a\nb\n');
    expect(events).toMatchObject([{ method: 'GET', status: 200, attempt: 1 }]);
    expect(hits[0]?.headers['user-agent']).toBe('smart/9.9.9');
  });

  it('follows redirects, and drops Authorization when they leave the origin', async () => {
    const other = createServer((req, res) => {
      res.writeHead(200, { 'x-auth': req.headers.authorization ?? 'none' });
      res.end('from storage');
    });
    await new Promise<void>((r) => other.listen(0, 'localhost', r));
    const storage = `http://localhost:${(other.address() as AddressInfo).port}/bucket/f?sig=1`;
    handler = (req, res) => {
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
      const same = await http.request(`${base}/same`, { stream: 'node', headers });
      expect(await read(same.nodeBody)).toBe('same origin');
      expect(same.headers.get('x-auth')).toBe('Bearer secret-token');
      expect(same.url).toBe(`${base}/there`);
      const away = await http.request(`${base}/away`, { stream: 'node', headers });
      expect(await read(away.nodeBody)).toBe('from storage');
      expect(away.headers.get('x-auth')).toBe('none');
    } finally {
      other.closeAllConnections();
      await new Promise((r) => other.close(r));
    }
  });

  it('times out when no headers come, and names the host', async () => {
    handler = () => undefined; // never answers
    const { http } = await client({ timeoutMs: 100, retries: 0 });
    const e = await failure(http.request(`${base}/slow`, { stream: 'node' }));
    expect(e.kind).toBe('network');
    expect(e.message).toMatch(/^no response from 127\.0\.0\.1:\d+ within 100ms/);
  });

  it('a timeout after retries says how many attempts there were', async () => {
    handler = () => undefined; // never answers
    const { http } = await client({ timeoutMs: 100, retries: 1, backoffMs: 1 });
    const e = await failure(http.request(`${base}/slow`));
    expect(e.message).toMatch(/^no response from 127\.0\.0\.1:\d+ within 100ms \(2 attempts\)$/);
  });

  it('names a refused connection', async () => {
    const tmp = createServer();
    await new Promise<void>((r) => tmp.listen(0, '127.0.0.1', r));
    const port = (tmp.address() as AddressInfo).port;
    await new Promise((r) => tmp.close(r));
    const { http } = await client({ retries: 0 });
    const e = await failure(http.request(`http://127.0.0.1:${port}/f`, { stream: 'node' }));
    expect(e.message).toBe(`cannot connect to 127.0.0.1:${port}: connection refused`);
  });
});

describe('credentials over plain http', () => {
  const remote = 'http://fhir.invalid'; // .invalid never resolves: no packet leaves the machine

  it('refuses a token, an assertion or admin credentials to a non-loopback http host', async () => {
    const { http } = await client({ retries: 0 });
    const cases: Array<[HttpRequest, string]> = [
      [{ headers: { Authorization: 'Bearer abc' } }, 'an access token'],
      [{ headers: { authorization: 'Basic cm9vdDpz' }, method: 'PUT' }, 'admin credentials'],
      [
        {
          method: 'POST',
          body: new URLSearchParams({
            grant_type: 'client_credentials',
            client_assertion: 'x.y.z',
          }),
        },
        'a client assertion',
      ],
    ];
    for (const [init, what] of cases) {
      const e = await failure(http.request(`${remote}/x`, init));
      expect(e.kind).toBe('usage');
      expect(e.code).toBe('insecure_http');
      expect(e.message).toBe(`refusing to send ${what} over plain http to fhir.invalid`);
      expect(e.hint).toMatch(/https:\/\/.*--insecure.*SMART_INSECURE=1/);
    }
  });

  it('lets through requests without credentials, loopback hosts, https, and --insecure', async () => {
    const { http } = await client({ retries: 0 });
    // No credentials: the request is made (and fails on DNS, a network error).
    expect((await failure(http.request(`${remote}/metadata`))).kind).toBe('network');
    // Loopback: fine.
    handler = reply(200, {}, 'ok');
    const local = await http.request(`${base}/x`, { headers: { authorization: 'Bearer abc' } });
    expect(local.status).toBe(200);
    // https: no objection (DNS fails instead).
    const tls = await failure(
      http.request('https://fhir.invalid/x', { headers: { authorization: 'Bearer abc' } }),
    );
    expect(tls.kind).toBe('network');
    const { http: insecure } = await client({ retries: 0, allowInsecureHttp: true });
    const e = await failure(
      insecure.request(`${remote}/x`, { headers: { authorization: 'Bearer abc' } }),
    );
    expect(e.kind).toBe('network');
  });

  it('knows loopback hosts', () => {
    for (const h of [
      'localhost',
      'api.localhost',
      '127.0.0.1',
      '127.1.2.3',
      '[::1]',
      '::1',
      '0.0.0.0',
    ])
      expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['aidbox', '10.0.0.1', '128.0.0.1', 'localhost.example.com', '::2'])
      expect(isLoopbackHost(h), h).toBe(false);
  });
});
