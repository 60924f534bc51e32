import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { copyFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { decodeProtectedHeader } from 'jose';
import { json, makeWorkspace, runSmart, type Workspace } from '../helpers/cli.js';
import { startFlow, type Flow } from '../helpers/sandbox.js';

// `smart keygen --alg RS384`, then `smart keygen --alg ES384` (the profile now holds the EC key
// and alg ES384), then a command with `--key ./rsa.pem`: the alg comes from that key.
let flow: Flow;
let ws: Workspace;
let rsa: string;

beforeAll(async () => {
  flow = await startFlow({ clientId: 'alg-client', sandbox: { algs: ['RS384', 'ES384'] } });
  ws = makeWorkspace();
  const first = await runSmart(['keygen', '--alg', 'RS384', '-o', 'json'], { ws });
  expect(first.exitCode).toBe(0);
  const second = await runSmart(['keygen', '--alg', 'ES384', '-o', 'json'], { ws });
  expect(second.exitCode).toBe(0);
  const config = await runSmart(['config', 'get', 'alg'], { ws });
  expect(config.stdout.trim()).toBe('ES384');
  // The registered key of the flow, copied as ./rsa.pem with its jwks.json beside it.
  rsa = join(ws.home, 'rsa.pem');
  copyFileSync(flow.key.keyFile, rsa);
  copyFileSync(join(flow.key.keyFile, '..', 'jwks.json'), join(ws.home, 'jwks.json'));
});
afterAll(async () => {
  await flow?.close();
  if (ws) rmSync(ws.home, { recursive: true, force: true });
});

const env = () => ({ SMART_BASE_URL: flow.sandbox.url, SMART_CLIENT_ID: flow.clientId });

describe('the signing alg follows the key that is used', () => {
  test('token --key ./rsa.pem signs with RS384 although the profile says ES384', async () => {
    const r = await runSmart(['token', '--key', './rsa.pem', '--no-cache'], { ws, env: env() });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(r.stdout.trim()).toMatch(/^eyJ/);
  });

  test('SMART_KEY=./rsa.pem does the same', async () => {
    const r = await runSmart(['token', '--no-cache'], { ws, env: { ...env(), SMART_KEY: rsa } });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
  });

  test('assertion --key ./rsa.pem has alg RS384 in its header', async () => {
    const r = await runSmart(['assertion', '--key', './rsa.pem', '--aud', flow.sandbox.tokenUrl], {
      ws,
      env: env(),
    });
    expect(r.exitCode).toBe(0);
    expect(decodeProtectedHeader(r.stdout.trim())).toMatchObject({
      alg: 'RS384',
      kid: flow.key.kid,
    });
  });

  test('register-client --key ./rsa.pem checks the JWKS for that key, not an ES384 one', async () => {
    const r = await runSmart(
      [
        'register-client',
        flow.clientId,
        '--key',
        './rsa.pem',
        '--jwks-uri',
        flow.jwksUrl,
        '--no-save',
        '-o',
        'json',
      ],
      { ws, env: { ...env(), SMART_ADMIN_SECRET: flow.sandbox.adminSecret } },
    );
    expect(r.stderr).not.toContain('ES384');
    expect(r.exitCode).toBe(0);
    expect(json<{ client: { result: string } }>(r).client.result).toBe('updated');
  });

  test('an explicit --alg that does not fit the key stays an error (exit 2)', async () => {
    const r = await runSmart(['token', '--key', './rsa.pem', '--alg', 'ES384'], { ws, env: env() });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('ES384 needs an EC key on P-384, but the key is RSA');
    const viaEnv = await runSmart(
      ['assertion', '--key', './rsa.pem', '--aud', flow.sandbox.tokenUrl],
      {
        ws,
        env: { ...env(), SMART_ALG: 'ES384' },
      },
    );
    expect(viaEnv.exitCode).toBe(2);
  });

  test("the profile's own key keeps the profile's alg", async () => {
    const r = await runSmart(['assertion', '--aud', flow.sandbox.tokenUrl, '-o', 'json'], {
      ws,
      env: env(),
    });
    expect(r.exitCode).toBe(0);
    expect(json<{ header: { alg: string } }>(r).header.alg).toBe('ES384');
  });
});
