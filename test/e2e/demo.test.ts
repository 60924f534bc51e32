import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { createServer } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, json, makeWorkspace, runSmart } from '../helpers/cli.js';
import { streamText } from '../helpers/wait.js';

interface Bundle {
  resourceType: string;
  type: string;
  entry: Array<{ resource: { resourceType: string; code: { coding: Array<{ code: string }> } } }>;
}

const JWT_IN_CLEAR = /eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\./;

describe('smart demo', () => {
  it('runs every step of the walkthrough and prints the Observations (-o json)', async () => {
    const ws = makeWorkspace();
    const r = await runSmart(['demo', '-o', 'json'], { ws });
    expect(r.exitCode, r.stderr).toBe(0);
    for (let n = 1; n <= 6; n++) expect(r.stderr).toContain(`[${n}/6]`);
    expect(r.stderr).toContain('$ smart register-client demo-client --jwks-uri http://127.0.0.1:');
    expect(r.stderr).toContain('201 created');
    expect(r.stderr).toContain('$ smart query Observation code=4548-4 _count=2');
    expect(r.stderr).toContain('the whole SMART Backend Services flow works');
    // Secrets are shortened, never printed whole.
    expect(r.stderr).not.toMatch(JWT_IN_CLEAR);
    const bundle = json<Bundle>(r);
    expect(bundle.resourceType).toBe('Bundle');
    expect(bundle.type).toBe('searchset');
    expect(bundle.entry).toHaveLength(2);
    for (const e of bundle.entry) {
      expect(e.resource.resourceType).toBe('Observation');
      expect(e.resource.code.coding[0]!.code).toBe('4548-4');
    }
  });

  it('ends with the Observation table, even when piped (a walkthrough is for a person)', async () => {
    const r = await runSmart(['demo'], { env: { COLUMNS: '160' } });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('Hemoglobin A1c');
    expect(r.stdout).toMatch(/│ id\s+│ date/);
    expect((await runSmart(['demo', '--json'])).stdout).toMatch(/^\{"resourceType":"Bundle"/);
  });

  it('names the step that failed', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const r = await runSmart(['demo', '--port', String(port)]);
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toMatch(/error: demo step 1 \(start the sandbox\) failed: .*in use/);
      expect(r.stderr.split('\n').filter((l) => l.startsWith('error:'))).toHaveLength(1);
    } finally {
      blocker.close();
    }
  });

  it('--keep leaves the servers up with a ready profile, and Ctrl-C stops them', async () => {
    const ws = makeWorkspace();
    const child = execa(process.execPath, [BIN, 'demo', '--keep'], {
      env: { PATH: process.env.PATH, NO_COLOR: '1', ...ws.env },
      extendEnv: false,
      reject: false,
      stdin: 'ignore',
    });
    const stderr = streamText(child.stderr!);
    await stderr.until('Press Ctrl-C to stop.');
    const config = JSON.parse(readFileSync(join(ws.config, 'smart', 'config.json'), 'utf8')) as {
      profiles: Record<string, Record<string, string>>;
    };
    expect(config.profiles.demo).toMatchObject({ clientId: 'demo-client' });
    expect(config.profiles.demo!.baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    const q = await runSmart(['--profile', 'demo', 'query', 'Patient', '-o', 'json'], { ws });
    expect(q.exitCode, q.stderr).toBe(0);
    expect(json<{ resourceType: string }>(q).resourceType).toBe('Bundle');
    // The sandbox logs the request the other command made (as its response ends).
    await stderr.until(/sandbox: GET \/fhir\/Patient.* 200 /);

    child.kill('SIGINT');
    const done = await child;
    expect(done.exitCode).toBe(0);
    expect(stderr() + String(done.stderr ?? '')).toContain('stopping the demo servers');
  });
});
