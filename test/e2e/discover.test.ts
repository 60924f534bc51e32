import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startSandbox, type SandboxHandle } from '../../src/sandbox/index.js';
import { json, makeWorkspace, runSmart } from '../helpers/cli.js';
import { startFlow } from '../helpers/sandbox.js';
import { closedPort, fixedServer } from '../helpers/servers.js';

interface DiscoverJson {
  source: string;
  tried: Array<{ url: string; result: string }>;
  config: Record<string, unknown>;
  metadata?: { fhirVersion?: string; software?: string };
  checks: Array<{ requirement: string; status: string; ok: boolean; detail: string }>;
}

let sandbox: SandboxHandle;

beforeAll(async () => {
  sandbox = await startSandbox({ port: 0 });
});
afterAll(async () => {
  await sandbox?.close();
});

const smartConfig = (over: Record<string, unknown> = {}) => ({
  token_endpoint: 'http://127.0.0.1:1/token',
  token_endpoint_auth_methods_supported: ['private_key_jwt'],
  token_endpoint_auth_signing_alg_values_supported: ['RS384', 'ES384'],
  grant_types_supported: ['client_credentials'],
  capabilities: ['client-confidential-asymmetric'],
  ...over,
});

describe('smart discover', () => {
  test('-o csv is exit 2 naming the formats it can print, before any request', async () => {
    // A closed port: a request would be exit 4; the format is refused first.
    const port = await closedPort();
    const r = await runSmart(['discover', `http://127.0.0.1:${port}/fhir`, '-o', 'csv']);
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('error: discover cannot print csv: use -o table, json or ndjson\n');
  });

  test('the sandbox can do backend services: -o json with every check ok, exit 0', async () => {
    const r = await runSmart(['discover', sandbox.fhirUrl, '-o', 'json']);
    expect(r.exitCode).toBe(0);
    const d = json<DiscoverJson>(r);
    expect(d.source).toBe(`${sandbox.fhirUrl}/.well-known/smart-configuration`);
    expect(d.config.token_endpoint).toBe(sandbox.tokenUrl);
    expect(d.metadata?.fhirVersion).toBe('4.0.1');
    expect(d.tried.map((t) => t.url)).toEqual([
      `${sandbox.fhirUrl}/.well-known/smart-configuration`,
      `${sandbox.fhirUrl}/metadata`,
    ]);
    expect(d.checks.map((c) => [c.requirement, c.status])).toEqual([
      ['token endpoint', 'ok'],
      ['client_credentials', 'ok'],
      ['private_key_jwt', 'ok'],
      ['signing algorithm', 'ok'],
      ['client-confidential-asymmetric', 'ok'],
      ['scopes', 'ok'],
    ]);
    expect(r.stderr).toBe('');
  });

  test('default: the configured FHIR base; a readable summary with ok lines (-o table, not a TTY)', async () => {
    const r = await runSmart(['discover', '-o', 'table'], { env: { SMART_BASE_URL: sandbox.url } });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^token endpoint\\s+${sandbox.tokenUrl}$`, 'm'));
    expect(r.stdout).toMatch(/^auth methods\s+private_key_jwt$/m);
    // RS384 only, as Aidbox documents ("alg: fixed value RS384").
    expect(r.stdout).toMatch(/^signing algs\s+RS384$/m);
    expect(r.stdout).toMatch(/^grant types\s+client_credentials$/m);
    expect(r.stdout).toMatch(/^capabilities\s+client-confidential-asymmetric/m);
    expect(r.stdout).toMatch(/^FHIR version\s+4\.0\.1/m);
    expect(r.stdout).toMatch(/^scopes\s+system\/\*\.read/m);
    expect(r.stdout.match(/^ok\s+/gm)).toHaveLength(6);
    expect(r.stdout).not.toContain('✓');
  });

  test('the discovered token endpoint is cached: a following `smart token` does not discover again', async () => {
    const flow = await startFlow({ sandbox, clientId: 'disc-client' });
    try {
      const d = await runSmart(['discover'], { ws: flow.ws, env: flow.env });
      expect(d.exitCode).toBe(0);
      const before = sandbox.requests.length;
      const t = await runSmart(['token'], { ws: flow.ws, env: flow.env });
      expect(t.exitCode).toBe(0);
      expect(sandbox.requests.slice(before).map((q) => `${q.method} ${q.path}`)).toEqual([
        'POST /auth/token',
      ]);
    } finally {
      await flow.close();
    }
  });

  test('a server that cannot do backend services: the summary, then exit 1 naming what is missing', async () => {
    const s = await fixedServer((path) =>
      path === '/fhir/.well-known/smart-configuration'
        ? {
            status: 200,
            body: JSON.stringify(
              smartConfig({
                grant_types_supported: ['authorization_code'],
                token_endpoint_auth_methods_supported: ['client_secret_basic'],
                token_endpoint_auth_signing_alg_values_supported: ['HS256'],
                capabilities: ['launch-ehr'],
              }),
            ),
          }
        : undefined,
    );
    try {
      const r = await runSmart(['discover', `${s.url}/fhir`, '-o', 'table']);
      expect(r.exitCode).toBe(1);
      expect(r.stdout.match(/^missing\s+/gm)).toHaveLength(4);
      expect(r.stdout).toMatch(/^assumed\s+scopes: scopes_supported not advertised/m);
      expect(r.stdout).toContain('grant_types_supported does not include client_credentials');
      expect(r.stdout).toContain('none of HS256 is one smart can sign with');
      expect(r.stderr).toContain(
        `error: ${s.url}/fhir cannot do SMART Backend Services as advertised: missing client_credentials, private_key_jwt, signing algorithm, client-confidential-asymmetric`,
      );
      const j = await runSmart(['discover', `${s.url}/fhir`, '-o', 'json']);
      expect(j.exitCode).toBe(1);
      expect(
        json<DiscoverJson>(j)
          .checks.filter((c) => !c.ok)
          .map((c) => c.status),
      ).toEqual(['missing', 'missing', 'missing', 'missing']);
      expect(r.stderr).not.toContain('--token-url');
    } finally {
      await s.close();
    }
  });

  test("the key's alg must be advertised", async () => {
    const flow = await startFlow({ sandbox, clientId: 'disc-es', alg: 'ES384', register: false });
    const s = await fixedServer((path) =>
      path === '/fhir/.well-known/smart-configuration'
        ? {
            status: 200,
            body: JSON.stringify(
              smartConfig({ token_endpoint_auth_signing_alg_values_supported: ['RS384'] }),
            ),
          }
        : undefined,
    );
    try {
      const r = await runSmart(['discover', `${s.url}/fhir`, '-o', 'json'], { env: flow.env });
      expect(r.exitCode).toBe(1);
      const alg = json<DiscoverJson>(r).checks.find((c) => c.requirement === 'signing algorithm')!;
      expect(alg.ok).toBe(false);
      expect(alg.detail).toContain('the key signs with ES384');
    } finally {
      await s.close();
      await flow.close();
    }
  });

  test.each([
    [
      'grant_types_supported',
      'client_credentials',
      'warning: grant_types_supported not advertised: client_credentials assumed, as client-confidential-asymmetric implies it',
    ],
    [
      'token_endpoint_auth_signing_alg_values_supported',
      'signing algorithm',
      'warning: token_endpoint_auth_signing_alg_values_supported not advertised: RS384 or ES384 assumed',
    ],
  ])(
    'a server that omits %s still issues tokens: assumed with a warning, exit 0',
    async (field, requirement, warning) => {
      const config: Record<string, unknown> = smartConfig({ scopes_supported: ['system/*.read'] });
      delete config[field];
      const s = await fixedServer((path) =>
        path === '/fhir/.well-known/smart-configuration'
          ? { status: 200, body: JSON.stringify(config) }
          : undefined,
      );
      try {
        const r = await runSmart(['discover', `${s.url}/fhir`, '-o', 'table']);
        expect(r.exitCode).toBe(0);
        expect(r.stderr).toContain(warning);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(r.stdout).toMatch(new RegExp(`^assumed\\s+${requirement}: `, 'm'));
        expect(r.stdout.match(/^ok\s+/gm)).toHaveLength(5);
        const j = await runSmart(['discover', `${s.url}/fhir`, '-o', 'json']);
        expect(j.exitCode).toBe(0);
        const check = json<DiscoverJson>(j).checks.find((c) => c.requirement === requirement)!;
        expect(check.status).toBe('assumed');
      } finally {
        await s.close();
      }
    },
  );

  test('no private_key_jwt and no client-confidential-asymmetric: exit 1, without a --token-url hint', async () => {
    const s = await fixedServer((path) =>
      path === '/fhir/.well-known/smart-configuration'
        ? {
            status: 200,
            body: JSON.stringify({ token_endpoint: 'http://127.0.0.1:1/token' }),
          }
        : undefined,
    );
    try {
      const r = await runSmart(['discover', `${s.url}/fhir`, '-o', 'json']);
      expect(r.exitCode).toBe(1);
      const checks = json<DiscoverJson>(r).checks;
      expect(checks.map((c) => c.status)).toEqual([
        'ok',
        'assumed',
        'missing',
        'assumed',
        'missing',
        'assumed',
      ]);
      expect(r.stderr).toContain('missing private_key_jwt, client-confidential-asymmetric');
      expect(r.stderr).not.toContain('--token-url');
    } finally {
      await s.close();
    }
  });

  test("falls back to the origin's .well-known (Aidbox documents the root)", async () => {
    const s = await fixedServer((path) =>
      path === '/.well-known/smart-configuration'
        ? { status: 200, body: JSON.stringify(smartConfig()) }
        : undefined,
    );
    try {
      const r = await runSmart(['discover', `${s.url}/fhir`, '-o', 'json']);
      expect(r.exitCode).toBe(0);
      const d = json<DiscoverJson>(r);
      expect(d.source).toBe(`${s.url}/.well-known/smart-configuration`);
      expect(d.tried[0]).toEqual({
        url: `${s.url}/fhir/.well-known/smart-configuration`,
        result: '404',
      });
    } finally {
      await s.close();
    }
  });

  test('an HTML error page everywhere: exit 1, the message names the content type', async () => {
    const s = await fixedServer({
      status: 500,
      contentType: 'text/html',
      body: '<html><h1>Internal Server Error</h1></html>',
    });
    try {
      const r = await runSmart(['discover', `${s.url}/fhir`]);
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toContain(`error: no SMART configuration found for ${s.url}/fhir`);
      expect(r.stderr).toContain(
        `${s.url}/fhir/.well-known/smart-configuration answered 500 text/html (not JSON)`,
      );
      expect(r.stderr).toContain('hint: check --fhir-url');
    } finally {
      await s.close();
    }
  });

  test('unreachable: exit 4 naming 127.0.0.1:<port>', async () => {
    const port = await closedPort();
    const r = await runSmart(['discover', `http://127.0.0.1:${port}/fhir`]);
    expect(r.exitCode).toBe(4);
    expect(r.stderr).toContain(`error: cannot connect to 127.0.0.1:${port}: connection refused`);
  });

  test('not a URL: exit 2; no FHIR base configured: exit 2 naming the flag', async () => {
    const a = await runSmart(['discover', 'not-a-url']);
    expect(a.exitCode).toBe(2);
    expect(a.stderr).toContain('"not-a-url" is not an absolute http(s) URL');
    const b = await runSmart(['discover'], { ws: makeWorkspace() });
    expect(b.exitCode).toBe(2);
    expect(b.stderr).toContain('--fhir-url');
  });
});
