import { describe, expect, it } from 'vitest';
import { client, reply, useServer } from './harness.js';

const srv = useServer();

describe('retries', () => {
  it('retries a 503 honouring Retry-After in seconds', async () => {
    srv.handler = (req, res, n) =>
      n === 1 ? reply(503, { 'retry-after': '2' })(req, res) : res.end('{"a":1}');
    const { http, delays, events } = await client();
    const res = await http.request(`${srv.base}/x`);
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({ a: 1 });
    expect(srv.hits).toHaveLength(2);
    expect(delays).toEqual([2000]);
    expect(events.map((e) => [e.status, e.attempt])).toEqual([
      [503, 1],
      [200, 2],
    ]);
  });

  it('retries a 429 honouring Retry-After as an HTTP date', async () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    const at = new Date(now + 5000).toUTCString();
    srv.handler = (req, res, n) =>
      n === 1 ? reply(429, { 'retry-after': at })(req, res) : res.end();
    const { http, delays } = await client({ now: () => now });
    expect((await http.request(`${srv.base}/x`)).status).toBe(200);
    expect(delays).toEqual([5000]);
  });

  it('backs off exponentially without Retry-After, and stops after the retry count', async () => {
    srv.handler = reply(503);
    const { http, delays } = await client({ retries: 2, backoffMs: 100 });
    const res = await http.request(`${srv.base}/x`);
    expect(res.status).toBe(503);
    expect(srv.hits).toHaveLength(3);
    // full jitter with random() = 0.5: 0.5 * 100 * 2^n
    expect(delays).toEqual([50, 100]);
  });

  it('clamps a long Retry-After and respects the total budget', async () => {
    srv.handler = reply(503, { 'retry-after': '3600' });
    const clamped = await client({ retries: 1, maxRetryAfterMs: 250 });
    await clamped.http.request(`${srv.base}/x`);
    expect(clamped.delays).toEqual([250]);
    srv.hits = [];
    const budget = await client({ retries: 5, retryBudgetMs: 1000 });
    const res = await budget.http.request(`${srv.base}/x`);
    expect(res.status).toBe(503);
    expect(srv.hits).toHaveLength(1);
    expect(budget.delays).toEqual([]);
  });

  it('does not retry a POST unless asked', async () => {
    srv.handler = reply(503, { 'retry-after': '1' });
    const { http } = await client();
    expect((await http.request(`${srv.base}/token`, { method: 'POST', body: 'a=b' })).status).toBe(
      503,
    );
    expect(srv.hits).toHaveLength(1);
    srv.hits = [];
    await http.request(`${srv.base}/token`, { method: 'POST', body: 'a=b', retry: true });
    expect(srv.hits).toHaveLength(4);
  });

  it('does not retry other errors', async () => {
    srv.handler = reply(500);
    const { http } = await client();
    expect((await http.request(`${srv.base}/x`)).status).toBe(500);
    expect(srv.hits).toHaveLength(1);
  });

  it('retries a connection reset on a GET', async () => {
    srv.handler = (req, res, n) => (n === 1 ? req.socket.destroy() : res.end('fine'));
    const { http, delays } = await client();
    const res = await http.request(`${srv.base}/x`);
    expect(res.text).toBe('fine');
    expect(delays).toHaveLength(1);
  });
});

describe('requests', () => {
  it('sends User-Agent and the caller headers', async () => {
    const { http } = await client();
    await http.request(`${srv.base}/x`, { headers: { Accept: 'application/fhir+json' } });
    expect(srv.hits[0]!.headers['user-agent']).toBe('smart/9.9.9');
    expect(srv.hits[0]!.headers.accept).toBe('application/fhir+json');
  });

  it('reports each request with a redacted URL', async () => {
    const assertion = 'eyJhbGciOiJSUzM4NCJ9.eyJpc3MiOiJjbGllbnQifQ.c2lnbmF0dXJl';
    const { http, events } = await client();
    await http.request(
      `${srv.base}/x?access_token=tok-secret-123&client_assertion=${assertion}&_count=5`,
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

  it('follows a 303 after a POST with a GET without the body, as fetch does', async () => {
    srv.handler = (req, res) => {
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
    const res = await http.request(`${srv.base}/kickoff`, {
      method: 'POST',
      body: new URLSearchParams({ a: '1' }),
    });
    expect(res.text).toBe('done');
    expect(res.headers.get('x-method')).toBe('GET');
    expect(res.headers.get('x-type')).toBe('-');
    expect(srv.hits[0]!.headers['content-type']).toBe(
      'application/x-www-form-urlencoded;charset=UTF-8',
    );
    expect(srv.hits[0]!.headers['content-length']).toBe('3');
  });
});
