import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  MAX_REDIRECTS,
  NETWORK_RETRYABLE,
  networkError,
  redirectLoop,
} from '../../../../src/core/http/network-errors.js';
import { client, useServer } from './harness.js';
import { rejected } from '../../../helpers/rejected.js';

const srv = useServer();

describe('network errors', () => {
  it('names host:port when the connection is refused, as a network error (exit 4)', async () => {
    const tmp = createServer();
    await new Promise<void>((r) => tmp.listen(0, '127.0.0.1', r));
    const port = (tmp.address() as AddressInfo).port;
    await new Promise((r) => tmp.close(r));
    const { http, events } = await client();
    const e = await rejected(http.request(`http://127.0.0.1:${port}/fhir/metadata`));
    expect(e.kind).toBe('network');
    expect(e.exitCode).toBe(4);
    expect(e.message).toBe(`cannot connect to 127.0.0.1:${port}: connection refused`);
    expect(e.hint).toBeTruthy();
    expect(events[0]?.error).toBe('ECONNREFUSED');
  });

  it('connects to a port that fetch would refuse (the "bad ports" list): node:http has no such list', async () => {
    const { http, events } = await client({ retries: 0 });
    const e = await rejected(http.request('http://127.0.0.1:6000/fhir/metadata'));
    expect(e.kind).toBe('network');
    expect(e.message).toBe('cannot connect to 127.0.0.1:6000: connection refused');
    expect(events[0]?.error).toBe('ECONNREFUSED');
  });

  it('times out a request that gets no answer', async () => {
    srv.handler = () => undefined; // never answers
    const { http } = await client({ timeoutMs: 150, retries: 0 });
    const e = await rejected(http.request(`${srv.base}/slow`));
    expect(e.kind).toBe('network');
    expect(e.code).toBe('ETIMEDOUT');
    expect(e.message).toContain(`127.0.0.1:${new URL(srv.base).port}`);
    expect(e.message).toContain('150ms');
  });

  it('stops when the run is aborted', async () => {
    const controller = new AbortController();
    // Aborted while the request is at the server, which never answers.
    srv.handler = () => controller.abort(new Error('interrupted'));
    const { http } = await client({ signal: controller.signal });
    await expect(http.request(`${srv.base}/slow`)).rejects.toThrow('interrupted');
    expect(srv.hits).toHaveLength(1);
  });
});

describe('classification', () => {
  const url = 'https://fhir.example.com:8443/fhir/Patient?access_token=secret';
  const classify = (e: unknown, timedOut = false, ms = 0) => networkError(e, url, timedOut, ms);
  const sysErr = (code: string, message = code) => Object.assign(new Error(message), { code });

  it('names DNS failures, resets, timeouts and unreachable hosts, as network errors (exit 4)', () => {
    const cases: Array<[unknown, string]> = [
      [sysErr('ENOTFOUND'), 'cannot resolve host fhir.example.com (DNS lookup failed)'],
      [sysErr('EAI_AGAIN'), 'cannot resolve host fhir.example.com (DNS lookup failed)'],
      [sysErr('ECONNRESET'), 'connection to fhir.example.com:8443 was closed unexpectedly'],
      [sysErr('ETIMEDOUT'), 'connection to fhir.example.com:8443 timed out'],
      [sysErr('EHOSTUNREACH'), 'cannot reach fhir.example.com:8443: no route to host'],
      // The code deep in a cause chain (fetch failed <- socket error) counts.
      [
        new TypeError('fetch failed', { cause: sysErr('ECONNREFUSED') }),
        'cannot connect to fhir.example.com:8443: connection refused',
      ],
    ];
    for (const [e, message] of cases) {
      const got = classify(e);
      expect(got.message, message).toBe(message);
      expect(got.kind).toBe('network');
      expect(got.exitCode).toBe(4);
      expect(got.cause).toBe(e);
    }
  });

  it('says the whole timeout in ms or s', () => {
    expect(classify(new Error('aborted'), true, 150).message).toBe(
      'no response from fhir.example.com:8443 within 150ms',
    );
    const e = classify(new Error('aborted'), true, 30_000);
    expect(e.message).toBe('no response from fhir.example.com:8443 within 30s');
    expect(e.code).toBe('ETIMEDOUT');
  });

  it('tells a certificate problem from a plain-http port', () => {
    const cert = classify(sysErr('DEPTH_ZERO_SELF_SIGNED_CERT'));
    expect(cert.message).toBe(
      'TLS verification failed for fhir.example.com:8443 (DEPTH_ZERO_SELF_SIGNED_CERT)',
    );
    expect(cert.hint).toContain('--ca-file');
    const plain = classify(sysErr('EPROTO', 'SSL routines:ssl3_get_record:wrong version number'));
    expect(plain.message).toBe(
      'the server at fhir.example.com:8443 does not speak TLS on this port (try http://)',
    );
    expect(plain.hint).toContain('http://fhir.example.com:8443/fhir/Patient');
    expect(plain.hint).not.toContain('secret');
  });

  it('makes an invalid URL a usage error (exit 2), and a redirect loop an HTTP error (exit 1)', () => {
    const bad = classify(sysErr('ERR_INVALID_URL'));
    expect(bad.kind).toBe('usage');
    expect(bad.exitCode).toBe(2);
    expect(bad.message).not.toContain('secret');
    const loop = redirectLoop('http://h/a', 'http://h/b');
    expect(loop.message).toBe(`http://h/a redirected more than ${MAX_REDIRECTS} times`);
    expect(loop.exitCode).toBe(1);
    expect(loop.hint).toContain('http://h/b');
    expect(
      classify(new TypeError('fetch failed', { cause: new Error('redirect count exceeded') })).code,
    ).toBe('redirect_loop');
  });

  it('quotes an unknown failure redacted, and retries only transient ones', () => {
    const e = classify(new Error('weird failure with Bearer eyJhbGciOiJSUzM4NCJ9.eyJhIjoxfQ.c2ln'));
    expect(e.message).toMatch(/^request to fhir\.example\.com:8443 failed: weird failure/);
    expect(e.message).not.toContain('eyJhbGciOiJSUzM4NCJ9.eyJhIjoxfQ.c2ln');
    expect(NETWORK_RETRYABLE.has('ECONNRESET')).toBe(true);
    expect(NETWORK_RETRYABLE.has('ECONNREFUSED')).toBe(false);
    expect(NETWORK_RETRYABLE.has('ENOTFOUND')).toBe(false);
  });
});
