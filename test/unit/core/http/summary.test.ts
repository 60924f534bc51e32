import { describe, expect, it } from 'vitest';
import type { SmartError } from '../../../../src/core/errors.js';
import { describeErrorBody } from '../../../../src/core/http/index.js';
import { oneLine, snippet, summarizeOperationOutcome } from '../../../../src/core/http/summary.js';
import { client, reply, useServer } from './harness.js';

const srv = useServer();

describe('error bodies', () => {
  it('explains a non-JSON body with its content type', async () => {
    srv.handler = reply(200, { 'content-type': 'text/html' }, '<html>login</html>');
    const { http } = await client();
    const res = await http.request(`${srv.base}/fhir/Patient`);
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
    srv.handler = reply(
      400,
      { 'content-type': 'application/json' },
      '{"error":"invalid_client","error_description":"bad kid"}',
    );
    const { http } = await client();
    expect(describeErrorBody(await http.request(`${srv.base}/token`))).toBe(
      'invalid_client: bad kid',
    );
    srv.handler = reply(
      404,
      { 'content-type': 'application/fhir+json' },
      JSON.stringify({
        resourceType: 'OperationOutcome',
        issue: [{ severity: 'error', code: 'not-found', diagnostics: 'no Foo' }],
      }),
    );
    expect(describeErrorBody(await http.request(`${srv.base}/Foo/1`))).toBe(
      'error not-found: no Foo',
    );
  });

  it('never repeats a token or assertion a server echoes in its error, and keeps it on one line', async () => {
    const jwt = 'eyJhbGciOiJSUzM4NCJ9.eyJpc3MiOiJjIn0.c2lnbmF0dXJlc2lnbmF0dXJl';
    srv.handler = reply(
      400,
      { 'content-type': 'application/json' },
      JSON.stringify({
        error: 'invalid_request',
        error_description: `bad assertion\n${jwt}\nclient_secret=hunter2`,
      }),
    );
    const { http } = await client();
    const oauth = describeErrorBody(await http.request(`${srv.base}/token`));
    expect(oauth).toBe('invalid_request: bad assertion [redacted JWT] client_secret=[redacted]');
    srv.handler = reply(
      401,
      { 'content-type': 'application/fhir+json' },
      JSON.stringify({
        resourceType: 'OperationOutcome',
        issue: [{ severity: 'error', code: 'login', diagnostics: `Authorization: Bearer ${jwt}` }],
      }),
    );
    const oo = describeErrorBody(await http.request(`${srv.base}/Patient`));
    expect(oo).not.toContain(jwt);
    expect(oo).toMatch(/^error login: Authorization: Bearer \[redacted/);
  });
});

describe('one-line texts', () => {
  it('folds whitespace and control characters, and cuts long snippets', () => {
    expect(oneLine('a\n\tb\r\n  c')).toBe('a b c');
    const s = snippet('x'.repeat(500), 20);
    expect(s).toBe(`${'x'.repeat(20)}…`);
    expect(snippet('short')).toBe('short');
  });

  it('summarizes an OperationOutcome, and nothing else', () => {
    expect(
      summarizeOperationOutcome({
        resourceType: 'OperationOutcome',
        issue: [
          { severity: 'error', code: 'invalid', details: { text: 'bad _since' } },
          { severity: 'warning', code: 'value', expression: ['Patient.name'] },
        ],
      }),
    ).toBe('error invalid: bad _since; warning value at Patient.name');
    expect(summarizeOperationOutcome({ resourceType: 'Patient' })).toBeUndefined();
    expect(summarizeOperationOutcome('text')).toBeUndefined();
  });
});
