import { existsSync, statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { publicJwks, rfc7591Registrar } from '../../../../src/core/registration/rfc7591.js';
import { loadManagement, saveManagement } from '../../../../src/core/registration/store.js';
import type { SmartConfiguration } from '../../../../src/core/discovery.js';
import type { RegistrationInput } from '../../../../src/core/registration/types.js';
import { rejected } from '../../../helpers/rejected.js';
import { tempDir } from '../../../helpers/tmp.js';
import { client, useServer } from '../http/harness.js';
import { answerWith, expectOneLine } from './fixture.js';

const srv = useServer();
const RSA = { kty: 'RSA', kid: 'r1', alg: 'RS384', use: 'sig', n: 'nnn', e: 'AQAB' };

const input = (over: Partial<RegistrationInput> = {}): RegistrationInput => ({
  name: 'My backend',
  baseUrl: srv.base,
  scope: ' system/Patient.rs   system/Observation.rs ',
  jwksUri: 'https://keys.example/jwks.json',
  registrationUrl: `${srv.base}/register`,
  ...over,
});

const http = async () => (await client()).http;
/** A discovery that found this SMART configuration. */
const conf = (c: object) => async () => c as SmartConfiguration;

describe('publicJwks', () => {
  it('keeps the public members of each key only', () => {
    expect(
      publicJwks(
        input({ jwks: { keys: [{ ...RSA, x5c: ['cert'], ext: true, key_ops: ['verify'] }] } }),
      ),
    ).toEqual({ keys: [{ ...RSA, key_ops: ['verify'] }] });
  });

  it('refuses private key material, naming the source (exit 2)', () => {
    let e: unknown;
    try {
      publicJwks(input({ jwks: { keys: [{ ...RSA, d: 'private' }] }, jwksSource: 'keys.json' }));
    } catch (err) {
      e = err;
    }
    expect(e).toMatchObject({
      message: 'keys.json holds private key material: keys[0] (kid r1): d',
      code: 'private_members',
      exitCode: 2,
    });
  });
});

describe('rfc7591 registrar: plan', () => {
  it('one POST of the client metadata as JSON; the initial access token as a secret header', async () => {
    const plan = await rfc7591Registrar.plan(
      input({ alg: 'RS384', registrationToken: 'iat-123' }),
      {},
    );
    expect(plan.kind).toBe('rfc7591');
    expect(plan.calls).toEqual([
      {
        what: 'registration',
        method: 'POST',
        url: `${srv.base}/register`,
        headers: {
          'content-type': 'application/json',
          accept: 'application/json',
          authorization: 'Bearer iat-123',
        },
        body: {
          client_name: 'My backend',
          grant_types: ['client_credentials'],
          response_types: [],
          token_endpoint_auth_method: 'private_key_jwt',
          token_endpoint_auth_signing_alg: 'RS384',
          jwks_uri: 'https://keys.example/jwks.json',
          scope: 'system/Patient.rs system/Observation.rs',
        },
        secretHeaders: ['authorization'],
      },
    ]);
    const inline = await rfc7591Registrar.plan(
      input({ jwksUri: undefined, jwks: { keys: [RSA] } }),
      {},
    );
    expect(inline.calls[0]!.body).toMatchObject({ jwks: { keys: [RSA] } });
    expect(inline.calls[0]!.body).not.toHaveProperty('token_endpoint_auth_signing_alg');
    expect(inline.calls[0]!.headers).not.toHaveProperty('authorization');
  });

  it('takes the registration_endpoint from discovery when --registration-url is not given', async () => {
    const plan = await rfc7591Registrar.plan(input({ registrationUrl: undefined }), {
      discover: conf({ registration_endpoint: 'https://as.example/reg' }),
    });
    expect(plan.calls[0]!.url).toBe('https://as.example/reg');
  });

  it('no registration endpoint: a usage error saying why (exit 2)', async () => {
    const none = await rejected(
      rfc7591Registrar.plan(input({ registrationUrl: undefined }), { discover: conf({}) }),
    );
    expect(none.message).toBe(
      "no registration endpoint: the server's SMART configuration has no registration_endpoint",
    );
    expect(none.code).toBe('no_registration_endpoint');
    expect(none.hint).toMatch(
      /^pass --registration-url \(or set SMART_REGISTRATION_URL\), or register out of band/,
    );
    expectOneLine(none, 2);
    expect(
      (await rejected(rfc7591Registrar.plan(input({ registrationUrl: undefined }), {}))).code,
    ).toBe('no_registration_endpoint');
    const failed = await rejected(
      rfc7591Registrar.plan(input({ registrationUrl: undefined }), {
        discover: async () => {
          throw new Error('connection refused');
        },
      }),
    );
    expect(failed.message).toBe('no registration endpoint: discovery failed (connection refused)');
    expect(failed.hint).toBe('pass --registration-url (or set SMART_REGISTRATION_URL)');
    expectOneLine(failed, 2);
  });
});

describe('rfc7591 registrar: apply', () => {
  it('POSTs the metadata; the client id, and the management credentials kept out of the row', async () => {
    const seen = answerWith(srv, () => ({
      status: 201,
      body: {
        client_id: 'assigned-1',
        client_name: 'My backend',
        client_secret: 'never-shown',
        registration_client_uri: `${srv.base}/register/assigned-1`,
        registration_access_token: 'rat-secret',
      },
    }));
    const plan = await rfc7591Registrar.plan(input({ registrationToken: 'iat-123' }), {});
    const result = await rfc7591Registrar.apply(plan, { http: await http() });
    expect(seen).toHaveLength(1);
    expect(seen[0]!.method).toBe('POST');
    expect(seen[0]!.path).toBe('/register');
    expect(seen[0]!.headers['content-type']).toBe('application/json');
    expect(seen[0]!.headers.authorization).toBe('Bearer iat-123');
    expect(JSON.parse(seen[0]!.body)).toEqual(plan.calls[0]!.body);
    expect(result.clientId).toBe('assigned-1');
    expect(result.management).toEqual({
      clientId: 'assigned-1',
      registrationClientUri: `${srv.base}/register/assigned-1`,
      registrationAccessToken: 'rat-secret',
    });
    expect(result.rows).toEqual([
      {
        what: 'registration',
        id: 'assigned-1',
        url: `${srv.base}/register`,
        status: 201,
        result: 'registered',
        resource: {
          client_id: 'assigned-1',
          client_name: 'My backend',
          registration_client_uri: `${srv.base}/register/assigned-1`,
        },
      },
    ]);
  });

  it('no management credentials when the server gives none', async () => {
    answerWith(srv, () => ({ status: 201, body: { client_id: 'c2' } }));
    const plan = await rfc7591Registrar.plan(input(), {});
    expect((await rfc7591Registrar.apply(plan, { http: await http() })).management).toBeUndefined();
  });

  it('401/403: the server wants an initial access token, or did not take ours (exit 3)', async () => {
    answerWith(srv, () => ({
      status: 401,
      body: { error: 'invalid_token', error_description: 'initial access token required' },
    }));
    const e = await rejected(
      rfc7591Registrar.apply(await rfc7591Registrar.plan(input(), {}), { http: await http() }),
    );
    expect(e.message).toBe(
      `registration refused by ${srv.base}/register (401): invalid_token: initial access token required`,
    );
    expect(e.code).toBe('invalid_token');
    expect(e.hint).toBe(
      'the server wants an initial access token: set SMART_REGISTRATION_TOKEN (never a flag)',
    );
    expectOneLine(e, 3);
    answerWith(srv, () => ({ status: 403, body: 'forbidden' }));
    const withToken = await rejected(
      rfc7591Registrar.apply(await rfc7591Registrar.plan(input({ registrationToken: 't' }), {}), {
        http: await http(),
      }),
    );
    expect(withToken.message).toBe(
      `registration refused by ${srv.base}/register (403): text/plain: forbidden`,
    );
    expect(withToken.code).toBe('registration_refused');
    expect(withToken.hint).toMatch(
      /^the initial access token in SMART_REGISTRATION_TOKEN was not accepted/,
    );
    expectOneLine(withToken, 3);
  });

  it('400 invalid_client_metadata: the server refused the metadata (exit 1, --dry-run shows it)', async () => {
    answerWith(srv, () => ({
      status: 400,
      body: { error: 'invalid_client_metadata', error_description: 'jwks_uri\nnot allowed' },
    }));
    const e = await rejected(
      rfc7591Registrar.apply(await rfc7591Registrar.plan(input(), {}), { http: await http() }),
    );
    expect(e.message).toBe(
      `registration at ${srv.base}/register failed (400): invalid_client_metadata: jwks_uri not allowed`,
    );
    expect([e.code, e.hint]).toEqual([
      'invalid_client_metadata',
      'the server refused the client metadata; --dry-run prints what was sent',
    ]);
    expectOneLine(e, 1);
  });

  it('500 without an OAuth error: registration_failed with the body summary (exit 1)', async () => {
    answerWith(srv, () => ({ status: 500, body: 'database down' }));
    const e = await rejected(
      rfc7591Registrar.apply(await rfc7591Registrar.plan(input(), {}), { http: await http() }),
    );
    expect(e.message).toBe(
      `registration at ${srv.base}/register failed (500): text/plain: database down`,
    );
    expect([e.code, e.hint, e.status]).toEqual(['registration_failed', undefined, 500]);
    expectOneLine(e, 1);
  });

  it('an answer without a client_id is not a registration (exit 1)', async () => {
    for (const body of [{ client_name: 'x' }, { client_id: '' }, 'created!']) {
      answerWith(srv, () => ({ status: 201, body }));
      const e = await rejected(
        rfc7591Registrar.apply(await rfc7591Registrar.plan(input(), {}), { http: await http() }),
      );
      expect(e.message).toMatch(
        new RegExp(`^the registration answer of ${srv.base}/register has no client_id: `),
      );
      expect(e.code).toBe('bad_registration_response');
      expectOneLine(e, 1);
    }
  });
});

describe('rfc7591 registrar: removal (RFC 7592)', () => {
  async function saved() {
    const configDir = tempDir();
    await saveManagement(configDir, {
      clientId: 'assigned-1',
      registrationClientUri: `${srv.base}/register/assigned-1`,
      registrationAccessToken: 'rat-secret',
    });
    return configDir;
  }
  const removal = { clientId: 'assigned-1', baseUrl: 'https://unused.example' };

  it('without saved management credentials: nothing to send, a runtime error (exit 1)', async () => {
    for (const configDir of [undefined, tempDir()]) {
      const e = await rejected(
        rfc7591Registrar.planRemoval(removal, { http: await http(), configDir }),
      );
      expect(e.message).toBe(
        'no registration_client_uri and registration_access_token saved for client "assigned-1": the server gave none when it was registered (or it was registered elsewhere), so it cannot be deleted through RFC 7592',
      );
      expect(e.code).toBe('no_registration_management');
      expectOneLine(e, 1);
    }
  });

  it('DELETE registration_client_uri with the registration access token; the saved file goes', async () => {
    const configDir = await saved();
    const calls = await rfc7591Registrar.planRemoval(removal, { http: await http(), configDir });
    expect(calls).toEqual([
      {
        what: 'registration',
        id: 'assigned-1',
        method: 'DELETE',
        url: `${srv.base}/register/assigned-1`,
        headers: { authorization: 'Bearer rat-secret' },
        secretHeaders: ['authorization'],
      },
    ]);
    const seen = answerWith(srv, () => ({ status: 204 }));
    const rows = await rfc7591Registrar.remove(removal, { http: await http(), configDir });
    expect(seen.map((s) => `${s.method} ${s.path} ${s.headers.authorization}`)).toEqual([
      'DELETE /register/assigned-1 Bearer rat-secret',
    ]);
    expect(rows).toEqual([
      {
        what: 'registration',
        id: 'assigned-1',
        url: `${srv.base}/register/assigned-1`,
        status: 204,
        result: 'deleted',
      },
    ]);
    expect(await loadManagement(configDir, 'assigned-1')).toBeUndefined();
  });

  it('404 or 410: already gone (absent)', async () => {
    for (const status of [404, 410]) {
      const configDir = await saved();
      answerWith(srv, () => ({ status }));
      const [row] = await rfc7591Registrar.remove(removal, { http: await http(), configDir });
      expect([row!.status, row!.result]).toEqual([status, 'absent']);
    }
  });

  it('401/403: the registration access token was refused (exit 3); the credentials are kept', async () => {
    const configDir = await saved();
    answerWith(srv, () => ({ status: 401, body: { error: 'invalid_token' } }));
    const e = await rejected(rfc7591Registrar.remove(removal, { http: await http(), configDir }));
    expect(e.message).toBe(
      `${srv.base}/register/assigned-1 refused the registration access token (401): invalid_token`,
    );
    expect(e.code).toBe('registration_token_rejected');
    expectOneLine(e, 3);
    expect(e.message).not.toContain('rat-secret');
    expect(await loadManagement(configDir, 'assigned-1')).toBeDefined();
  });

  it('another failure: registration_failed (exit 1); the credentials are kept', async () => {
    const configDir = await saved();
    answerWith(srv, () => ({ status: 500, body: 'oops' }));
    const e = await rejected(rfc7591Registrar.remove(removal, { http: await http(), configDir }));
    expect(e.message).toBe(
      `registration at ${srv.base}/register/assigned-1 failed (500): text/plain: oops`,
    );
    expectOneLine(e, 1);
    const files = `${configDir}/registrations`;
    expect(existsSync(files) && statSync(files).isDirectory()).toBe(true);
    expect(await loadManagement(configDir, 'assigned-1')).toBeDefined();
  });
});
