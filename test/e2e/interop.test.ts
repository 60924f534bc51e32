import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { decodeJwt } from 'jose';
import { json, makeWorkspace, runSmart } from '../helpers/cli.js';
import { makeKey, serveJwks, startFlow, type Flow, type FlowKey } from '../helpers/sandbox.js';
import { startOidcProvider, type OidcServer } from '../helpers/oidc.js';
import { startSandbox, type SandboxHandle } from '../../src/sandbox/index.js';

/**
 * The same CLI against two independent servers: our sandbox, and panva's oidc-provider (a
 * certified OpenID Provider) configured for client_credentials + private_key_jwt. RS384 and
 * ES384 keys must get tokens from both.
 */

interface TokenJson {
  access_token: string;
  token_type: string;
  expires_in?: number;
  scope?: string;
  expires_at: string | null;
  from_cache: boolean;
}

const ALGS = ['RS384', 'ES384'] as const;

let sandbox: SandboxHandle;
const flows: Record<string, Flow> = {};
let op: OidcServer;
const opKeys: Record<string, FlowKey> = {};
let opJwks: Awaited<ReturnType<typeof serveJwks>>;

beforeAll(async () => {
  sandbox = await startSandbox({ port: 0, algs: ['RS384', 'ES384'] });
  for (const alg of ALGS)
    flows[alg] = await startFlow({ alg, clientId: `interop-${alg}`, sandbox });
  for (const alg of ALGS) opKeys[alg] = await makeKey(alg);
  opJwks = await serveJwks(() => ({ keys: ALGS.map((a) => opKeys[a]!.publicJwk) }));
  op = await startOidcProvider({
    clients: ALGS.map((alg) => ({
      clientId: `op-${alg}`,
      jwksUri: opJwks.url,
      scope: 'system/*.read',
    })),
  });
});
afterAll(async () => {
  await op?.close();
  await opJwks?.close();
  for (const f of Object.values(flows)) await f.close();
  await sandbox?.close();
});

const opEnv = (alg: string) => ({
  SMART_TOKEN_URL: op.tokenUrl,
  SMART_CLIENT_ID: `op-${alg}`,
  SMART_KEY: opKeys[alg]!.keyFile,
});

describe.each(ALGS)('%s', (alg) => {
  test('gets a token from the sandbox', async () => {
    const r = await runSmart(['token', '-o', 'json'], { env: flows[alg]!.env });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const t = json<TokenJson>(r);
    expect(decodeJwt(t.access_token).sub).toBe(`interop-${alg}`);
    expect(t.token_type).toBe('Bearer');
  });

  test('gets a token from oidc-provider', async () => {
    const r = await runSmart(['token', '-o', 'json'], { env: opEnv(alg) });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const t = json<TokenJson>(r);
    expect(t.access_token.length).toBeGreaterThan(20);
    expect(t.token_type.toLowerCase()).toBe('bearer');
    expect(t.scope).toBe('system/*.read');
    expect(t.expires_in).toBe(300);
    expect(op.errors).toEqual([]);
  });

  test('oidc-provider: the plain token, then the cache', async () => {
    const ws = makeWorkspace();
    const a = await runSmart(['token'], { ws, env: opEnv(alg) });
    expect(a.exitCode).toBe(0);
    const b = await runSmart(['token', '-o', 'json'], { ws, env: opEnv(alg) });
    expect(json<TokenJson>(b).from_cache).toBe(true);
    expect(json<TokenJson>(b).access_token).toBe(a.stdout.trim());
  });
});

describe('oidc-provider errors map like the sandbox ones', () => {
  test('a scope the client may not have: invalid_scope, exit 3', async () => {
    const r = await runSmart(['token', '--scope', 'system/Patient.read'], { env: opEnv('RS384') });
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toContain(`error: token request rejected by ${op.tokenUrl}: invalid_scope`);
    expect(r.stderr).toContain('hint: requested "system/Patient.read"');
  });

  test('an unknown client: invalid_client, exit 3', async () => {
    const r = await runSmart(['token'], { env: { ...opEnv('RS384'), SMART_CLIENT_ID: 'nobody' } });
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toContain(`error: token request rejected by ${op.tokenUrl}: invalid_client`);
  });

  test('a key not in the JWKS: invalid_client, exit 3, the hint names the kid', async () => {
    const stranger = await makeKey('RS384');
    const r = await runSmart(['token'], {
      env: { ...opEnv('RS384'), SMART_KEY: stranger.keyFile },
    });
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toContain('invalid_client');
    expect(r.stderr).toContain(`kid ${stranger.kid}`);
  });
});
