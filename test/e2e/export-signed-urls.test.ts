import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { json, runSmart } from '../helpers/cli.js';
import { startFlow } from '../helpers/sandbox.js';
import { tempDir } from '../helpers/tmp.js';

interface Summary {
  requiresAccessToken: boolean;
  files: Array<{ kind: string; type: string; file: string; resources: number }>;
  resourcesByType: Record<string, number>;
}

interface Manifest {
  requiresAccessToken: boolean;
  output: Array<{ type: string; url: string; count?: number }>;
  error: Array<{ type: string; url: string; count?: number }>;
}

const outDir = () => join(tempDir('smart-export-signed-'), 'out');

function lineCount(path: string): number {
  return readFileSync(path, 'utf8').split('\n').filter(Boolean).length;
}

describe('smart export: a server whose files need no token (requiresAccessToken: false)', () => {
  it('downloads every file from its pre-signed URL without the token; kick-off and polls carry it', async () => {
    const flow = await startFlow({
      sandbox: {
        generate: 100,
        exportFileSize: 200,
        exportDelayMs: 300,
        // One 202 poll whatever the machine's load: the test checks that polls carry the token.
        exportMinPolls: 1,
        exportRequiresAccessToken: false,
      },
    });
    try {
      const dir = outDir();
      const r = await runSmart(
        ['export', '--type', 'Patient,Observation,NoSuchType', '--parallel', '3', '--out', dir],
        { ws: flow.ws, env: flow.env },
      );
      expect(r.exitCode, r.stderr).toBe(0);
      const s = json<Summary>(r);
      expect(s.requiresAccessToken).toBe(false);
      expect(s.resourcesByType).toEqual({
        Patient: flow.sandbox.counts.Patient,
        Observation: flow.sandbox.counts.Observation,
      });

      const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
      expect(manifest.requiresAccessToken).toBe(false);
      const entries = [...manifest.output, ...manifest.error];
      expect(manifest.error).toHaveLength(1);
      for (const e of entries) expect(new URL(e.url).searchParams.get('sig')).toBeTruthy();
      const outputs = s.files.filter((f) => f.kind === 'output');
      expect(outputs).toHaveLength(manifest.output.length);
      outputs.forEach((f, i) => {
        expect(lineCount(join(dir, f.file)), f.file).toBe(manifest.output[i]!.count);
      });
      expect(readdirSync(dir).filter((n) => n.endsWith('.part'))).toEqual([]);

      const log = flow.sandbox.requests;
      const isFile = (q: { path: string }) => q.path.startsWith('/fhir/$export-file/');
      const fileRequests = () => log.filter(isFile);
      // The sandbox logs a request once its response is finished: a moment after the CLI exits.
      await flow.sandbox.logged(isFile, entries.length);
      const files = fileRequests();
      expect(files).toHaveLength(entries.length);
      expect(files.every((q) => q.method === 'GET' && q.status === 200)).toBe(true);
      expect(files.filter((q) => q.authorization)).toEqual([]);
      // The signature is the credential: the sandbox logs it masked.
      expect(files.every((q) => /[?&]sig=\*\*\*/.test(q.path))).toBe(true);

      const kick = log.filter((q) => q.path.startsWith('/fhir/$export?'));
      const polls = log.filter((q) => q.path.startsWith('/fhir/$export-status/'));
      expect(kick).toHaveLength(1);
      expect(kick[0]).toMatchObject({ status: 202, authorization: true });
      expect(polls.length).toBeGreaterThanOrEqual(2); // at least one 202, then the manifest
      expect(polls.map((q) => q.status)).toContain(202);
      expect(polls.at(-1)!.status).toBe(200);
      expect(polls.every((q) => q.authorization)).toBe(true);
      // No token, and no signature, on the terminal.
      expect(r.stderr + r.stdout).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}/);
      for (const e of entries) {
        expect(r.stderr + r.stdout).not.toContain(new URL(e.url).searchParams.get('sig'));
      }
    } finally {
      await flow.close();
    }
  });
});

describe('smart export against Aidbox-like storage: pre-signed file URLs on another origin', () => {
  it('fetches every file from the storage origin without the token; the storage enforces the signature', async () => {
    // The sandbox's clock, to move past the URLs' expiry without waiting.
    let ahead = 0;
    const flow = await startFlow({
      sandbox: {
        generate: 30,
        exportFileSize: 40,
        exportDelayMs: 0,
        exportSignedStorage: true,
        now: () => Date.now() + ahead,
      },
    });
    try {
      const storage = flow.sandbox.storageUrl!;
      expect(new URL(storage).origin).not.toBe(new URL(flow.sandbox.url).origin);
      const dir = outDir();
      const r = await runSmart(['export', '--type', 'Patient,Observation', '--out', dir], {
        ws: flow.ws,
        env: flow.env,
      });
      expect(r.exitCode, r.stderr).toBe(0);
      const s = json<Summary>(r);
      expect(s.requiresAccessToken).toBe(false);
      expect(s.resourcesByType).toEqual({
        Patient: flow.sandbox.counts.Patient,
        Observation: flow.sandbox.counts.Observation,
      });
      const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
      expect(manifest.requiresAccessToken).toBe(false);
      expect(manifest.output.length).toBeGreaterThan(2);
      for (const e of manifest.output) {
        expect(new URL(e.url).origin).toBe(storage);
        expect(new URL(e.url).searchParams.get('sig')).toBeTruthy();
      }

      const log = flow.sandbox.requests;
      const isStored = (q: { path: string }) => q.path.startsWith('/exports/');
      const stored = () => log.filter(isStored);
      await flow.sandbox.logged(isStored, manifest.output.length);
      expect(stored()).toHaveLength(manifest.output.length);
      expect(stored().every((q) => q.method === 'GET' && q.status === 200)).toBe(true);
      // Another origin, requiresAccessToken false: the token never goes there.
      expect(stored().filter((q) => q.authorization)).toEqual([]);
      expect(log.filter((q) => q.path.startsWith('/fhir/$export-file/'))).toEqual([]);

      // The signature is enforced: tampered, missing or expired, the storage answers 403.
      const url = new URL(manifest.output[0]!.url);
      expect((await fetch(url)).status).toBe(200);
      const tampered = new URL(url);
      const sig = tampered.searchParams.get('sig')!;
      tampered.searchParams.set('sig', (sig[0] === 'A' ? 'B' : 'A') + sig.slice(1));
      expect((await fetch(tampered)).status).toBe(403);
      const later = new URL(url);
      later.searchParams.set('exp', String(Number(url.searchParams.get('exp')) + 3600));
      expect((await fetch(later)).status).toBe(403);
      const unsigned = new URL(url.pathname, storage);
      const token = await runSmart(['token'], { ws: flow.ws, env: flow.env });
      const withToken = await fetch(unsigned, {
        headers: { authorization: `Bearer ${token.stdout.trim()}` },
      });
      expect(withToken.status).toBe(403);
      ahead = 2 * 3600 * 1000;
      const expired = await fetch(url);
      expect(expired.status).toBe(403);
      expect(await expired.text()).toContain('expired');
    } finally {
      await flow.close();
    }
  });
});
