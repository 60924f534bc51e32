import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execa } from 'execa';
import { createInterface } from 'node:readline';
import { startSandbox, type SandboxHandle } from '../../src/sandbox/index.js';
import { BIN, json, makeWorkspace, smart } from '../helpers/cli.js';
import { startFlow, type Flow } from '../helpers/sandbox.js';

/**
 * The built CLI against the sandbox in each quirk mode (`startSandbox({ quirks })`), each
 * reproducing one behaviour of a real SMART / Bulk Data server.
 */

describe('smart sandbox --quirks', () => {
  test('an unknown quirk: exit 2 naming the known ones', async () => {
    const r = await smart(['sandbox', '--port', '0', '--quirks', 'no-grant-types,nope']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain("error: --quirks: unknown quirk 'nope' (known: no-grant-types,");
  });

  test('the CLI sandbox serves the quirks it was given, and says so in its banner', async () => {
    const ws = makeWorkspace();
    const child = execa(
      process.execPath,
      [
        BIN,
        'sandbox',
        '--port',
        '0',
        '-o',
        'json',
        '--quirks',
        'no-grant-types',
        '--quirks',
        'no-signing-algs',
      ],
      {
        env: { PATH: process.env.PATH!, NO_COLOR: '1', ...ws.env },
        extendEnv: false,
        reject: false,
        stdin: 'ignore',
      },
    );
    try {
      let stderr = '';
      child.stderr!.on('data', (d) => (stderr += d));
      const line = await new Promise<string>((resolve, reject) => {
        createInterface({ input: child.stdout! }).once('line', resolve);
        child.once('exit', () => reject(new Error(`exited early: ${stderr}`)));
      });
      const { fhirUrl } = JSON.parse(line) as { fhirUrl: string };
      expect(stderr).toMatch(/quirks\s+no-grant-types, no-signing-algs\n/);
      const r = await smart(['discover', fhirUrl, '-o', 'json']);
      expect(r.exitCode).toBe(0);
      const checks = json<{ checks: Array<{ requirement: string; status: string }> }>(r).checks;
      expect(checks.filter((c) => c.status === 'assumed').map((c) => c.requirement)).toEqual([
        'client_credentials',
        'signing algorithm',
      ]);
    } finally {
      child.kill('SIGTERM');
      await child;
    }
  });
});

describe('discovery quirks', () => {
  let sandbox: SandboxHandle;
  beforeAll(async () => {
    sandbox = await startSandbox({ port: 0, quirks: ['no-grant-types', 'no-signing-algs'] });
  });
  afterAll(async () => {
    await sandbox?.close();
  });

  test('no-grant-types, no-signing-algs: discover warns per field and exits 0; a token follows', async () => {
    const r = await smart(['discover', sandbox.fhirUrl, '-o', 'table']);
    expect(r.exitCode).toBe(0);
    expect(r.stderr.trim().split('\n')).toEqual([
      'warning: grant_types_supported not advertised: client_credentials assumed, as client-confidential-asymmetric implies it',
      'warning: token_endpoint_auth_signing_alg_values_supported not advertised: RS384 or ES384 assumed, as SMART servers verify RS384 or ES384',
    ]);
    expect(r.stdout).toMatch(/^assumed\s+client_credentials: /m);
    expect(r.stdout).toMatch(/^assumed\s+signing algorithm: /m);
    const flow = await startFlow({ sandbox, clientId: 'quirk-disc' });
    try {
      const t = await smart(['token'], { ws: flow.ws, env: flow.env });
      expect(t.exitCode).toBe(0);
      expect(t.stderr).toBe('');
    } finally {
      await flow.close();
    }
  });
});

describe('lowercase-bearer', () => {
  let flow: Flow;
  beforeAll(async () => {
    flow = await startFlow({ clientId: 'quirk-bearer', sandbox: { quirks: ['lowercase-bearer'] } });
  });
  afterAll(async () => {
    await flow?.close();
  });

  test('token_type "bearer" is a Bearer token: token and query work', async () => {
    const t = await smart(['token', '-o', 'json'], { ws: flow.ws, env: flow.env });
    expect(t.exitCode).toBe(0);
    expect(json<{ token_type: string }>(t).token_type).toBe('bearer');
    const q = await smart(['query', 'Patient', '_count=1', '-o', 'json'], {
      ws: flow.ws,
      env: flow.env,
    });
    expect(q.stderr).toBe('');
    expect(q.exitCode).toBe(0);
  });
});
