import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startSandbox, type SandboxHandle } from '../../src/sandbox/index.js';
import { json, makeWorkspace, runSmart, type Workspace } from '../helpers/cli.js';
import { makeKey, serveJwks, type FlowKey } from '../helpers/sandbox.js';
import { closedPort } from '../helpers/servers.js';

const SECRET = 'e2e-admin-secret-9f3k';

let sandbox: SandboxHandle;
let key: FlowKey;
let jwks: Awaited<ReturnType<typeof serveJwks>>;

beforeAll(async () => {
  sandbox = await startSandbox({ port: 0, adminSecret: SECRET });
  key = await makeKey('RS384');
  jwks = await serveJwks(() => ({ keys: [key.publicJwk] }));
});
afterAll(async () => {
  await jwks?.close();
  await sandbox?.close();
});

const env = () => ({
  SMART_BASE_URL: sandbox.url,
  SMART_KEY: key.keyFile,
  SMART_ADMIN_SECRET: SECRET,
});

function profile(ws: Workspace): Record<string, string> {
  const config = JSON.parse(readFileSync(join(ws.config, 'smart', 'config.json'), 'utf8')) as {
    profiles: Record<string, Record<string, string>>;
  };
  return config.profiles.default!;
}

interface Registered {
  client: { result: string; id: string; resource: Record<string, unknown> };
  accessPolicy?: { result: string; id: string; resource: Record<string, unknown> };
}

describe('smart register-client', () => {
  test('--dry-run prints PUT <url> and the bodies, sends nothing, needs no secret', async () => {
    const before = sandbox.requests.length;
    const r = await runSmart(
      ['register-client', 'dry', '--jwks-uri', 'https://keys.example.org/jwks.json', '--dry-run'],
      {
        env: { SMART_BASE_URL: sandbox.url },
      },
    );
    expect(r.exitCode).toBe(0);
    expect(sandbox.requests.length).toBe(before);
    expect(r.stderr).toContain('dry run: nothing was sent');
    const [clientPart, policyPart] = r.stdout.split('\n\n');
    expect(clientPart!.split('\n')[0]).toBe(`PUT ${sandbox.url}/Client/dry`);
    expect(JSON.parse(clientPart!.split('\n').slice(1).join('\n'))).toEqual({
      type: 'bulk-api-client',
      active: true,
      auth: {
        client_credentials: {
          client_assertion_types: ['urn:ietf:params:oauth:client-assertion-type:jwt-bearer'],
          access_token_expiration: 300,
          token_format: 'jwt',
        },
      },
      scope: ['system/*.read'],
      jwks_uri: 'https://keys.example.org/jwks.json',
      grant_types: ['client_credentials'],
    });
    expect(policyPart!.split('\n')[0]).toBe(`PUT ${sandbox.url}/AccessPolicy/dry`);
    expect(JSON.parse(policyPart!.split('\n').slice(1).join('\n'))).toEqual({
      engine: 'allow',
      link: [{ id: 'dry', resourceType: 'Client' }],
    });
  });

  test('SMART_JWKS_URI stands for --jwks-uri, as its --help line says', async () => {
    const r = await runSmart(['register-client', 'dry-env', '--dry-run'], {
      env: {
        SMART_BASE_URL: sandbox.url,
        SMART_JWKS_URI: 'https://env-keys.example.org/jwks.json',
      },
    });
    expect(r.exitCode).toBe(0);
    const client = JSON.parse(r.stdout.split('\n\n')[0]!.split('\n').slice(1).join('\n')) as {
      jwks_uri?: string;
    };
    expect(client.jwks_uri).toBe('https://env-keys.example.org/jwks.json');
    const help = await runSmart(['register-client', '--help']);
    expect(help.stdout).toMatch(/--jwks-uri <url> .*\(env\s+SMART_JWKS_URI\)/s);
  });

  test('--dry-run honours --scope, --token-expiration, --type and --no-access-policy', async () => {
    const r = await runSmart(
      [
        'register-client',
        'dry2',
        '--jwks-uri',
        'https://keys.example.org/jwks.json',
        '--scope',
        'system/Patient.read system/Observation.read',
        '--token-expiration',
        '600',
        '--type',
        'smart-app',
        '--no-access-policy',
        '--dry-run',
      ],
      { env: { SMART_BASE_URL: sandbox.url } },
    );
    expect(r.exitCode).toBe(0);
    expect(r.stdout).not.toContain('AccessPolicy');
    const body = JSON.parse(r.stdout.split('\n').slice(1).join('\n')) as {
      scope: string[];
      type: string;
      auth: { client_credentials: { access_token_expiration: number } };
    };
    expect(body.scope).toEqual(['system/Patient.read', 'system/Observation.read']);
    expect(body.auth.client_credentials.access_token_expiration).toBe(600);
    expect(body.type).toBe('smart-app');
  });

  test('--dry-run never shows the admin secret, even when it is set and with --verbose --debug', async () => {
    const before = sandbox.requests.length;
    const r = await runSmart(
      ['register-client', 'dry3', '--jwks-uri', jwks.url, '--dry-run', '--verbose', '--debug'],
      { env: env() },
    );
    expect(r.exitCode).toBe(0);
    expect(sandbox.requests.length).toBe(before);
    expect(r.stdout.match(/^PUT /gm)).toHaveLength(2);
    for (const s of [SECRET, Buffer.from(`root:${SECRET}`).toString('base64'), 'Basic ']) {
      expect(r.stdout).not.toContain(s);
      expect(r.stderr).not.toContain(s);
    }
  });

  test('--dry-run -o json: the planned requests as data, secrets masked; -o csv is exit 2 before any request', async () => {
    const before = sandbox.requests.length;
    const r = await runSmart(
      ['register-client', 'dry4', '--jwks-uri', jwks.url, '--dry-run', '-o', 'json', '--verbose'],
      { env: env() },
    );
    expect(r.exitCode).toBe(0);
    expect(sandbox.requests.length).toBe(before);
    const doc = JSON.parse(r.stdout) as {
      calls: { what: string; method: string; url: string; body: Record<string, unknown> }[];
    };
    expect(doc.calls.map((c) => [c.what, c.method, c.url])).toEqual([
      ['Client', 'PUT', `${sandbox.url}/Client/dry4`],
      ['AccessPolicy', 'PUT', `${sandbox.url}/AccessPolicy/dry4`],
    ]);
    expect(doc.calls[0]!.body).toMatchObject({ type: 'bulk-api-client', jwks_uri: jwks.url });
    expect(doc.calls[1]!.body).toEqual({
      engine: 'allow',
      link: [{ id: 'dry4', resourceType: 'Client' }],
    });
    for (const s of [SECRET, Buffer.from(`root:${SECRET}`).toString('base64')]) {
      expect(r.stdout).not.toContain(s);
      expect(r.stderr).not.toContain(s);
    }

    const csv = await runSmart(
      ['register-client', 'dry4', '--jwks-uri', jwks.url, '--dry-run', '-o', 'csv'],
      {
        env: env(),
      },
    );
    expect(csv.exitCode).toBe(2);
    expect(csv.stdout).toBe('');
    expect(csv.stderr.split('\n').filter((l) => l.startsWith('error: '))).toEqual([
      expect.stringMatching(/csv/),
    ]);
    expect(sandbox.requests.length).toBe(before);
  });

  test('--no-access-policy: only the Client is written; no AccessPolicy exists afterwards', async () => {
    const r = await runSmart(
      [
        'register-client',
        'reg-nopolicy',
        '--jwks-uri',
        jwks.url,
        '--no-access-policy',
        '--no-save',
      ],
      { env: env() },
    );
    expect(r.exitCode, r.stderr).toBe(0);
    const out = json<Registered>(r);
    expect(out.client.result).toBe('created');
    expect(out.accessPolicy).toBeUndefined();
    const puts = sandbox.requests.filter((q) => q.path.endsWith('/reg-nopolicy'));
    expect(puts.map((q) => `${q.method} ${q.path}`)).toEqual(['PUT /Client/reg-nopolicy']);
    const policy = await fetch(`${sandbox.url}/AccessPolicy/reg-nopolicy`, {
      headers: { authorization: `Basic ${Buffer.from(`root:${SECRET}`).toString('base64')}` },
    });
    expect(policy.status).toBe(404);
  });

  test('creates, then updates; saves the profile; the client then gets a token', async () => {
    const ws = makeWorkspace();
    const args = ['register-client', 'reg-1', '--jwks-uri', jwks.url];
    const first = await runSmart(args, { ws, env: env() });
    expect(first.exitCode).toBe(0);
    const created = json<Registered>(first);
    expect(created.client.result).toBe('created');
    expect(created.client.id).toBe('reg-1');
    expect(created.accessPolicy!.result).toBe('created');
    expect(created.client.resource.jwks_uri).toBe(jwks.url);
    expect(first.stderr).toContain('is a loopback address');
    expect(first.stderr).toContain(
      `saved clientId reg-1, jwksUri, scope and baseUrl in profile "default"`,
    );
    expect(profile(ws)).toMatchObject({
      clientId: 'reg-1',
      jwksUri: jwks.url,
      scope: 'system/*.read',
      baseUrl: sandbox.url,
    });

    const second = await runSmart(args, { ws, env: env() });
    expect(second.exitCode).toBe(0);
    const updated = json<Registered>(second);
    expect(updated.client.result).toBe('updated');
    expect(updated.accessPolicy!.result).toBe('updated');

    // The profile now holds the client id and base URL: only the key comes from the environment.
    const token = await runSmart(['token'], { ws, env: { SMART_KEY: key.keyFile } });
    expect(token.stderr).toBe('');
    expect(token.exitCode).toBe(0);
    expect(token.stdout).toMatch(/^eyJ/);
  });

  test('-o table: one row per resource with created/updated', async () => {
    const r = await runSmart(
      ['register-client', 'reg-table', '--jwks-uri', jwks.url, '-o', 'table', '--no-save'],
      {
        env: env(),
      },
    );
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/Client\s+│ reg-table │ created/);
    expect(r.stdout).toMatch(/AccessPolicy\s+│ reg-table │ created/);
    expect(r.stderr).not.toContain('saved');
  });

  test('wrong admin secret: exit 3, "admin credentials rejected by <url>"', async () => {
    const r = await runSmart(['register-client', 'reg-x', '--jwks-uri', jwks.url], {
      env: { ...env(), SMART_ADMIN_SECRET: 'wrong-secret-value' },
    });
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toContain(`error: admin credentials rejected by ${sandbox.url}`);
    expect(r.stderr).toContain('SMART_ADMIN_SECRET');
    expect(r.stderr).not.toContain('wrong-secret-value');
  });

  test("the admin client id comes from Aidbox's BOX_ROOT_CLIENT_ID; --admin-client wins", async () => {
    const other = await runSmart(
      ['register-client', 'reg-admin', '--jwks-uri', jwks.url, '--no-save'],
      {
        env: { ...env(), BOX_ROOT_CLIENT_ID: 'not-root' },
      },
    );
    expect(other.exitCode).toBe(3);
    expect(other.stderr).toContain('admin credentials rejected');
    const flag = await runSmart(
      [
        'register-client',
        'reg-admin',
        '--jwks-uri',
        jwks.url,
        '--no-save',
        '--admin-client',
        'root',
      ],
      { env: { ...env(), BOX_ROOT_CLIENT_ID: 'not-root' } },
    );
    expect(flag.exitCode, flag.stderr).toBe(0);
  });

  test('no secret and no terminal: exit 2 naming SMART_ADMIN_SECRET', async () => {
    const r = await runSmart(['register-client', 'reg-x', '--jwks-uri', jwks.url], {
      env: { ...env(), SMART_ADMIN_SECRET: undefined },
    });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('error: no admin secret');
    expect(r.stderr).toContain('SMART_ADMIN_SECRET');
  });

  test('BOX_ROOT_CLIENT_SECRET works as the admin secret', async () => {
    const r = await runSmart(['register-client', 'reg-box', '--jwks-uri', jwks.url, '--no-save'], {
      env: { ...env(), SMART_ADMIN_SECRET: undefined, BOX_ROOT_CLIENT_SECRET: SECRET },
    });
    expect(r.exitCode).toBe(0);
  });

  test('a 422 from the server is summarized naming the field: exit 1', async () => {
    const r = await runSmart(
      ['register-client', 'reg-bad', '--jwks-uri', jwks.url, '--scope', 'patient/*.read'],
      {
        env: env(),
      },
    );
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain(`error: PUT ${sandbox.url}/Client/reg-bad was rejected (422)`);
    expect(r.stderr).toContain(
      "scope: 'patient/*.read': client_credentials clients take only system/ scopes",
    );
    expect(r.stderr).toContain('at scope');
  });

  test('the jwks_uri must hold the profile key (by kid); --no-check skips that', async () => {
    const other = await makeKey('RS384');
    const otherJwks = await serveJwks(() => ({ keys: [other.publicJwk] }));
    try {
      const before = sandbox.requests.length;
      const r = await runSmart(['register-client', 'reg-kid', '--jwks-uri', otherJwks.url], {
        env: env(),
      });
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toContain(`does not hold the key with kid ${key.kid}`);
      expect(r.stderr).toContain('--no-check');
      expect(sandbox.requests.length).toBe(before);
      const skip = await runSmart(
        ['register-client', 'reg-kid', '--jwks-uri', otherJwks.url, '--no-check', '--no-save'],
        {
          env: env(),
        },
      );
      expect(skip.exitCode).toBe(0);
    } finally {
      await otherJwks.close();
    }
  });

  test('a jwks_uri that is not a JWKS is refused', async () => {
    const r = await runSmart(
      ['register-client', 'reg-nj', '--jwks-uri', `${sandbox.url}/fhir/metadata`],
      { env: env() },
    );
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('did not answer with a JWKS');
  });

  test('a jwks_uri this machine cannot reach: a warning, and the registration goes on', async () => {
    const port = await closedPort();
    const r = await runSmart(
      [
        'register-client',
        'reg-far',
        '--jwks-uri',
        `http://127.0.0.1:${port}/.well-known/jwks.json`,
        '--no-save',
      ],
      { env: env() },
    );
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toContain('could not fetch jwks_uri from this machine');
    expect(json<Registered>(r).client.result).toBe('created');
  });

  test('--jwks-file registers the keys inline (public members Aidbox takes) and the client gets a token', async () => {
    const ws = makeWorkspace();
    const file = join(ws.home, 'jwks.json');
    writeFileSync(file, JSON.stringify({ keys: [{ ...key.publicJwk, key_ops: ['verify'] }] }));
    const r = await runSmart(['register-client', 'reg-inline', '--jwks-file', file], {
      ws,
      env: env(),
    });
    expect(r.exitCode).toBe(0);
    const out = json<Registered>(r);
    expect(out.client.resource.jwks).toEqual([
      {
        kid: key.kid,
        kty: 'RSA',
        alg: 'RS384',
        use: 'sig',
        n: key.publicJwk.n,
        e: key.publicJwk.e,
      },
    ]);
    expect(out.client.resource.jwks_uri).toBeUndefined();
    expect(r.stderr).toContain('left out key_ops');
    const token = await runSmart(['token'], { ws, env: { SMART_KEY: key.keyFile } });
    expect(token.exitCode).toBe(0);
  });

  test('--jwks-file with private members is refused', async () => {
    const ws = makeWorkspace();
    const file = join(ws.home, 'jwks.json');
    writeFileSync(file, JSON.stringify({ keys: [{ ...key.publicJwk, d: 'secret' }] }));
    const r = await runSmart(['register-client', 'reg-priv', '--jwks-file', file], {
      ws,
      env: env(),
    });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('private key material');
  });

  test('neither --jwks-uri nor --jwks-file: exit 2', async () => {
    const r = await runSmart(['register-client', 'reg-none'], { env: env() });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('needs --jwks-uri');
  });

  test('no base URL: exit 2 naming --base-url and SMART_BASE_URL', async () => {
    const r = await runSmart(['register-client', 'reg-none', '--jwks-uri', jwks.url], {
      env: { ...env(), SMART_BASE_URL: undefined },
    });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('--base-url');
    expect(r.stderr).toContain('SMART_BASE_URL');
  });

  test('an unreachable admin API: exit 4 naming host:port', async () => {
    const port = await closedPort();
    const r = await runSmart(['register-client', 'reg-far', '--jwks-uri', jwks.url], {
      env: { ...env(), SMART_BASE_URL: `http://127.0.0.1:${port}` },
    });
    expect(r.exitCode).toBe(4);
    expect(r.stderr).toContain(`error: cannot connect to 127.0.0.1:${port}: connection refused`);
  });

  test('the admin secret never appears in output, even with --verbose --debug', async () => {
    const ok = await runSmart(
      [
        'register-client',
        'reg-secret',
        '--jwks-uri',
        jwks.url,
        '--verbose',
        '--debug',
        '--no-save',
      ],
      {
        env: env(),
      },
    );
    expect(ok.exitCode).toBe(0);
    expect(ok.stderr).toContain('PUT ');
    const bad = await runSmart(
      ['register-client', 'reg-secret', '--jwks-uri', jwks.url, '--verbose', '--debug'],
      {
        env: { ...env(), SMART_ADMIN_SECRET: 'another-wrong-one-77' },
      },
    );
    expect(bad.exitCode).toBe(3);
    for (const r of [ok, bad]) {
      for (const s of [
        SECRET,
        'another-wrong-one-77',
        Buffer.from(`root:${SECRET}`).toString('base64'),
      ]) {
        expect(r.stderr).not.toContain(s);
        expect(r.stdout).not.toContain(s);
      }
    }
  });
});

describe('smart unregister-client', () => {
  test('deletes the AccessPolicy and the Client; a second run says already gone, exit 0', async () => {
    const reg = await runSmart(
      ['register-client', 'unreg-1', '--jwks-uri', jwks.url, '--no-save'],
      {
        env: env(),
      },
    );
    expect(reg.exitCode).toBe(0);
    const r = await runSmart(['unregister-client', 'unreg-1'], { env: env() });
    expect(r.exitCode).toBe(0);
    const out = json<Registered>(r);
    expect(out.accessPolicy!.result).toBe('deleted');
    expect(out.client.result).toBe('deleted');
    const deletes = sandbox.requests.filter((q) => q.method === 'DELETE').slice(-2);
    expect(deletes.map((q) => q.path)).toEqual(['/AccessPolicy/unreg-1', '/Client/unreg-1']);

    const again = await runSmart(['unregister-client', 'unreg-1'], { env: env() });
    expect(again.exitCode).toBe(0);
    expect(again.stderr).toContain('Client/unreg-1 was already gone');
    expect(again.stderr).toContain('AccessPolicy/unreg-1 was already gone');
    expect(json<Registered>(again).client.result).toBe('absent');
  });

  test('the unregistered client can no longer get a token', async () => {
    await runSmart(['register-client', 'unreg-2', '--jwks-uri', jwks.url, '--no-save'], {
      env: env(),
    });
    const tokenEnv = { ...env(), SMART_CLIENT_ID: 'unreg-2' };
    expect((await runSmart(['token'], { env: tokenEnv })).exitCode).toBe(0);
    expect((await runSmart(['unregister-client', 'unreg-2'], { env: env() })).exitCode).toBe(0);
    const r = await runSmart(['token'], { env: tokenEnv });
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toContain('invalid_client');
  });

  test('--dry-run prints the two DELETEs, policy first', async () => {
    const r = await runSmart(['unregister-client', 'x', '--dry-run'], {
      env: { SMART_BASE_URL: sandbox.url },
    });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe(
      `DELETE ${sandbox.url}/AccessPolicy/x\n\nDELETE ${sandbox.url}/Client/x\n`,
    );
    const json = await runSmart(['unregister-client', 'x', '--dry-run', '--json'], {
      env: { SMART_BASE_URL: sandbox.url },
    });
    expect(json.exitCode).toBe(0);
    expect((JSON.parse(json.stdout) as { calls: { method: string; url: string }[] }).calls).toEqual(
      [
        {
          what: 'AccessPolicy',
          id: 'x',
          method: 'DELETE',
          url: `${sandbox.url}/AccessPolicy/x`,
          headers: {},
        },
        { what: 'Client', id: 'x', method: 'DELETE', url: `${sandbox.url}/Client/x`, headers: {} },
      ],
    );
  });

  test('wrong secret: exit 3', async () => {
    const r = await runSmart(['unregister-client', 'x'], {
      env: { ...env(), SMART_ADMIN_SECRET: 'nope-nope' },
    });
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toContain('admin credentials rejected');
  });
});
