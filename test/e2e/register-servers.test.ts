import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { json, makeWorkspace, runSmart, type Workspace } from '../helpers/cli.js';
import { startOidcProvider, type OidcServer } from '../helpers/oidc.js';
import { makeKey, serveJwks, type FlowKey } from '../helpers/sandbox.js';
import { fixedServer } from '../helpers/servers.js';
import { startSandbox, type SandboxHandle } from '../../src/sandbox/index.js';

/** register-client --server rfc7591 against oidc-provider, smart-reference against the sandbox. */

let key: FlowKey;
let jwks: Awaited<ReturnType<typeof serveJwks>>;
let open: OidcServer;
let guarded: OidcServer;
const IAT = 'initial-access-token-7f3a9c';

beforeAll(async () => {
  key = await makeKey('RS384');
  jwks = await serveJwks(() => ({ keys: [key.publicJwk] }));
  open = await startOidcProvider({ clients: [], registration: {} });
  guarded = await startOidcProvider({ clients: [], registration: { initialAccessToken: IAT } });
});
afterAll(async () => {
  await Promise.all([open?.close(), guarded?.close(), jwks?.close()]);
});

const jwksFile = () => join(key.keyFile, '..', 'jwks.json');

function env(op: OidcServer, extra: Record<string, string> = {}) {
  return {
    SMART_BASE_URL: op.issuer,
    SMART_KEY: key.keyFile,
    SMART_REGISTRATION_URL: op.registrationUrl,
    ...extra,
  };
}

async function registered(ws: Workspace) {
  const cfg = await runSmart(['config', 'get', 'clientId'], { ws });
  return cfg.stdout.trim();
}

describe('register-client --server rfc7591 (oidc-provider, registration on)', () => {
  test.each([
    ['jwks_uri', () => ['--jwks-uri', jwks.url]],
    ['jwks', () => ['--jwks-file', jwksFile()]],
  ])(
    'open registration with %s: the assigned id is printed, saved, and gets a token',
    async (_n, args) => {
      const ws = makeWorkspace();
      const r = await runSmart(
        ['register-client', 'my-app', '--server', 'rfc7591', ...args(), '-o', 'json'],
        { ws, env: env(open) },
      );
      expect(r.exitCode).toBe(0);
      const out = json<{
        clientId: string;
        server: string;
        managementSaved: boolean;
        response: Record<string, unknown>;
      }>(r);
      expect(out.server).toBe('rfc7591');
      expect(out.clientId).not.toBe('my-app');
      expect(out.response).toMatchObject({
        client_name: 'my-app',
        token_endpoint_auth_method: 'private_key_jwt',
        token_endpoint_auth_signing_alg: 'RS384',
        grant_types: ['client_credentials'],
        scope: 'system/*.read',
      });
      expect(out.response).not.toHaveProperty('registration_access_token');
      expect(out.managementSaved).toBe(true);
      expect(r.stderr).toContain('registration access token saved (0600)');
      expect(await registered(ws)).toBe(out.clientId);
      const files = readdirSync(join(ws.config, 'smart', 'registrations'));
      expect(files).toHaveLength(1);
      expect(statSync(join(ws.config, 'smart', 'registrations', files[0]!)).mode & 0o777).toBe(
        0o600,
      );

      const t = await runSmart(['token', '--token-url', open.tokenUrl, '-o', 'json'], {
        ws,
        env: env(open),
      });
      expect(t.stderr).toBe('');
      expect(t.exitCode).toBe(0);
      expect(json<{ access_token: string }>(t).access_token.length).toBeGreaterThan(10);
      expect(open.errors).toEqual([]);
    },
  );

  test('a required initial access token: without it exit 3 naming SMART_REGISTRATION_TOKEN; with it, registered; never printed', async () => {
    const ws = makeWorkspace();
    const args = ['register-client', 'iat-app', '--server', 'rfc7591', '--jwks-uri', jwks.url];
    const no = await runSmart(args, { ws, env: env(guarded) });
    expect(no.exitCode).toBe(3);
    expect(no.stderr).toContain(`error: registration refused by ${guarded.registrationUrl} (401)`);
    expect(no.stderr).toContain('set SMART_REGISTRATION_TOKEN');

    const dry = await runSmart([...args, '--dry-run'], {
      ws,
      env: env(guarded, { SMART_REGISTRATION_TOKEN: IAT }),
    });
    expect(dry.exitCode).toBe(0);
    expect(dry.stdout).toContain(`POST ${guarded.registrationUrl}\nauthorization: Bearer ***\n{`);
    expect(dry.stdout + dry.stderr).not.toContain(IAT);

    const yes = await runSmart([...args, '--verbose', '-o', 'table'], {
      ws,
      env: env(guarded, { SMART_REGISTRATION_TOKEN: IAT }),
    });
    expect(yes.exitCode).toBe(0);
    expect(yes.stdout + yes.stderr).not.toContain(IAT);
    const id = await registered(ws);
    expect(yes.stdout.trim()).toBe(`client id  ${id}`);
    const t = await runSmart(['token', '--token-url', guarded.tokenUrl], { ws, env: env(guarded) });
    expect(t.exitCode).toBe(0);
  });

  test('unregister-client --server rfc7591 deletes the registration (RFC 7592); then the id is refused; again: nothing saved, exit 1', async () => {
    const ws = makeWorkspace();
    const r = await runSmart(
      ['register-client', 'gone-app', '--server', 'rfc7591', '--jwks-uri', jwks.url],
      {
        ws,
        env: env(open),
      },
    );
    expect(r.exitCode).toBe(0);
    const id = await registered(ws);
    // oidc-provider's ids are random base64url: one can start with "-", so `--` ends the options.
    const u = await runSmart(['unregister-client', '--server', 'rfc7591', '-o', 'json', '--', id], {
      ws,
      env: env(open),
    });
    expect(u.stderr).not.toContain('error:');
    expect(u.exitCode).toBe(0);
    expect(
      json<{ registration: { result: string; status: number } }>(u).registration,
    ).toMatchObject({
      result: 'deleted',
      status: 204,
    });
    const t = await runSmart(['token', '--token-url', open.tokenUrl], { ws, env: env(open) });
    expect(t.exitCode).toBe(3);
    const again = await runSmart(['unregister-client', '--server', 'rfc7591', '--', id], {
      ws,
      env: env(open),
    });
    expect(again.exitCode).toBe(1);
    expect(again.stderr).toContain(
      'no registration_client_uri and registration_access_token saved for client',
    );
  });

  test('no --registration-url and no registration_endpoint in discovery: exit 2 naming the flag', async () => {
    const s = await fixedServer((path) =>
      path === '/fhir/.well-known/smart-configuration'
        ? { status: 200, body: JSON.stringify({ token_endpoint: 'http://127.0.0.1:1/token' }) }
        : undefined,
    );
    try {
      const r = await runSmart(
        ['register-client', 'x', '--server', 'rfc7591', '--jwks-uri', jwks.url],
        {
          env: { SMART_BASE_URL: s.url },
        },
      );
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toContain('no registration endpoint');
      expect(r.stderr).toContain('--registration-url');
    } finally {
      await s.close();
    }
  });
});

describe('wrong kind', () => {
  test('aidbox on a server without the admin API: "no Aidbox admin API", naming the registration_endpoint', async () => {
    const s = await fixedServer((path) =>
      path === '/fhir/.well-known/smart-configuration'
        ? {
            status: 200,
            body: JSON.stringify({
              token_endpoint: 'http://127.0.0.1:1/token',
              registration_endpoint: 'http://127.0.0.1:1/register',
            }),
          }
        : undefined,
    );
    try {
      const r = await runSmart(['register-client', 'x', '--jwks-uri', jwks.url, '--no-check'], {
        env: { SMART_BASE_URL: s.url, SMART_ADMIN_SECRET: 'admin-pw' },
      });
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toContain(`error: no Aidbox admin API at ${s.url}`);
      expect(r.stderr).toContain(
        'hint: the server advertises registration_endpoint http://127.0.0.1:1/register: try --server rfc7591',
      );
      expect(r.stderr).not.toContain('admin-pw');
    } finally {
      await s.close();
    }
  });
});

describe('register-client --server smart-reference (sandbox --quirks reference-registration)', () => {
  let sandbox: SandboxHandle;
  beforeAll(async () => {
    sandbox = await startSandbox({ port: 0, quirks: ['reference-registration'] });
  });
  afterAll(async () => {
    await sandbox?.close();
  });

  test.each([
    ['jwks_url', () => ['--jwks-uri', jwks.url], 'jwks_url='],
    ['jwks', () => ['--jwks-file', jwksFile()], 'jwks={"keys":[{"kty":"RSA"'],
  ])(
    'with %s: the plain-text answer is the client id, saved, and gets a token',
    async (_n, args, dryLine) => {
      const ws = makeWorkspace();
      const e = { SMART_BASE_URL: sandbox.url, SMART_KEY: key.keyFile };
      const dry = await runSmart(
        ['register-client', 'ref', '--server', 'smart-reference', ...args(), '--dry-run'],
        {
          ws,
          env: e,
        },
      );
      expect(dry.stdout).toContain(`POST ${sandbox.url}/auth/register\n${dryLine}`);
      const r = await runSmart(
        ['register-client', 'ref', '--server', 'smart-reference', ...args(), '-o', 'table'],
        {
          ws,
          env: e,
        },
      );
      expect(r.exitCode).toBe(0);
      const id = await registered(ws);
      expect(id).toMatch(/^eyJ[\w-]+\.[\w-]+\.[\w-]+$/);
      expect(r.stdout).toBe(`client id  ${id}\n`);
      // Logs shorten the long id.
      expect(r.stderr).toContain(`saved clientId ${id.slice(0, 8)}…${id.slice(-3)}`);
      expect(r.stderr).not.toContain(id);
      const cfg = await runSmart(['config', 'get', 'server'], { ws });
      expect(cfg.stdout.trim()).toBe('smart-reference');
      const t = await runSmart(['token'], { ws, env: e });
      expect(t.stderr).toBe('');
      expect(t.exitCode).toBe(0);
      const u = await runSmart(['unregister-client', id], { ws, env: e });
      expect(u.exitCode).toBe(1);
      expect(u.stderr).toContain(
        'the SMART reference servers have no way to delete a registration',
      );
    },
  );
});
