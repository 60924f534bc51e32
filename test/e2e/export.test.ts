import { execa } from 'execa';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SandboxOptions } from '../../src/sandbox/index.js';
import { BIN, json, runSmart, testClock, type RunResult } from '../helpers/cli.js';
import { startFlow, type Flow } from '../helpers/sandbox.js';
import { tempDir } from '../helpers/tmp.js';
import { streamText } from '../helpers/wait.js';

// Small exports: 100 generated patients (about 1,250 resources), 200 resources per file.
const DATA: SandboxOptions = { generate: 100, exportFileSize: 200, exportDelayMs: 0 };

interface Summary {
  outDir: string;
  transactionTime: string;
  files: Array<{ kind: string; type: string; file: string; resources: number; bytes: number }>;
  resourcesByType: Record<string, number>;
  resources: number;
  bytes: number;
  durationMs: number;
  errors: Array<{ file: string; severity?: string; code?: string; diagnostics?: string }>;
  errorCount: number;
  downloaded: number;
  skipped: number;
}

interface Manifest {
  transactionTime: string;
  requiresAccessToken: boolean;
  output: Array<{ type: string; url: string; count?: number }>;
  error: Array<{ type: string; url: string; count?: number }>;
}

const outDir = () => join(tempDir('smart-export-e2e-'), 'out');

function ndjsonLines(path: string): Array<Record<string, unknown>> {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Every output file holds the manifest's count, in the order of the manifest. */
function checkAgainstManifest(dir: string, summary: Summary) {
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
  const outputs = summary.files.filter((f) => f.kind === 'output');
  expect(outputs.map((f) => f.type)).toEqual(manifest.output.map((e) => e.type));
  outputs.forEach((f, i) => {
    const lines = ndjsonLines(join(dir, f.file));
    expect(lines.length, f.file).toBe(manifest.output[i]!.count);
    expect(f.resources).toBe(lines.length);
    expect(lines.every((r) => r.resourceType === f.type)).toBe(true);
  });
  expect(readdirSync(dir).filter((n) => n.endsWith('.part'))).toEqual([]);
  return manifest;
}

function fileRequests(flow: Flow, from = 0): string[] {
  return flow.sandbox.requests
    .slice(from)
    .filter((r) => r.path.includes('/$export-file/') && r.method === 'GET')
    .map((r) => r.path.split('/').pop()!);
}

describe('smart export', () => {
  let flow: Flow;
  beforeAll(async () => {
    flow = await startFlow({ sandbox: DATA });
  });
  afterAll(async () => {
    await flow?.close();
  });
  const run = (args: string[]): Promise<RunResult> =>
    runSmart(args, { ws: flow.ws, env: flow.env });

  it('system level, GET, _type: every file whole, as many resources as the sandbox has', async () => {
    const dir = outDir();
    const r = await run(['export', '--type', 'Patient,Observation', '--out', dir]);
    expect(r.exitCode, r.stderr).toBe(0);
    const s = json<Summary>(r);
    expect(s.outDir).toBe(dir);
    expect(s.resourcesByType).toEqual({
      Patient: flow.sandbox.counts.Patient,
      Observation: flow.sandbox.counts.Observation,
    });
    expect(s.files.map((f) => f.file)).toContain('Observation.000.ndjson');
    expect(s.files.map((f) => f.file)).toContain('Patient.000.ndjson');
    checkAgainstManifest(dir, s);
    const ids = s.files.flatMap((f) => ndjsonLines(join(dir, f.file)).map((x) => x.id));
    expect(new Set(ids).size).toBe(ids.length);
    // The -o json summary: bytes per file and in all, resources, duration, errors.
    for (const f of s.files) expect(f.bytes, f.file).toBe(statSync(join(dir, f.file)).size);
    expect(s.bytes).toBe(s.files.reduce((a, f) => a + f.bytes, 0));
    expect(s.resources).toBe(ids.length);
    expect(s.durationMs).toBeGreaterThan(0);
    expect(s.errors).toEqual([]);
    expect(s.errorCount).toBe(0);
    const state = JSON.parse(readFileSync(join(dir, 'export.json'), 'utf8'));
    expect(state).toMatchObject({
      version: 1,
      status: 'complete',
      kickoff: { method: 'GET', params: { types: ['Patient', 'Observation'] } },
      transactionTime: s.transactionTime,
    });
    expect(state.statusUrl).toMatch(/\/fhir\/\$export-status\//);
    // Not a TTY: plain progress lines on stderr.
    expect(r.stderr).toMatch(/^kick-off: GET http:\/\/127\.0\.0\.1:\d+\/fhir\/\$export\?_type=/m);
    expect(r.stderr).toMatch(/^downloaded Patient\.000\.ndjson: \d+ resources/m);
    expect(r.stderr).toContain(`transactionTime ${s.transactionTime}: use it as the next --since`);
    expect(r.stderr + r.stdout).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}/); // no token anywhere
  });

  it('Patient level, POST with a Parameters body, _since', async () => {
    const since = '2024-06-01T00:10:00Z';
    const dir = outDir();
    const r = await run([
      'export',
      '--patient',
      '--post',
      '--type',
      'Observation',
      '--since',
      since,
      '--out',
      dir,
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    const s = json<Summary>(r);
    const all = s.files.flatMap((f) => ndjsonLines(join(dir, f.file)));
    expect(all.length).toBeGreaterThan(0);
    expect(all.length).toBeLessThan(flow.sandbox.counts.Observation!);
    for (const o of all) {
      expect(Date.parse((o.meta as { lastUpdated: string }).lastUpdated)).toBeGreaterThan(
        Date.parse(since),
      );
    }
    checkAgainstManifest(dir, s);
    const kick = flow.sandbox.requests.filter(
      (q) => q.method === 'POST' && q.path === '/fhir/Patient/$export',
    );
    expect(kick.at(-1)?.status).toBe(202);
    expect(JSON.parse(readFileSync(join(dir, 'export.json'), 'utf8')).kickoff.method).toBe('POST');
  });

  it('Group level: only the members of the Group', async () => {
    const dir = outDir();
    const r = await run(['export', '--group', 'gen-cohort', '--type', 'Patient', '--out', dir]);
    expect(r.exitCode, r.stderr).toBe(0);
    const s = json<Summary>(r);
    const ids = s.files.flatMap((f) => ndjsonLines(join(dir, f.file)).map((p) => p.id)).sort();
    const expected = Array.from({ length: 10 }, (_, i) => `gen-pat-${i * 10 + 1}`).sort();
    expect(ids).toEqual(expected);
    expect(
      flow.sandbox.requests.some((q) => q.path.startsWith('/fhir/Group/gen-cohort/$export')),
    ).toBe(true);
  });

  it('_typeFilter narrows a type', async () => {
    const dir = outDir();
    const r = await run([
      'export',
      '--type',
      'Observation',
      '--type-filter',
      'Observation?code=4548-4',
      '--out',
      dir,
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    const s = json<Summary>(r);
    const obs = s.files.flatMap((f) => ndjsonLines(join(dir, f.file)));
    // One HbA1c per generated encounter (two per patient), plus those of the shipped fixtures.
    expect(obs.length).toBeGreaterThanOrEqual(200);
    expect(obs.length).toBeLessThan(flow.sandbox.counts.Observation!);
    expect(obs.every((o) => JSON.stringify(o.code).includes('4548-4'))).toBe(true);
    checkAgainstManifest(dir, s);
  });

  it('a manifest with error[] entries: saved under error/ and summarized', async () => {
    const dir = outDir();
    const r = await run(['export', '--type', 'Patient,NoSuchType', '--out', dir]);
    expect(r.exitCode, r.stderr).toBe(0);
    const s = json<Summary>(r);
    expect(s.errorCount).toBe(1);
    expect(s.errors[0]).toMatchObject({
      file: 'error/OperationOutcome.000.ndjson',
      code: 'not-supported',
      diagnostics: expect.stringContaining('NoSuchType'),
    });
    expect(existsSync(join(dir, 'error', 'OperationOutcome.000.ndjson'))).toBe(true);
    expect(s.resourcesByType).toEqual({ Patient: flow.sandbox.counts.Patient });
    expect(r.stderr).toMatch(
      /the server reported 1 OperationOutcome in 1 error file:\n {2}error not-supported: .*NoSuchType/,
    );
  });

  it('-o ndjson prints the typed events', async () => {
    const dir = outDir();
    const r = await run(['export', '--type', 'Patient', '--out', dir, '-o', 'ndjson']);
    expect(r.exitCode, r.stderr).toBe(0);
    const events = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string; summary?: Summary });
    const names = events.map((e) => e.event).filter((n) => n !== 'status' && n !== 'file-progress');
    expect(names).toEqual([
      'kickoff',
      'accepted',
      'manifest',
      'file-start',
      'file-done',
      'complete',
    ]);
    expect(events.at(-1)!.summary!.resourcesByType).toEqual({
      Patient: flow.sandbox.counts.Patient,
    });
    expect(r.stderr).toBe('');
  });

  it('usage errors exit 2 and name the thing', async () => {
    const bad = await run(['export', '--since', '2024-06-01']);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('--since "2024-06-01" is not a FHIR instant');

    const full = tempDir('smart-export-full-');
    writeFileSync(join(full, 'notes.txt'), 'x');
    const nonEmpty = await run(['export', '--out', full]);
    expect(nonEmpty.exitCode).toBe(2);
    expect(nonEmpty.stderr).toContain(`--out ${full} is not empty`);

    const both = await run(['export', '--group', 'g', '--patient']);
    expect(both.exitCode).toBe(2);

    const resumeFlags = await run(['export', '--resume', full, '--type', 'Patient']);
    expect(resumeFlags.exitCode).toBe(2);
    expect(resumeFlags.stderr).toContain('--type cannot be changed');

    const notExport = await run(['export', '--resume', full]);
    expect(notExport.exitCode).toBe(2);
    expect(notExport.stderr).toContain('is not an export directory');

    const empty = tempDir('smart-export-empty-');
    mkdirSync(join(empty, 'sub'));
    const emptyOk = await run(['export', '--type', 'Patient', '--out', join(empty, 'sub')]);
    expect(emptyOk.exitCode, emptyOk.stderr).toBe(0);
  });

  it('a 403 on kick-off exits 3', async () => {
    const narrow = await startFlow({
      sandbox: flow.sandbox,
      clientId: 'narrow',
      scope: 'system/Patient.read',
    });
    try {
      const r = await runSmart(['export', '--type', 'Observation', '--out', outDir()], {
        ws: narrow.ws,
        env: { ...narrow.env, SMART_SCOPE: 'system/Patient.read' },
      });
      expect(r.exitCode, r.stderr).toBe(3);
      expect(r.stderr).toMatch(/error: access denied: GET .*\$export/);
    } finally {
      await narrow.close();
    }
  });
});

describe('smart export against a flaky server', () => {
  it('waits through 429 and 503 with Retry-After while polling', async () => {
    // One clock for the sandbox and the CLI: the waits move it instead of taking time.
    const clock = testClock();
    const flow = await startFlow({
      sandbox: {
        ...DATA,
        now: clock.now,
        exportDelayMs: 300,
        faults: [
          {
            path: '/fhir/$export-status',
            method: 'GET',
            nth: [2, 3],
            action: { status: 429, retryAfter: '1' },
          },
          {
            path: '/fhir/$export-status',
            method: 'GET',
            nth: [4],
            action: { status: 503, retryAfter: '1' },
          },
        ],
      },
    });
    try {
      const dir = outDir();
      const r = await runSmart(['export', '--type', 'Patient', '--out', dir], {
        ws: flow.ws,
        env: flow.env,
        clock,
      });
      expect(r.exitCode, r.stderr).toBe(0);
      const polls = flow.sandbox.requests.filter((q) => q.path.startsWith('/fhir/$export-status/'));
      expect(polls.map((q) => q.status)).toEqual([202, 429, 429, 503, 200]);
      expect(clock.waits).toEqual([1000, 1000, 1000, 1000]);
      expect(r.stderr).toMatch(/^status: in progress: \d+%/m);
      expect(r.stderr).toMatch(/^waiting 1\.0 s: the server asked to slow down \(429\)/m);
      expect(r.stderr).toMatch(/^waiting 1\.0 s: transient server error 503/m);
      checkAgainstManifest(dir, json<Summary>(r));
    } finally {
      await flow.close();
    }
  });

  it('a connection dropped in the middle of a file: the file still arrives whole', async () => {
    const flow = await startFlow({
      sandbox: {
        ...DATA,
        faults: [{ path: '/fhir/$export-file', nth: [1, 3], action: { drop: 'mid-body' } }],
      },
    });
    try {
      const dir = outDir();
      const r = await runSmart(['export', '--type', 'Patient,Observation', '--out', dir], {
        ws: flow.ws,
        env: flow.env,
      });
      expect(r.exitCode, r.stderr).toBe(0);
      const s = json<Summary>(r);
      checkAgainstManifest(dir, s);
      expect(s.resourcesByType).toEqual({
        Patient: flow.sandbox.counts.Patient,
        Observation: flow.sandbox.counts.Observation,
      });
      expect(flow.sandbox.requests.filter((q) => q.fault === 'drop')).toHaveLength(2);
      expect(
        r.stderr.match(/^retrying .* \(attempt 2\).*connection broke off after \d+ bytes/gm),
      ).toHaveLength(2);
    } finally {
      await flow.close();
    }
  });

  it('Ctrl-C stops cleanly; --resume fetches only what is missing, nothing twice', async () => {
    const flow = await startFlow({
      sandbox: {
        ...DATA,
        // The 3rd and 4th file requests hang long enough to be interrupted.
        faults: [{ path: '/fhir/$export-file', nth: [3, 4], action: { delayMs: 20_000 } }],
      },
    });
    try {
      const dir = outDir();
      const child = execa(
        process.execPath,
        [BIN, 'export', '--type', 'Patient,Observation', '--parallel', '2', '--out', dir],
        {
          env: { PATH: process.env.PATH, NO_COLOR: '1', ...flow.ws.env, ...flow.env },
          extendEnv: false,
          reject: false,
          cwd: flow.ws.home,
          stdin: 'ignore',
          timeout: 30_000,
        },
      );
      const stderr = streamText(child.stderr!);
      await stderr.until((t) => (t.match(/^downloaded /gm) ?? []).length >= 2);
      // The two hanging requests start as soon as the first two files are done: both are at the
      // sandbox, in their delay, before Ctrl-C.
      await flow.sandbox.received((q) => q.fault === 'delay', 2);
      child.kill('SIGINT');
      const first = await child;
      expect(first.exitCode, String(first.stderr)).toBe(130);
      expect(first.stderr).toContain(`to resume: smart export --resume ${dir}`);
      const state = JSON.parse(readFileSync(join(dir, 'export.json'), 'utf8')) as {
        status: string;
        files: Array<{ name: string; url: string; status: string }>;
      };
      const done = state.files.filter((f) => f.status === 'done');
      expect(done).toHaveLength(2);
      expect(state.files.length).toBeGreaterThan(2);
      expect(readdirSync(dir).filter((n) => n.endsWith('.part'))).toEqual([]);

      const mark = flow.sandbox.requests.length;
      const r = await runSmart(['export', '--resume', dir], { ws: flow.ws, env: flow.env });
      expect(r.exitCode, r.stderr).toBe(0);
      const s = json<Summary>(r);
      expect(s.skipped).toBe(2);
      expect(s.downloaded).toBe(state.files.length - 2);
      // Nothing completed in the first run was fetched again, and nothing is missing.
      const again = fileRequests(flow, mark);
      const doneRemote = done.map((f) => f.url.split('/').pop()!);
      expect(again.filter((f) => doneRemote.includes(f))).toEqual([]);
      expect(new Set([...again, ...doneRemote]).size).toBe(state.files.length);
      expect(again).toHaveLength(state.files.length - 2);
      checkAgainstManifest(dir, s);
      expect(s.resourcesByType).toEqual({
        Patient: flow.sandbox.counts.Patient,
        Observation: flow.sandbox.counts.Observation,
      });
      // A finished export resumes to the same summary without asking the server anything.
      const mark2 = flow.sandbox.requests.length;
      const again2 = await runSmart(['export', '--resume', dir], { ws: flow.ws, env: flow.env });
      expect(again2.exitCode, again2.stderr).toBe(0);
      expect(json<Summary>(again2).skipped).toBe(state.files.length);
      expect(flow.sandbox.requests.slice(mark2).filter((q) => q.path.startsWith('/fhir/'))).toEqual(
        [],
      );
    } finally {
      await flow.close();
    }
  });

  it('--wait (or --timeout) gives up (exit 4, job kept); cancel sends DELETE; a second cancel finds nothing', async () => {
    const flow = await startFlow({ sandbox: { ...DATA, exportDelayMs: 120_000 } });
    try {
      const dir = outDir();
      const env = { ws: flow.ws, env: flow.env };
      const r = await runSmart(['export', '--type', 'Patient', '--wait', '1', '--out', dir], env);
      expect(r.exitCode, r.stderr).toBe(4);
      expect(r.stderr).toMatch(/error: the export is not complete after .* \(limit 1 s\)/);
      expect(r.stderr).toContain(`smart export cancel ${dir}`);

      const c = await runSmart(['export', 'cancel', dir, '-o', 'table'], env);
      expect(c.exitCode, c.stderr).toBe(0);
      expect(c.stdout).toBe('cancelled\n');
      const del = flow.sandbox.requests.filter((q) => q.method === 'DELETE');
      expect(del.map((q) => q.status)).toEqual([202]);
      expect(JSON.parse(readFileSync(join(dir, 'export.json'), 'utf8')).status).toBe('cancelled');

      const c2 = await runSmart(['export', 'cancel', dir], env);
      expect(c2.exitCode).toBe(1);
      expect(c2.stderr).toContain('no such export (already finished or cancelled)');

      const resumed = await runSmart(['export', '--resume', dir], env);
      expect(resumed.exitCode).toBe(2);
      expect(resumed.stderr).toContain('was cancelled');

      // Without --wait, the global --timeout bounds the whole job too.
      const t = await runSmart(
        ['export', '--type', 'Patient', '--timeout', '1', '--out', outDir()],
        env,
      );
      expect(t.exitCode, t.stderr).toBe(4);
      expect(t.stderr).toMatch(/error: the export is not complete after .* \(limit 1 s\)/);
    } finally {
      await flow.close();
    }
  });
});
