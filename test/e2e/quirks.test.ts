import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execa } from 'execa';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { startSandbox, type SandboxHandle } from '../../src/sandbox/index.js';
import { BIN, json, makeWorkspace, runSmart, testClock } from '../helpers/cli.js';
import { makeKey, startFlow, type Flow } from '../helpers/sandbox.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * The built CLI against the sandbox in each quirk mode (`startSandbox({ quirks })`), each
 * reproducing one behaviour of a real SMART / Bulk Data server.
 */

describe('smart sandbox --quirks', () => {
  test('an unknown quirk: exit 2 naming the known ones', async () => {
    const r = await runSmart(['sandbox', '--port', '0', '--quirks', 'no-grant-types,nope']);
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
      const r = await runSmart(['discover', fhirUrl, '-o', 'json']);
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
    const r = await runSmart(['discover', sandbox.fhirUrl, '-o', 'table']);
    expect(r.exitCode).toBe(0);
    expect(r.stderr.trim().split('\n')).toEqual([
      'warning: grant_types_supported not advertised: client_credentials assumed, as client-confidential-asymmetric implies it',
      'warning: token_endpoint_auth_signing_alg_values_supported not advertised: RS384 or ES384 assumed, as SMART servers verify RS384 or ES384',
    ]);
    expect(r.stdout).toMatch(/^assumed\s+client_credentials: /m);
    expect(r.stdout).toMatch(/^assumed\s+signing algorithm: /m);
    const flow = await startFlow({ sandbox, clientId: 'quirk-disc' });
    try {
      const t = await runSmart(['token'], { ws: flow.ws, env: flow.env });
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
    const t = await runSmart(['token', '-o', 'json'], { ws: flow.ws, env: flow.env });
    expect(t.exitCode).toBe(0);
    expect(json<{ token_type: string }>(t).token_type).toBe('bearer');
    const q = await runSmart(['query', 'Patient', '_count=1', '-o', 'json'], {
      ws: flow.ws,
      env: flow.env,
    });
    expect(q.stderr).toBe('');
    expect(q.exitCode).toBe(0);
  });
});

describe('export and token quirks', () => {
  let flow: Flow;
  // The sandbox's clock, which the kick-off test shares with the CLI: waits move it.
  const clock = testClock();
  beforeAll(async () => {
    flow = await startFlow({
      clientId: 'quirk-export',
      sandbox: { quirks: ['kickoff-429', 'invalid-grant'], exportDelayMs: 0, now: clock.now },
    });
  });
  afterAll(async () => {
    await flow?.close();
  });

  test('kickoff-429 (epoch Retry-After in s, then ms): waits twice with the server text, then exports', async () => {
    const dir = join(tempDir('smart-quirk-'), 'out');
    const r = await runSmart(['export', '--type', 'Patient', '--out', dir, '-o', 'json'], {
      ws: flow.ws,
      env: flow.env,
      clock,
    });
    expect(r.stderr).not.toContain('error:');
    expect(r.exitCode).toBe(0);
    expect(clock.waits).toHaveLength(2);
    for (const ms of clock.waits) expect(ms).toBeLessThanOrEqual(2000);
    const waits = r.stderr.split('\n').filter((l) => l.includes('waiting'));
    expect(waits).toHaveLength(2);
    for (const w of waits) {
      expect(w).toContain('Too many requests');
      // An epoch time is a time, not 1.9 billion seconds: the wait is about a second.
      expect(w).toMatch(/waiting [0-2](\.\d)? ?s:/);
    }
    const kickoffs = flow.sandbox.requests.filter((q) => q.path.startsWith('/fhir/$export?'));
    expect(kickoffs.map((q) => q.status)).toEqual([429, 429, 202]);
  });

  test('--output-format other than NDJSON: exit 2 before any request', async () => {
    const before = flow.sandbox.requests.length;
    const dir = join(tempDir('smart-quirk-'), 'out');
    const r = await runSmart(['export', '--output-format', 'text/csv', '--out', dir], {
      ws: flow.ws,
      env: flow.env,
    });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('error: --output-format "text/csv" is not one smart can save');
    expect(r.stderr).toContain('application/fhir+ndjson, application/ndjson, ndjson');
    expect(flow.sandbox.requests.length).toBe(before);
  });

  test('invalid-grant for an unknown kid: the same kid/JWKS hint as invalid_client', async () => {
    const other = await makeKey('RS384');
    const r = await runSmart(['token', '--no-cache'], {
      ws: flow.ws,
      env: { ...flow.env, SMART_KEY: other.keyFile },
    });
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toContain('invalid_grant: No public keys found in the JWKS with kid');
    expect(r.stderr).toContain(`hint: the server could not verify the assertion: does`);
    expect(r.stderr).toContain(`serve kid ${other.kid}`);
  });

  test('smart api GET /metadata: the leading method word is the method', async () => {
    const r = await runSmart(['api', 'GET', '/metadata'], { ws: flow.ws, env: flow.env });
    expect(r.exitCode).toBe(0);
    expect(JSON.parse(r.stdout).resourceType).toBe('CapabilityStatement');
    const bad = await runSmart(['api', 'Patient', 'Observation'], { ws: flow.ws, env: flow.env });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('-X GET');
  });
});

describe('error-counts', () => {
  let flow: Flow;
  beforeAll(async () => {
    flow = await startFlow({
      clientId: 'quirk-errors',
      sandbox: { quirks: ['error-counts'], exportDelayMs: 0 },
    });
  });
  afterAll(async () => {
    await flow?.close();
  });

  test("an error[] count that is not the file's lines: fetched once, one warning, exit 1; a resume fetches nothing", async () => {
    const dir = join(tempDir('smart-quirk-'), 'out');
    const r = await runSmart(['export', '--type', 'Patient', '--out', dir, '-o', 'json'], {
      ws: flow.ws,
      env: flow.env,
    });
    expect(r.exitCode, r.stderr).toBe(1);
    const patients = flow.sandbox.counts.Patient!;
    const warnings = r.stderr.split('\n').filter((l) => l.startsWith('warning:'));
    expect(warnings).toEqual([
      `warning: error/OperationOutcome.000.ndjson: the manifest's error[] count is ${patients}, the file holds 1 OperationOutcome (kept as sent, not downloaded again)`,
    ]);
    expect(r.stderr).not.toContain('retry');
    expect(r.stderr).toContain(
      'error: the export finished with errors: the server reported 1 OperationOutcome in error[], and its error[] counts do not match the files',
    );
    expect(r.stderr).not.toContain('--resume');
    const s = json<{
      errorCount: number;
      mismatches: unknown[];
      errorCountMismatches: Array<{ file: string; expected: number; actual: number }>;
      resourcesByType: Record<string, number>;
    }>(r);
    expect(s.resourcesByType).toEqual({ Patient: patients });
    expect(s.mismatches).toEqual([]);
    expect(s.errorCountMismatches).toEqual([
      { file: 'error/OperationOutcome.000.ndjson', expected: patients, actual: 1 },
    ]);
    const isErrorGet = (q: { path: string }) =>
      /^\/fhir\/\$export-file\/[^/]+\/errors-/.test(q.path);
    const errorGets = () => flow.sandbox.requests.filter(isErrorGet);
    // Logged once its response ends, which can be a moment after the CLI has exited.
    await flow.sandbox.logged(isErrorGet);
    expect(errorGets().map((q) => [q.method, q.status])).toEqual([['GET', 200]]);

    const again = await runSmart(['export', '--resume', dir, '-o', 'json'], {
      ws: flow.ws,
      env: flow.env,
    });
    expect(again.exitCode, again.stderr).toBe(1);
    expect(again.stderr).toContain('error: the export finished with errors');
    expect(errorGets()).toHaveLength(1);
  });
});
