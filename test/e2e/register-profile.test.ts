import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startSandbox, type SandboxHandle } from '../../src/sandbox/index.js';
import { makeWorkspace, runSmart, type Workspace } from '../helpers/cli.js';
import { makeKey, serveJwks, type FlowKey } from '../helpers/sandbox.js';

const SECRET = 'e2e-admin-secret-p4q7';

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

const stored = (ws: Workspace) =>
  (
    JSON.parse(readFileSync(join(ws.config, 'smart', 'config.json'), 'utf8')) as {
      profiles: Record<string, Record<string, string>>;
    }
  ).profiles;

const env = { SMART_KEY: '', SMART_ADMIN_SECRET: SECRET };

describe('register-client and unregister-client keep the profile right', () => {
  test('register-client --base-url says it writes the base URL into the profile', async () => {
    const ws = makeWorkspace();
    const args = ['register-client', 'prof-a', '--jwks-uri', jwks.url, '--base-url', sandbox.url];
    const first = await runSmart(args, { ws, env: { ...env, SMART_KEY: key.keyFile } });
    expect(first.exitCode, first.stderr).toBe(0);
    expect(first.stderr).toContain(
      `the profile's baseUrl is now ${sandbox.url} (it had none), from --base-url`,
    );
    expect(stored(ws).default).toMatchObject({ baseUrl: sandbox.url, clientId: 'prof-a' });
    // The same base URL again: nothing to say about it.
    const again = await runSmart(args, { ws, env: { ...env, SMART_KEY: key.keyFile } });
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stderr).not.toContain("the profile's baseUrl is now");
    // Another one replaces it, and says what it was.
    const other = sandbox.url.replace('127.0.0.1', 'localhost');
    const moved = await runSmart(
      ['register-client', 'prof-a', '--jwks-uri', jwks.url, '--base-url', other],
      { ws, env: { ...env, SMART_KEY: key.keyFile } },
    );
    expect(moved.exitCode, moved.stderr).toBe(0);
    expect(moved.stderr).toContain(
      `the profile's baseUrl is now ${other} (it was ${sandbox.url}), from --base-url`,
    );
    expect(stored(ws).default!.baseUrl).toBe(other);
  });

  test('unregister-client without a terminal says how to clear the stale client id', async () => {
    const ws = makeWorkspace();
    const e = { ...env, SMART_KEY: key.keyFile, SMART_BASE_URL: sandbox.url };
    const reg = await runSmart(['register-client', 'prof-b', '--jwks-uri', jwks.url], {
      ws,
      env: e,
    });
    expect(reg.exitCode, reg.stderr).toBe(0);
    const un = await runSmart(['unregister-client', 'prof-b'], { ws, env: e });
    expect(un.exitCode, un.stderr).toBe(0);
    expect(un.stderr).toContain(
      'profile "default" still has clientId prof-b; to clear it: smart --profile default config unset clientId',
    );
    expect(stored(ws).default!.clientId).toBe('prof-b');
    // Another client than the profile's: nothing to say.
    await runSmart(['register-client', 'prof-c', '--jwks-uri', jwks.url, '--no-save'], {
      ws,
      env: e,
    });
    const other = await runSmart(['unregister-client', 'prof-c'], { ws, env: e });
    expect(other.exitCode, other.stderr).toBe(0);
    expect(other.stderr).not.toContain('still has clientId');
  });
});
