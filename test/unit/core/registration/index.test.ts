import { statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  describeCalls,
  planDocument,
  registerClient,
  unregisterClient,
  type RegistrationPlan,
} from '../../../../src/core/registration/index.js';
import { loadManagement } from '../../../../src/core/registration/store.js';
import { tempDir } from '../../../helpers/tmp.js';
import { client, useServer } from '../http/harness.js';
import { answerWith } from './fixture.js';

const srv = useServer();

describe('planDocument', () => {
  it('each call as data: method, url, headers with secret values masked, the body as planned', () => {
    const doc = planDocument([
      {
        what: 'registration',
        method: 'POST',
        url: 'http://x/reg',
        headers: { authorization: 'Bearer s3cret-token', 'content-type': 'application/json' },
        secretHeaders: ['authorization'],
        body: { jwks_uri: 'http://k/jwks.json' },
      },
      { what: 'Client', id: 'c', method: 'DELETE', url: 'http://x/Client/c', headers: {} },
    ]);
    expect(doc).toEqual({
      calls: [
        {
          what: 'registration',
          method: 'POST',
          url: 'http://x/reg',
          headers: { authorization: 'Bearer ***', 'content-type': 'application/json' },
          body: { jwks_uri: 'http://k/jwks.json' },
        },
        { what: 'Client', id: 'c', method: 'DELETE', url: 'http://x/Client/c', headers: {} },
      ],
    });
    expect(JSON.stringify(doc)).not.toContain('s3cret');
  });
});

describe('describeCalls', () => {
  it('METHOD <url>, secret headers masked, then the body (JSON pretty, form decoded)', () => {
    expect(
      describeCalls([
        {
          what: 'Client',
          id: 'c',
          method: 'PUT',
          url: 'http://x/Client/c',
          headers: {},
          body: { a: 1 },
        },
        { what: 'Client', id: 'c', method: 'DELETE', url: 'http://x/Client/c', headers: {} },
      ]),
    ).toBe('PUT http://x/Client/c\n{\n  "a": 1\n}\n\nDELETE http://x/Client/c\n');
    expect(
      describeCalls([
        {
          what: 'registration',
          method: 'POST',
          url: 'http://x/reg',
          headers: { authorization: 'Bearer s3cret-token' },
          secretHeaders: ['authorization'],
          body: 'jwks_url=http%3A%2F%2Fk%2Fjwks.json',
        },
      ]),
    ).toBe('POST http://x/reg\nauthorization: Bearer ***\njwks_url=http://k/jwks.json\n');
  });

  it('a secret header the call does not carry is not shown', () => {
    expect(
      describeCalls([
        {
          what: 'registration',
          method: 'POST',
          url: 'http://x/reg',
          headers: {},
          secretHeaders: ['authorization'],
        },
      ]),
    ).toBe('POST http://x/reg\n');
  });
});

const input = () => ({
  name: 'My backend',
  baseUrl: srv.base,
  scope: 'system/*.read',
  jwksUri: 'https://keys.example/jwks.json',
  registrationUrl: `${srv.base}/register`,
});

describe('registerClient', () => {
  it('a dry run plans and sends nothing; onPlan sees the plan first', async () => {
    const seen = answerWith(srv, () => ({ status: 500 }));
    const plans: RegistrationPlan[] = [];
    const out = await registerClient({
      kind: 'rfc7591',
      input: input(),
      deps: { http: (await client()).http },
      dryRun: true,
      onPlan: (p) => void plans.push(p),
    });
    expect(seen).toEqual([]);
    expect(plans).toEqual([out.plan]);
    expect(out.plan.calls.map((c) => `${c.method} ${c.url}`)).toEqual([
      `POST ${srv.base}/register`,
    ]);
    expect(out.result).toBeUndefined();
    expect(out.managementFile).toBeUndefined();
  });

  it('applies the plan and saves the management credentials under the config dir', async () => {
    const seen = answerWith(srv, () => ({
      status: 201,
      body: {
        client_id: 'c-1',
        registration_client_uri: `${srv.base}/register/c-1`,
        registration_access_token: 'rat',
      },
    }));
    const configDir = tempDir();
    const order: string[] = [];
    const out = await registerClient({
      kind: 'rfc7591',
      input: input(),
      deps: { http: (await client()).http, configDir },
      onPlan: () => void order.push(`plan after ${seen.length} requests`),
    });
    expect(order).toEqual(['plan after 0 requests']);
    expect(seen).toHaveLength(1);
    expect(out.result?.clientId).toBe('c-1');
    expect(out.managementFile).toMatch(new RegExp(`^${configDir}/registrations/`));
    expect(statSync(out.managementFile!).mode & 0o777).toBe(0o600);
    expect(await loadManagement(configDir, 'c-1')).toMatchObject({
      registrationAccessToken: 'rat',
    });
  });

  it('no config dir: the credentials are not saved', async () => {
    answerWith(srv, () => ({
      status: 201,
      body: { client_id: 'c-2', registration_client_uri: 'u', registration_access_token: 't' },
    }));
    const out = await registerClient({
      kind: 'rfc7591',
      input: input(),
      deps: { http: (await client()).http },
    });
    expect(out.result?.management).toBeDefined();
    expect(out.managementFile).toBeUndefined();
  });
});

describe('unregisterClient', () => {
  it('a dry run lists the calls and sends nothing; otherwise the rows of what was done', async () => {
    const seen = answerWith(srv, (s) => ({ status: s.method === 'GET' ? 200 : 204 }));
    const deps = { http: (await client()).http, admin: { clientId: 'root', secret: 's' } };
    const removal = { clientId: 'app', baseUrl: srv.base };
    const dry = await unregisterClient({ kind: 'aidbox', input: removal, deps, dryRun: true });
    expect(dry.calls.map((c) => `${c.method} ${c.url}`)).toEqual([
      `DELETE ${srv.base}/AccessPolicy/app`,
      `DELETE ${srv.base}/Client/app`,
    ]);
    expect(dry.rows).toBeUndefined();
    expect(seen).toEqual([]);
    const done = await unregisterClient({ kind: 'aidbox', input: removal, deps });
    expect(done.rows?.map((r) => `${r.what} ${r.result}`)).toEqual([
      'AccessPolicy deleted',
      'Client deleted',
    ]);
    expect(seen.map((s) => s.method)).toEqual(['GET', 'DELETE', 'GET', 'DELETE']);
  });
});
