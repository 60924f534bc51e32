import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { json, makeWorkspace, runSmart, type Workspace } from '../helpers/cli.js';
import { makeKey, serveJwks, type FlowKey } from '../helpers/sandbox.js';
import { startSandbox, type SandboxHandle } from '../../src/sandbox/index.js';

/**
 * Client ids as long as a JWT (the SMART reference servers assign one at registration): shortened
 * (`eyJhbGci…OQw`) in every log line, hint, error and --verbose line; whole only where asked.
 */
describe('a long, JWT-like client id', () => {
  let sandbox: SandboxHandle;
  let key: FlowKey;
  let jwks: Awaited<ReturnType<typeof serveJwks>>;
  let ws: Workspace;
  let env: Record<string, string>;
  let id: string;
  let short: string;
  const sandboxLog: string[] = [];

  beforeAll(async () => {
    sandbox = await startSandbox({
      port: 0,
      quirks: ['reference-registration'],
      log: (line) => sandboxLog.push(line),
    });
    key = await makeKey('RS384');
    jwks = await serveJwks(() => ({ keys: [key.publicJwk] }));
    ws = makeWorkspace();
    env = { SMART_BASE_URL: sandbox.url, SMART_KEY: key.keyFile };
    const r = await runSmart(
      [
        'register-client',
        'ref',
        '--server',
        'smart-reference',
        '--jwks-uri',
        jwks.url,
        '-o',
        'json',
      ],
      { ws, env },
    );
    expect(r.exitCode, r.stderr).toBe(0);
    id = json<{ clientId: string }>(r).clientId;
    short = `${id.slice(0, 8)}…${id.slice(-3)}`;
  });
  afterAll(async () => {
    await Promise.all([sandbox?.close(), jwks?.close()]);
  });

  test('is long, and whole where asked: config get clientId, register-client -o json', async () => {
    expect(id.length).toBeGreaterThan(200);
    const get = await runSmart(['config', 'get', 'clientId'], { ws });
    expect(get.stdout.trim()).toBe(id);
  });

  test('token --verbose: no stderr line holds the whole id', async () => {
    const r = await runSmart(['token', '--verbose', '--no-cache'], { ws, env });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain(`* got a token for ${short}, expires in`);
    expect(r.stderr).not.toContain(id);
    // The sandbox's own request log shortens it too.
    expect(sandboxLog.some((l) => l.includes(`client=${short}`))).toBe(true);
    expect(sandboxLog.filter((l) => l.includes(id))).toEqual([]);
  });

  test('failures whose hint names the client: shortened', async () => {
    const other = await makeKey('RS384');
    // A key the server does not know: invalid_client, whose hint names the client.
    const bad = await runSmart(['token', '--no-cache', '--key', other.keyFile, '--verbose'], {
      ws,
      env,
    });
    expect(bad.exitCode).toBe(3);
    expect(bad.stderr).toContain(`is client id "${short}" registered?`);
    expect(bad.stderr).not.toContain(id);
    // A scope outside the registered one: invalid_scope, whose hint says how to register again.
    const scope = await runSmart(['token', '--no-cache', '--scope', 'system/*.write'], { ws, env });
    expect(scope.exitCode).toBe(3);
    expect(scope.stderr).toContain('invalid_scope');
    expect(scope.stderr).not.toContain(id);
    const api = await runSmart(['api', '/Patient', '--verbose', '--key', other.keyFile], {
      ws,
      env,
    });
    expect(api.exitCode).toBe(3);
    expect(api.stderr).toContain(short);
    expect(api.stderr).not.toContain(id);
    const u = await runSmart(['unregister-client', id], { ws, env });
    expect(u.exitCode).toBe(1);
    expect(u.stderr).toContain(`(client "${short}")`);
    expect(u.stderr).not.toContain(id);
  });
});
