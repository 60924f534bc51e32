import { describe, expect, it } from 'vitest';
import { isLoopbackHost, type HttpRequest } from '../../../../src/core/http/index.js';
import { lowerKeys, refuseCleartextCredentials } from '../../../../src/core/http/guard.js';
import { SmartError } from '../../../../src/core/errors.js';
import { client, reply, useServer } from './harness.js';
import { rejected } from '../../../helpers/rejected.js';

const srv = useServer();

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
      const e = await rejected(http.request(`${remote}/x`, init));
      expect(e.kind).toBe('usage');
      expect(e.code).toBe('insecure_http');
      expect(e.message).toBe(`refusing to send ${what} over plain http to fhir.invalid`);
      expect(e.hint).toMatch(/https:\/\/.*--insecure.*SMART_INSECURE=1/);
    }
  });

  it('lets through requests without credentials, loopback hosts, https, and --insecure', async () => {
    const { http } = await client({ retries: 0 });
    // No credentials: the request is made (and fails on DNS, a network error).
    expect((await rejected(http.request(`${remote}/metadata`))).kind).toBe('network');
    // Loopback: fine.
    srv.handler = reply(200, {}, 'ok');
    const local = await http.request(`${srv.base}/x`, { headers: { authorization: 'Bearer abc' } });
    expect(local.status).toBe(200);
    // https: no objection (DNS fails instead).
    const tls = await rejected(
      http.request('https://fhir.invalid/x', { headers: { authorization: 'Bearer abc' } }),
    );
    expect(tls.kind).toBe('network');
    const { http: insecure } = await client({ retries: 0, allowInsecureHttp: true });
    const e = await rejected(
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

describe('refuseCleartextCredentials', () => {
  const refused = (url: string, init: HttpRequest) => {
    try {
      refuseCleartextCredentials(url, init);
      return undefined;
    } catch (e) {
      expect(e).toBeInstanceOf(SmartError);
      return (e as SmartError).message;
    }
  };

  it('looks at the Authorization header whatever its case, and at a form body with an assertion', () => {
    expect(refused('http://aidbox:8080/fhir', { headers: { AUTHORIZATION: 'Bearer t' } })).toBe(
      'refusing to send an access token over plain http to aidbox:8080',
    );
    expect(
      refused('http://aidbox/auth/token', { body: 'grant_type=x&client_assertion=a.b.c' }),
    ).toBe('refusing to send a client assertion over plain http to aidbox');
    // A parameter that merely ends in client_assertion is not one.
    expect(refused('http://aidbox/x', { body: 'not_client_assertion=1' })).toBeUndefined();
    expect(refused('http://aidbox/x', { body: 'a=1', headers: { accept: 'x' } })).toBeUndefined();
  });

  it('lets credentials go to https, to loopback hosts, and leaves a bad URL to the request', () => {
    const init = { headers: { authorization: 'Bearer t' } };
    expect(refused('https://aidbox/x', init)).toBeUndefined();
    expect(refused('http://127.0.0.1:8888/x', init)).toBeUndefined();
    expect(refused('http://[::1]:8888/x', init)).toBeUndefined();
    expect(refused('http://app.localhost/x', init)).toBeUndefined();
    expect(refused('not a url', init)).toBeUndefined();
  });

  it('lowers header names', () => {
    expect(lowerKeys({ 'Content-Type': 'a', ACCEPT: 'b' })).toEqual({
      'content-type': 'a',
      accept: 'b',
    });
  });
});
