import { describe, expect, it } from 'vitest';
import { aidboxRegistrar } from '../../../../src/core/registration/aidbox.js';
import type { RegistrationInput } from '../../../../src/core/registration/types.js';
import { rejected } from '../../../helpers/rejected.js';
import { client, useServer } from '../http/harness.js';
import { answerWith, expectOneLine } from './fixture.js';

const srv = useServer();
const ADMIN = { clientId: 'root', secret: 's3cret' };
const BASIC = `Basic ${Buffer.from('root:s3cret').toString('base64')}`;

const input = (over: Partial<RegistrationInput> = {}): RegistrationInput => ({
  name: 'my-app',
  baseUrl: `${srv.base}/`,
  scope: 'system/*.read',
  jwksUri: 'https://keys.example/jwks.json',
  ...over,
});

async function deps(over: Record<string, unknown> = {}) {
  return { http: (await client()).http, admin: ADMIN, ...over };
}

describe('aidbox registrar: plan', () => {
  it('PUT Client/<id>, then PUT AccessPolicy/<id>, JSON bodies', async () => {
    const plan = await aidboxRegistrar.plan(input(), {});
    expect(plan.kind).toBe('aidbox');
    expect(plan.warnings).toEqual([]);
    expect(plan.calls.map((c) => [c.what, c.id, c.method, c.url, c.headers])).toEqual([
      [
        'Client',
        'my-app',
        'PUT',
        `${srv.base}/Client/my-app`,
        { 'content-type': 'application/json' },
      ],
      [
        'AccessPolicy',
        'my-app',
        'PUT',
        `${srv.base}/AccessPolicy/my-app`,
        { 'content-type': 'application/json' },
      ],
    ]);
    expect(plan.calls[0]!.body).toMatchObject({
      jwks_uri: 'https://keys.example/jwks.json',
      scope: ['system/*.read'],
      grant_types: ['client_credentials'],
    });
    expect(plan.calls[1]!.body).toEqual({
      engine: 'allow',
      link: [{ id: 'my-app', resourceType: 'Client' }],
    });
    const noPolicy = await aidboxRegistrar.plan(input({ accessPolicy: false }), {});
    expect(noPolicy.calls.map((c) => c.what)).toEqual(['Client']);
  });

  it('an inline JWKS: its public keys, with a warning for what Aidbox will not take', async () => {
    const plan = await aidboxRegistrar.plan(
      input({
        jwksUri: undefined,
        jwks: { keys: [{ kty: 'EC', kid: 'e1', crv: 'P-384', x: 'x', y: 'y', ext: true }] },
        jwksSource: 'jwks.json',
      }),
      {},
    );
    expect(plan.warnings).toEqual([
      "keys[0] (kid e1) is EC P-384: Aidbox's inline jwks schema takes RSA keys only (use --jwks-uri for EC keys)",
      "keys[0] (kid e1): left out ext (not in Aidbox's Client.jwks schema)",
    ]);
    expect(plan.calls[0]!.body).toMatchObject({
      jwks: [{ kty: 'EC', kid: 'e1', crv: 'P-384', x: 'x', y: 'y' }],
    });
  });

  it('refuses a name that is not an Aidbox id (exit 2)', async () => {
    const e = await rejected(aidboxRegistrar.plan(input({ name: 'my app/x' }), {}));
    expect(e.code).toBe('bad_client_id');
    expectOneLine(e, 2);
  });
});

describe('aidbox registrar: apply', () => {
  it('sends the planned PUTs with HTTP Basic admin credentials; 201 created, 200 updated', async () => {
    const seen = answerWith(srv, (s) =>
      s.path.startsWith('/Client')
        ? { status: 201, body: { resourceType: 'Client', id: 'my-app' } }
        : { status: 200, body: { resourceType: 'AccessPolicy', id: 'my-app' } },
    );
    const plan = await aidboxRegistrar.plan(input(), {});
    const result = await aidboxRegistrar.apply(plan, await deps());
    expect(seen.map((s) => `${s.method} ${s.path}`)).toEqual([
      'PUT /Client/my-app',
      'PUT /AccessPolicy/my-app',
    ]);
    for (const [i, s] of seen.entries()) {
      expect(s.headers.authorization).toBe(BASIC);
      expect(s.headers['content-type']).toBe('application/json');
      expect(s.headers.accept).toBe('application/json');
      expect(JSON.parse(s.body)).toEqual(plan.calls[i]!.body);
    }
    expect(result.kind).toBe('aidbox');
    expect(result.clientId).toBe('my-app');
    expect(result.rows.map((r) => [r.what, r.id, r.status, r.result])).toEqual([
      ['Client', 'my-app', 201, 'created'],
      ['AccessPolicy', 'my-app', 200, 'updated'],
    ]);
    expect(result.rows[0]!.resource).toEqual({ resourceType: 'Client', id: 'my-app' });
    expect(result.management).toBeUndefined();
  });

  it('404 or 405: no Aidbox admin API there; the hint names a discovered registration_endpoint', async () => {
    for (const status of [404, 405]) {
      const seen = answerWith(srv, () => ({ status, body: 'Not Found' }));
      const plan = await aidboxRegistrar.plan(input(), {});
      const e = await rejected(
        aidboxRegistrar.apply(
          plan,
          await deps({
            discover: async () => ({ registration_endpoint: 'https://as.example/reg' }),
          }),
        ),
      );
      expect(e.message).toBe(
        `no Aidbox admin API at ${srv.base}: PUT ${srv.base}/Client/my-app answered ${status}: text/plain: Not Found`,
      );
      expect([e.code, e.status]).toEqual(['no_admin_api', status]);
      expect(e.hint).toBe(
        'the server advertises registration_endpoint https://as.example/reg: try --server rfc7591',
      );
      expectOneLine(e, 1);
      // The first failure stops the rest.
      expect(seen).toHaveLength(1);
    }
  });

  it('404 without a registration_endpoint (or a failed discovery): --base-url or another kind', async () => {
    answerWith(srv, () => ({ status: 404, body: 'Not Found' }));
    const plan = await aidboxRegistrar.plan(input(), {});
    const hint =
      '--base-url must be the Aidbox origin (not the FHIR base); for other servers use --server rfc7591 or --server smart-reference';
    for (const discover of [
      undefined,
      async () => undefined,
      async () => ({ registration_endpoint: 42 }),
      async () => {
        throw new Error('offline');
      },
    ]) {
      const e = await rejected(aidboxRegistrar.apply(plan, await deps({ discover })));
      expect([e.code, e.hint]).toEqual(['no_admin_api', hint]);
    }
  });

  it('401/403: the admin credentials are rejected (exit 3); other statuses are exit 1', async () => {
    answerWith(srv, () => ({ status: 401, body: { error: 'unauthorized' } }));
    const plan = await aidboxRegistrar.plan(input(), {});
    const e = await rejected(aidboxRegistrar.apply(plan, await deps()));
    expect(e.message).toBe(
      `admin credentials rejected by ${srv.base} (PUT ${srv.base}/Client/my-app answered 401)`,
    );
    expect(e.code).toBe('admin_rejected');
    expectOneLine(e, 3);
    answerWith(srv, () => ({
      status: 500,
      body: { resourceType: 'OperationOutcome', issue: [{ severity: 'fatal', code: 'exception' }] },
    }));
    const e500 = await rejected(aidboxRegistrar.apply(plan, await deps()));
    expect(e500.message).toBe(`PUT ${srv.base}/Client/my-app answered 500: fatal exception`);
    expectOneLine(e500, 1);
  });

  it('needs admin credentials (a bug of the caller otherwise)', async () => {
    const plan = await aidboxRegistrar.plan(input(), {});
    await expect(aidboxRegistrar.apply(plan, { http: (await client()).http })).rejects.toThrow(
      'aidbox registration without admin credentials',
    );
  });
});

describe('aidbox registrar: removal', () => {
  it('plans DELETE AccessPolicy, then DELETE Client', async () => {
    const calls = await aidboxRegistrar.planRemoval(
      { clientId: 'my-app', baseUrl: srv.base },
      await deps(),
    );
    expect(calls.map((c) => `${c.method} ${c.url}`)).toEqual([
      `DELETE ${srv.base}/AccessPolicy/my-app`,
      `DELETE ${srv.base}/Client/my-app`,
    ]);
    const only = await aidboxRegistrar.planRemoval(
      { clientId: 'my-app', baseUrl: srv.base, accessPolicy: false },
      await deps(),
    );
    expect(only.map((c) => c.what)).toEqual(['Client']);
  });

  it('asks whether each one is there (GET), deletes what is: deleted or absent', async () => {
    const seen = answerWith(srv, (s) =>
      s.path.startsWith('/AccessPolicy')
        ? { status: 404 }
        : { status: s.method === 'GET' ? 200 : 204 },
    );
    const rows = await aidboxRegistrar.remove(
      { clientId: 'my-app', baseUrl: srv.base },
      await deps(),
    );
    expect(seen.map((s) => `${s.method} ${s.path} ${s.headers.authorization}`)).toEqual([
      `GET /AccessPolicy/my-app ${BASIC}`,
      `GET /Client/my-app ${BASIC}`,
      `DELETE /Client/my-app ${BASIC}`,
    ]);
    expect(rows.map((r) => [r.what, r.status, r.result])).toEqual([
      ['AccessPolicy', 404, 'absent'],
      ['Client', 204, 'deleted'],
    ]);
  });

  it('needs admin credentials; a rejected secret is exit 3', async () => {
    await expect(
      aidboxRegistrar.remove(
        { clientId: 'my-app', baseUrl: srv.base },
        { http: (await client()).http },
      ),
    ).rejects.toThrow('aidbox removal without admin credentials');
    answerWith(srv, () => ({ status: 403 }));
    const e = await rejected(
      aidboxRegistrar.remove({ clientId: 'my-app', baseUrl: srv.base }, await deps()),
    );
    expect(e.code).toBe('admin_rejected');
    expectOneLine(e, 3);
  });
});
