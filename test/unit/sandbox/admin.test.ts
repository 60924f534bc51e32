import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SandboxHandle, startSandbox } from '../../../src/sandbox/index.js';
import { JWT_BEARER, adminPut, basic, clientBody, json } from './helpers.js';

let sb: SandboxHandle;
beforeAll(async () => {
  sb = await startSandbox({ port: 0, adminSecret: 's3cret' });
});
afterAll(() => sb.close());

const JWKS = 'http://127.0.0.1:9/jwks.json';

describe('admin API', () => {
  it('uses the given admin secret and a random one otherwise', async () => {
    expect(sb.adminSecret).toBe('s3cret');
    expect(sb.adminClientId).toBe('root');
    const other = await startSandbox({ port: 0 });
    try {
      expect(other.adminSecret.length).toBeGreaterThanOrEqual(16);
    } finally {
      await other.close();
    }
  });

  it('PUT /Client creates (201), then updates (200), echoing resourceType and id', async () => {
    const created = await adminPut(sb, '/Client/c1', clientBody(JWKS));
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      resourceType: 'Client',
      id: 'c1',
      type: 'bulk-api-client',
      grant_types: ['client_credentials'],
      jwks_uri: JWKS,
      auth: { client_credentials: { token_format: 'jwt', access_token_expiration: 300 } },
    });
    const updated = await adminPut(
      sb,
      '/Client/c1',
      clientBody(JWKS, { scope: ['system/Patient.rs'] }),
    );
    expect(updated.status).toBe(200);
    expect(updated.body.scope).toEqual(['system/Patient.rs']);
    const got = await fetch(`${sb.url}/Client/c1`, { headers: { authorization: basic(sb) } });
    expect(got.status).toBe(200);
    expect((await json(got)).scope).toEqual(['system/Patient.rs']);
  });

  it('PUT /AccessPolicy creates and echoes the policy', async () => {
    const body = { engine: 'allow', link: [{ id: 'c1', resourceType: 'Client' }] };
    const r = await adminPut(sb, '/AccessPolicy/c1', body);
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ ...body, resourceType: 'AccessPolicy', id: 'c1' });
    expect((await adminPut(sb, '/AccessPolicy/c1', body)).status).toBe(200);
  });

  it('401 with WWW-Authenticate: Basic for missing or wrong admin credentials', async () => {
    const wrong = await adminPut(sb, '/Client/c2', clientBody(JWKS), basic(sb, 'nope'));
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toMatch(/^Basic/);
    expect(wrong.body.resourceType).toBe('OperationOutcome');
    const none = await fetch(`${sb.url}/Client/c1`);
    expect(none.status).toBe(401);
    const otherUser = 'Basic ' + Buffer.from('admin:s3cret').toString('base64');
    expect((await adminPut(sb, '/AccessPolicy/x', { engine: 'allow' }, otherUser)).status).toBe(
      401,
    );
    // Nothing was created by the refused request.
    const get = await fetch(`${sb.url}/Client/c2`, { headers: { authorization: basic(sb) } });
    expect(get.status).toBe(404);
  });

  const invalid: [string, Record<string, unknown>, RegExp][] = [
    ['an unknown grant type', { grant_types: ['client_credentials', 'magic'] }, /'magic'/],
    ['grant_types that is not a list', { grant_types: 'client_credentials' }, /^grant_types/],
    ['client_credentials without auth', { auth: undefined }, /^auth\.client_credentials/],
    [
      'a bad client_assertion_type',
      {
        auth: {
          client_credentials: {
            client_assertion_types: ['urn:x'],
            token_format: 'jwt',
          },
        },
      },
      /client_assertion_types/,
    ],
    [
      'token_format other than jwt',
      {
        auth: {
          client_credentials: { client_assertion_types: [JWT_BEARER], token_format: 'opaque' },
        },
      },
      /token_format/,
    ],
    ['neither jwks_uri nor jwks', { jwks_uri: undefined }, /^jwks_uri/],
    ['a jwks_uri that is not http(s)', { jwks_uri: 'ftp://x/jwks' }, /^jwks_uri/],
    ['bad scope syntax', { scope: ['system/Patient.rx'] }, /^scope/],
    ['a patient/ scope', { scope: ['patient/*.read'] }, /^scope.*system/],
    ['an unknown resource type in scope', { scope: ['system/Patinet.read'] }, /Patinet/],
    [
      'private key material in jwks',
      { jwks: [{ kty: 'RSA', kid: 'k', n: 'x', e: 'AQAB', d: 'y' }] },
      /jwks\[0\]\.d/,
    ],
  ];
  for (const [what, patch, field] of invalid) {
    it(`422 naming the field for ${what}`, async () => {
      const r = await adminPut(sb, '/Client/bad', clientBody(JWKS, patch));
      expect(r.status).toBe(422);
      expect(r.body.resourceType).toBe('OperationOutcome');
      const diagnostics = r.body.issue.map((i: { diagnostics: string }) => i.diagnostics);
      expect(diagnostics.some((d: string) => field.test(d))).toBe(true);
    });
  }

  it('stores Clients of other grants, or without assertions, as Aidbox does', async () => {
    const basicOnly = await adminPut(sb, '/Client/ui', { grant_types: ['basic'], secret: 'x' });
    expect(basicOnly.status).toBe(201);
    expect(basicOnly.body).toMatchObject({ resourceType: 'Client', id: 'ui' });
    const secretOnly = await adminPut(
      sb,
      '/Client/secret-cc',
      clientBody(JWKS, {
        jwks_uri: undefined,
        secret: 'x',
        auth: { client_credentials: { token_format: 'jwt' } },
      }),
    );
    expect(secretOnly.status).toBe(201);
    // Assertions need a key to be checked against.
    const noKey = await adminPut(sb, '/Client/bad', clientBody(JWKS, { jwks_uri: undefined }));
    expect(noKey.status).toBe(422);
  });

  it('422 for invalid JSON and for a bad AccessPolicy', async () => {
    const res = await fetch(`${sb.url}/Client/bad`, {
      method: 'PUT',
      headers: { authorization: basic(sb), 'content-type': 'application/json' },
      body: '{not json',
    });
    expect(res.status).toBe(422);
    const p1 = await adminPut(sb, '/AccessPolicy/bad', { link: [] });
    expect(p1.status).toBe(422);
    expect(JSON.stringify(p1.body)).toMatch(/engine/);
    const p2 = await adminPut(sb, '/AccessPolicy/bad', { engine: 'allow', link: [{ nope: 1 }] });
    expect(p2.status).toBe(422);
    expect(JSON.stringify(p2.body)).toMatch(/link\[0\]/);
  });

  it('as Aidbox: a body id other than the URL id is ignored; scope and token_format are optional', async () => {
    const r = await adminPut(sb, '/Client/url-id', clientBody(JWKS, { id: 'body-id' }));
    expect(r.status).toBe(201);
    expect(r.body.id).toBe('url-id');
    const get = await fetch(`${sb.url}/Client/body-id`, { headers: { authorization: basic(sb) } });
    expect(get.status).toBe(404);
    const bare = await adminPut(
      sb,
      '/Client/bare',
      clientBody(JWKS, {
        scope: undefined,
        auth: { client_credentials: { client_assertion_types: [JWT_BEARER] } },
      }),
    );
    expect(bare.status).toBe(201);
  });

  it('DELETE returns the deleted resource, then 204 for the absent one (as Aidbox)', async () => {
    await adminPut(sb, '/Client/gone', clientBody(JWKS));
    const del = await fetch(`${sb.url}/Client/gone`, {
      method: 'DELETE',
      headers: { authorization: basic(sb) },
    });
    expect(del.status).toBe(200);
    expect(await json(del)).toMatchObject({ resourceType: 'Client', id: 'gone' });
    const again = await fetch(`${sb.url}/Client/gone`, {
      method: 'DELETE',
      headers: { authorization: basic(sb) },
    });
    expect(again.status).toBe(204);
    expect(await again.text()).toBe('');
    const get = await fetch(`${sb.url}/AccessPolicy/never`, {
      headers: { authorization: basic(sb) },
    });
    expect(get.status).toBe(404);
  });
});
