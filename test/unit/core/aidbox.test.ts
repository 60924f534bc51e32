import { describe, expect, test } from 'vitest';
import {
  accessPolicyBody,
  checkClientId,
  checkJwks,
  checkJwksUri,
  clientBody,
  inlineJwks,
  isLoopbackUrl,
  registrationRequests,
  sendAdminRequest,
  sendAdminRequests,
  unregistrationRequests,
  type AdminRequest,
} from '../../../src/core/aidbox.js';
import type { SmartError } from '../../../src/core/errors.js';
import { fakeHttp } from '../../helpers/fake-http.js';

const BASE = 'https://aidbox.example.com';
const ADMIN = { clientId: 'root', secret: 's3cret' };
const RSA = { kty: 'RSA', kid: 'k1', alg: 'RS384', use: 'sig', n: 'nnn', e: 'AQAB' };

describe('Client and AccessPolicy bodies', () => {
  test('exactly the Aidbox walkthrough, key order included', () => {
    const body = clientBody({
      scope: 'system/*.read',
      jwksUri: '<Your-JWKS-server>/.well-known/jwks.json',
    });
    // The request body of "Register a Client" in the Aidbox SMART backend services docs.
    const walkthrough = `{
"type": "bulk-api-client",
"active": true,
"auth": {
"client_credentials": {
"client_assertion_types": [
"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
],
"access_token_expiration": 300,
"token_format": "jwt"
}
},
"scope": [
"system/*.read"
],
"jwks_uri": "<Your-JWKS-server>/.well-known/jwks.json",
"grant_types": [
"client_credentials"
]
}`;
    expect(JSON.stringify(body)).toBe(JSON.stringify(JSON.parse(walkthrough)));
    expect(accessPolicyBody('inferno-my-clinic-bulk-client')).toEqual({
      engine: 'allow',
      link: [{ id: 'inferno-my-clinic-bulk-client', resourceType: 'Client' }],
    });
  });

  test('scope list, expiration, type and inline jwks', () => {
    const body = clientBody({
      scope: ' system/Patient.read  system/Observation.read ',
      jwks: [RSA],
      tokenExpiration: 600,
      type: 'smart-app',
    });
    expect(body.scope).toEqual(['system/Patient.read', 'system/Observation.read']);
    expect(body.auth.client_credentials.access_token_expiration).toBe(600);
    expect(body.type).toBe('smart-app');
    expect(body.jwks).toEqual([RSA]);
    expect('jwks_uri' in body).toBe(false);
  });

  test('exactly one JWKS source; a positive expiration; a scope', () => {
    expect(() => clientBody({ scope: 's' })).toThrow(
      'give exactly one of --jwks-uri and --jwks-file',
    );
    expect(() => clientBody({ scope: 's', jwksUri: 'https://x', jwks: [] })).toThrow('exactly one');
    expect(() => clientBody({ scope: 's', jwksUri: 'https://x', tokenExpiration: 0 })).toThrow(
      '--token-expiration 0',
    );
    expect(() => clientBody({ scope: '  ', jwksUri: 'https://x' })).toThrow('--scope is empty');
  });

  test('client ids: Aidbox id syntax', () => {
    expect(checkClientId('my-client_1.x')).toBe('my-client_1.x');
    for (const bad of ['has space', 'a/b', '', 'x'.repeat(65)])
      expect(() => checkClientId(bad)).toThrow('not a valid Aidbox id');
  });
});

describe('inlineJwks', () => {
  test('keeps kid/kty/alg/use/n/e only, and says what it left out', () => {
    const r = inlineJwks({ keys: [{ ...RSA, key_ops: ['verify'], ext: true }] }, 'jwks.json');
    expect(r.keys).toEqual([RSA]);
    expect(r.warnings).toEqual([
      "keys[0] (kid k1): left out key_ops, ext (not in Aidbox's Client.jwks schema)",
    ]);
  });

  test('refuses private members and keys without kid; warns on EC', () => {
    expect(() => inlineJwks({ keys: [{ ...RSA, d: 'x' }] }, 'f.json')).toThrow(
      'f.json holds private key material',
    );
    expect(() => inlineJwks({ keys: [{ kty: 'RSA', n: 'n', e: 'e' }] }, 'f.json')).toThrow(
      'has no kid',
    );
    expect(() => inlineJwks({ keys: [] }, 'f.json')).toThrow('holds no keys');
    const ec = inlineJwks(
      { keys: [{ kty: 'EC', kid: 'e1', crv: 'P-384', x: 'x', y: 'y' }] },
      'f.json',
    );
    expect(ec.warnings[0]).toContain('RSA keys only');
  });
});

describe('requests', () => {
  test('registration: Client then AccessPolicy at native paths on the origin', () => {
    const reqs = registrationRequests(
      `${BASE}/`,
      'c1',
      clientBody({ scope: 's', jwksUri: 'https://k' }),
    );
    expect(reqs.map((r) => `${r.method} ${r.url}`)).toEqual([
      `PUT ${BASE}/Client/c1`,
      `PUT ${BASE}/AccessPolicy/c1`,
    ]);
    expect(reqs[1]!.body).toEqual(accessPolicyBody('c1'));
    expect(
      registrationRequests(BASE, 'c1', clientBody({ scope: 's', jwksUri: 'https://k' }), {
        accessPolicy: false,
      }),
    ).toHaveLength(1);
  });

  test('unregistration: AccessPolicy first, then Client', () => {
    expect(unregistrationRequests(BASE, 'c1').map((r) => `${r.method} ${r.url}`)).toEqual([
      `DELETE ${BASE}/AccessPolicy/c1`,
      `DELETE ${BASE}/Client/c1`,
    ]);
  });
});

describe('sendAdminRequest', () => {
  const put: AdminRequest = {
    method: 'PUT',
    resourceType: 'Client',
    id: 'c1',
    url: `${BASE}/Client/c1`,
    body: { a: 1 },
  };
  const del: AdminRequest = {
    method: 'DELETE',
    resourceType: 'Client',
    id: 'c1',
    url: `${BASE}/Client/c1`,
  };

  test('HTTP Basic, JSON body; 201 = created, 200 = updated', async () => {
    let status = 201;
    const http = fakeHttp(() => ({ status, body: { resourceType: 'Client', id: 'c1' } }));
    expect(await sendAdminRequest(http, put, ADMIN)).toMatchObject({
      result: 'created',
      status: 201,
      resource: { id: 'c1' },
    });
    status = 200;
    expect((await sendAdminRequest(http, put, ADMIN)).result).toBe('updated');
    const call = http.calls[0]!;
    expect(call.headers.authorization).toBe(
      `Basic ${Buffer.from('root:s3cret').toString('base64')}`,
    );
    expect(call.headers['content-type']).toBe('application/json');
    expect(JSON.parse(call.body)).toEqual({ a: 1 });
  });

  test('401 and 403: "admin credentials rejected by <origin>", exit 3, no secret in the message', async () => {
    for (const status of [401, 403]) {
      const http = fakeHttp(() => ({
        status,
        body: { resourceType: 'OperationOutcome', issue: [] },
      }));
      const e = (await sendAdminRequest(http, put, ADMIN).catch((x: unknown) => x)) as SmartError;
      expect(e.exitCode).toBe(3);
      expect(e.message).toBe(
        `admin credentials rejected by ${BASE} (PUT ${BASE}/Client/c1 answered ${status})`,
      );
      expect(`${e.message} ${e.hint}`).not.toContain('s3cret');
    }
  });

  test('422: the OperationOutcome summarized, naming the field', async () => {
    const http = fakeHttp(() => ({
      status: 422,
      body: {
        resourceType: 'OperationOutcome',
        issue: [
          {
            severity: 'error',
            code: 'invalid',
            diagnostics: 'unknown key :jwks_urii',
            expression: ['jwks_urii'],
          },
        ],
      },
    }));
    const e = (await sendAdminRequest(http, put, ADMIN).catch((x: unknown) => x)) as SmartError;
    expect(e.exitCode).toBe(1);
    expect(e.message).toBe(
      `PUT ${BASE}/Client/c1 was rejected (422): error invalid: unknown key :jwks_urii at jwks_urii`,
    );
  });

  test('a server that echoes the request: the secret and the Basic header never reach the message', async () => {
    const basic = Buffer.from('root:s3cret').toString('base64');
    const answers = [
      {
        status: 500,
        body: { error: 'server_error', error_description: `secret s3cret\nis wrong` },
      },
      {
        status: 422,
        body: {
          resourceType: 'OperationOutcome',
          issue: [{ severity: 'error', code: 'invalid', diagnostics: `Basic ${basic} refused` }],
        },
      },
      { status: 502, body: `bad gateway for root:s3cret (${basic})`, contentType: 'text/plain' },
    ];
    for (const a of answers) {
      const http = fakeHttp(() => a);
      const e = (await sendAdminRequest(http, put, ADMIN).catch((x: unknown) => x)) as SmartError;
      expect(e.message).toMatch(/^PUT /);
      expect(e.message).not.toContain('s3cret');
      expect(e.message).not.toContain(basic);
      expect(e.message).not.toContain('\n');
    }
  });

  test('a one-character secret never garbles other words (text/html stays text/html)', async () => {
    const http = fakeHttp(() => ({
      status: 502,
      body: 'proxy x refused: expected text/html, secret x',
      contentType: 'text/plain',
    }));
    const admin = { clientId: 'root', secret: 'x' };
    const e = (await sendAdminRequest(http, put, admin).catch((x: unknown) => x)) as SmartError;
    expect(e.message).toContain('expected text/html, secret ***');
    expect(e.message).toContain('proxy *** refused');
  });

  test('404 on PUT: the hint says base URL is the origin, not the FHIR base', async () => {
    const http = fakeHttp(() => ({ status: 404, body: 'Not Found', contentType: 'text/plain' }));
    const e = (await sendAdminRequest(http, put, ADMIN).catch((x: unknown) => x)) as SmartError;
    expect(e.message).toBe(`PUT ${BASE}/Client/c1 answered 404: text/plain: Not Found`);
    expect(e.hint).toContain('not the FHIR base');
  });

  test('DELETE: GET first; 404/410 there is absent (no DELETE), else 200/204 deleted, others fail', async () => {
    for (const [status, result] of [
      [200, 'deleted'],
      [204, 'deleted'],
    ] as const) {
      const http = fakeHttp((c) => (c.method === 'GET' ? { status: 200, body: {} } : { status }));
      expect((await sendAdminRequest(http, del, ADMIN)).result).toBe(result);
      expect(http.calls.map((c) => c.method)).toEqual(['GET', 'DELETE']);
      expect(http.calls[1]!.headers['content-type']).toBeUndefined();
    }
    for (const status of [404, 410]) {
      // Aidbox answers 204 to the DELETE of an absent resource: the GET tells.
      const http = fakeHttp((c) => (c.method === 'GET' ? { status } : { status: 204 }));
      expect((await sendAdminRequest(http, del, ADMIN)).result).toBe('absent');
      expect(http.calls.map((c) => c.method)).toEqual(['GET']);
    }
    const http = fakeHttp((c) =>
      c.method === 'GET' ? { status: 200, body: {} } : { status: 500, body: 'x' },
    );
    await expect(sendAdminRequest(http, del, ADMIN)).rejects.toThrow('answered 500');
  });

  test('sendAdminRequests stops at the first failure', async () => {
    const http = fakeHttp(() => ({
      status: 422,
      body: { resourceType: 'OperationOutcome', issue: [{ severity: 'error' }] },
    }));
    await expect(
      sendAdminRequests(http, [put, { ...put, resourceType: 'AccessPolicy' }], ADMIN),
    ).rejects.toThrow('rejected (422)');
    expect(http.calls).toHaveLength(1);
  });
});

describe('pre-checks', () => {
  test.each([
    ['http://localhost:8082/.well-known/jwks.json', true],
    ['http://127.0.0.1:8082/jwks.json', true],
    ['http://127.1.2.3/jwks.json', true],
    ['http://[::1]:8082/jwks.json', true],
    ['http://app.localhost/jwks.json', true],
    ['http://0.0.0.0:8082/jwks.json', true],
    ['http://jwks:8082/.well-known/jwks.json', false],
    ['https://keys.example.org/jwks.json', false],
    ['http://host.docker.internal:8082/jwks.json', false],
    ['not a url', false],
  ])('isLoopbackUrl(%s) = %s', (url, loopback) => expect(isLoopbackUrl(url)).toBe(loopback));

  test('checkJwksUri: GET with Accept JSON; the kid must be there', async () => {
    const http = fakeHttp(() => ({ body: { keys: [RSA] } }));
    expect(await checkJwksUri(http, 'https://k/jwks.json', 'k1')).toEqual({
      kids: ['k1'],
      hasKid: true,
    });
    expect(http.calls[0]).toMatchObject({ method: 'GET', headers: { accept: 'application/json' } });
    await expect(checkJwksUri(http, 'https://k/jwks.json', 'other')).rejects.toMatchObject({
      kind: 'usage',
      code: 'kid_not_in_jwks',
      message: 'jwks_uri https://k/jwks.json does not hold the key with kid other (it has k1)',
    });
    expect(await checkJwksUri(http, 'https://k/jwks.json')).toEqual({ kids: ['k1'] });
  });

  test('checkJwksUri: not a JWKS, an error status, private members', async () => {
    const html = fakeHttp(() => ({ body: '<html/>', contentType: 'text/html' }));
    await expect(checkJwksUri(html, 'https://k/j')).rejects.toThrow(
      'did not answer with a JWKS (text/html)',
    );
    const missing = fakeHttp(() => ({ status: 404, body: 'nope' }));
    await expect(checkJwksUri(missing, 'https://k/j')).rejects.toThrow(
      'jwks_uri https://k/j answered 404',
    );
    expect(() => checkJwks({ keys: [{ ...RSA, d: 'x' }] }, 'src')).toThrow(
      'src publishes private key material',
    );
  });
});
