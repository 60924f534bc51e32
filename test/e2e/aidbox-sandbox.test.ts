/**
 * The sandbox where it behaves like Aidbox, and the client on those behaviours: one export at a
 * time for the whole server, the "storage not configured" 500, gzip NDJSON, the manifest's
 * "status": "completed".
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { json, runSmart } from '../helpers/cli.js';
import { startFlow, type Flow } from '../helpers/sandbox.js';
import { tempDir } from '../helpers/tmp.js';

let flow: Flow;
beforeAll(async () => {
  flow = await startFlow({
    clientId: 'aidbox-like',
    // As Aidbox with cloud storage: files pre-signed on another origin, requiresAccessToken false.
    sandbox: { generate: 30, exportFileSize: 40, exportDelayMs: 0, exportSignedStorage: true },
  });
});
afterAll(async () => {
  await flow?.close();
});

interface Summary {
  resources: number;
  files: { file: string; kind: string; type: string; resources: number; bytes: number }[];
  mismatches: unknown[];
}

describe('$export as on Aidbox', () => {
  test('_outputFormat application/fhir+ndjson+gzip: .ndjson.gz kept byte-exact, lines counted through gunzip', async () => {
    const dir = join(tempDir('smart-gzip-'), 'out');
    const r = await runSmart(
      [
        'export',
        '--type',
        'Patient,Observation',
        '--output-format',
        'application/fhir+ndjson+gzip',
        '--out',
        dir,
      ],
      { env: flow.env },
    );
    expect(r.exitCode, r.stderr).toBe(0);
    const summary = json<Summary>(r);
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as {
      status: string;
      output: { type: string; url: string; count: number }[];
    };
    expect(manifest.status).toBe('completed');
    const outputs = summary.files.filter((f) => f.kind === 'output');
    expect(outputs.length).toBe(manifest.output.length);
    outputs.forEach((f, i) => {
      expect(f.file).toMatch(/\.ndjson\.gz$/);
      const raw = readFileSync(join(dir, f.file));
      // Kept as the server sent it: gzip magic, and the bytes reported are the file's.
      expect([raw[0], raw[1]]).toEqual([0x1f, 0x8b]);
      expect(f.bytes).toBe(raw.length);
      const lines = gunzipSync(raw).toString('utf8').trim().split('\n');
      expect(lines.length).toBe(manifest.output[i]!.count);
      expect(f.resources).toBe(lines.length);
    });
    expect(summary.resources).toBe(flow.sandbox.counts.Patient! + flow.sandbox.counts.Observation!);
    expect(summary.mismatches).toEqual([]);
    expect(readdirSync(dir).filter((n) => n.endsWith('.part'))).toEqual([]);
  });

  test('one export at a time for the whole server: another client gets 429, and the message does not blame it', async () => {
    const busy = await startFlow({ clientId: 'busy-a', sandbox: { exportDelayMs: 3_600_000 } });
    const other = await startFlow({ clientId: 'busy-b', sandbox: busy.sandbox });
    try {
      const first = await runSmart(
        ['export', '--type', 'Patient', '--wait', '1', '--out', join(tempDir('a-'), 'o')],
        { env: busy.env },
      );
      // The first export is accepted and still running when its --wait runs out (exit 4).
      expect(first.exitCode, first.stderr).toBe(4);
      const r = await runSmart(
        ['export', '--type', 'Patient', '--wait', '2', '--out', join(tempDir('b-'), 'o')],
        { env: other.env },
      );
      expect(r.exitCode).not.toBe(0);
      expect(r.stderr).toContain('answered 429');
      expect(r.stderr).not.toContain('for this client');
    } finally {
      await other.close();
      await busy.close();
    }
  });

  test('no storage configured: 500 "storage-type not specified", exit 1', async () => {
    const bare = await startFlow({ clientId: 'no-storage', sandbox: { exportStorage: false } });
    try {
      const r = await runSmart(
        ['export', '--type', 'Patient', '--out', join(tempDir('ns-'), 'o')],
        {
          env: bare.env,
        },
      );
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toMatch(/answered 500: .*storage-type not specified/);
    } finally {
      await bare.close();
    }
  });
});
