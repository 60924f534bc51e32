import { describe, expect, it } from 'vitest';
import { statusError } from '../../../../src/core/http/status-error.js';
import { fakeHttp, type FakeAnswer } from '../../../helpers/fake-http.js';

/** A response as the client gives it, from what a server would answer. */
async function answer(a: FakeAnswer, url = 'https://fhir.example.org/fhir/Patient') {
  return fakeHttp(() => a).request(url);
}

describe('statusError', () => {
  it('says METHOD url answered status: what the server said, exit 1 with the status', async () => {
    const res = await answer({
      status: 500,
      body: {
        resourceType: 'OperationOutcome',
        issue: [{ severity: 'error', code: 'exception', diagnostics: 'database\n  is down' }],
      },
    });
    const e = statusError('GET', res.url, res);
    expect(e.message).toBe(
      'GET https://fhir.example.org/fhir/Patient answered 500: error exception: database is down',
    );
    expect([e.kind, e.exitCode, e.status, e.hint, e.code]).toEqual([
      'http',
      1,
      500,
      undefined,
      undefined,
    ]);
  });

  it('redacts secrets in the URL and in the body it quotes', async () => {
    const jwt = 'eyJhbGciOiJSUzM4NCJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlc2lnbmF0dXJl';
    const res = await answer(
      { status: 400, body: `bad token ${jwt}` },
      'https://user:pw@h.example/x?access_token=abc123',
    );
    const e = statusError('POST', res.url, res);
    expect(e.message).not.toContain('pw@');
    expect(e.message).not.toContain('abc123');
    expect(e.message).not.toContain(jwt);
    expect(e.message).toMatch(
      /^POST https:\/\/.*h\.example\/x\?.* answered 400: text\/plain: bad token /,
    );
  });

  it('takes a kind, a prefix, a hint, a code and details; no method is no method', async () => {
    const res = await answer({ status: 403, body: { error: 'forbidden' } }, 'https://k/j');
    const e = statusError(undefined, 'https://k/j', res, {
      kind: 'auth',
      prefix: 'jwks_uri',
      hint: 'publish it',
      code: 'jwks_unavailable',
      details: { x: 1 },
    });
    expect(e.message).toBe('jwks_uri https://k/j answered 403: forbidden');
    expect([e.kind, e.exitCode, e.hint, e.code, e.details]).toEqual([
      'auth',
      3,
      'publish it',
      'jwks_unavailable',
      { x: 1 },
    ]);
  });

  it("uses the caller's summary, or none at all", async () => {
    const res = await answer({ status: 404, body: 'secret echoed' }, 'https://k/j');
    expect(statusError('PUT', res.url, res, { said: 'scrubbed' }).message).toBe(
      'PUT https://k/j answered 404: scrubbed',
    );
    expect(statusError(undefined, res.url, res, { prefix: 'JWKS', said: false }).message).toBe(
      'JWKS https://k/j answered 404',
    );
    expect(statusError('GET', res.url, await answer({ status: 502 })).message).toBe(
      'GET https://k/j answered 502: empty body',
    );
  });
});
