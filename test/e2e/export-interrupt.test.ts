import { execa } from 'execa';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RequestLogEntry } from '../../src/sandbox/index.js';
import { BIN, json, runSmart } from '../helpers/cli.js';
import { startFlow } from '../helpers/sandbox.js';
import { tempDir } from '../helpers/tmp.js';
import { streamText } from '../helpers/wait.js';

interface Summary {
  files: Array<{ kind: string; type: string; file: string; resources: number }>;
  resourcesByType: Record<string, number>;
  downloaded: number;
  skipped: number;
}

interface State {
  status: string;
  files: Array<{ name: string; url: string; status: string; count?: number }>;
}

interface Manifest {
  output: Array<{ type: string; url: string; count?: number }>;
}

const outDir = () => join(tempDir('smart-export-int-'), 'out');
const remoteName = (url: string) => new URL(url, 'http://x').pathname.split('/').pop()!;

function lineCount(path: string): number {
  return readFileSync(path, 'utf8').split('\n').filter(Boolean).length;
}

/** The sandbox's log of file downloads, by remote file name. */
function fileGets(requests: RequestLogEntry[]): Array<RequestLogEntry & { name: string }> {
  return requests
    .filter((r) => r.method === 'GET' && r.path.startsWith('/fhir/$export-file/'))
    .map((r) => ({ ...r, name: remoteName(r.path) }));
}

const complete = (r: RequestLogEntry) => r.status === 200 && !r.fault?.includes('aborted');

describe('smart export: Ctrl-C in the middle of a (slow) file download', () => {
  it('exits 130 with no .part left, prints the resume command; --resume completes, nothing twice', async () => {
    const flow = await startFlow({
      // 200 patients: 11 files of up to 200 resources, the Observation ones about 125 KB each.
      sandbox: {
        generate: 200,
        exportFileSize: 200,
        exportDelayMs: 0,
        // The first downloads of the first two Observation files (Observation-1 and -2 on the
        // server, the 3rd and 4th of the manifest) trickle at 16 KiB/s (about 8 s a file): in
        // flight at Ctrl-C, once the two Patient files are done. Named, not "the 3rd and 4th
        // requests": the two downloads that start together can reach the server in either
        // order, and a small Patient file was once the throttled one (done at once, so only
        // one file was ever in flight).
        faults: [
          {
            path: /^\/fhir\/\$export-file\/[^/]+\/Observation-[12]\.ndjson$/,
            method: 'GET',
            nth: [1, 2],
            action: { throttleBytesPerSec: 16 * 1024 },
          },
        ],
      },
    });
    try {
      const dir = outDir();
      const child = execa(
        process.execPath,
        // -o ndjson: the download events on stdout, to wait on.
        [
          BIN,
          'export',
          '--type',
          'Patient,Observation',
          '--parallel',
          '2',
          '--out',
          dir,
          '-o',
          'ndjson',
        ],
        {
          env: { PATH: process.env.PATH, NO_COLOR: '1', ...flow.ws.env, ...flow.env },
          extendEnv: false,
          reject: false,
          cwd: flow.ws.home,
          stdin: 'ignore',
          timeout: 60_000,
        },
      );
      const stderr = streamText(child.stderr!);
      const events = streamText(child.stdout!);

      // Wait for two files done and the two throttled ones half-way in: bytes of each have come
      // in (a file-progress event) and gone to its .part file.
      const progress = (text: string) => {
        const lines = text
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as { event: string; file: string; bytes?: number });
        const done = new Set(lines.filter((e) => e.event === 'file-done').map((e) => e.file));
        const moving = new Set(
          lines
            .filter((e) => e.event === 'file-progress' && e.bytes! > 0 && !done.has(e.file))
            .map((e) => e.file),
        );
        return { done, moving };
      };
      await events.until((t) => {
        const p = progress(t);
        return p.done.size >= 2 && p.moving.size >= 2;
      });
      const inFlight = [...progress(events()).moving];
      child.kill('SIGINT');
      const first = await child;
      expect(first.exitCode, stderr()).toBe(130);
      expect(first.stderr).toContain(`to resume: smart export --resume ${dir}`);

      // The server saw the two slow downloads cut off by the client.
      const isFileGet = (r: RequestLogEntry) =>
        r.method === 'GET' && r.path.startsWith('/fhir/$export-file/');
      await flow.sandbox.logged((r) => isFileGet(r) && r.fault === 'throttle,aborted', 2);
      const before = fileGets(flow.sandbox.requests);
      const cut = before.filter((r) => r.fault === 'throttle,aborted');
      expect(cut).toHaveLength(2);
      const completeBefore = before.filter(complete).map((r) => r.name);
      expect(completeBefore).toHaveLength(2);

      // Nothing half-written is left or taken for complete.
      expect(readdirSync(dir).filter((n) => n.endsWith('.part'))).toEqual([]);
      const state = JSON.parse(readFileSync(join(dir, 'export.json'), 'utf8')) as State;
      expect(state.files.length).toBe(11);
      for (const name of inFlight) {
        expect(existsSync(join(dir, name)), name).toBe(false);
        expect(state.files.find((f) => f.name === name)?.status, name).not.toBe('done');
      }
      const done = state.files.filter((f) => f.status === 'done');
      expect(done.map((f) => remoteName(f.url)).sort()).toEqual([...completeBefore].sort());
      for (const f of done) expect(lineCount(join(dir, f.name)), f.name).toBe(f.count);

      // Resume: only what is missing; every file whole.
      const mark = flow.sandbox.requests.length;
      const r = await runSmart(['export', '--resume', dir], { ws: flow.ws, env: flow.env });
      expect(r.exitCode, r.stderr).toBe(0);
      const s = json<Summary>(r);
      expect(s.skipped).toBe(2);
      expect(s.downloaded).toBe(9);
      // Each log entry follows its response: wait for the nine downloads'.
      await flow.sandbox.logged((r, i) => i >= mark && isFileGet(r), 9);
      const after = fileGets(flow.sandbox.requests.slice(mark));
      expect(after.filter((q) => completeBefore.includes(q.name))).toEqual([]);
      expect(after.every(complete)).toBe(true);
      expect(after).toHaveLength(9);
      expect(new Set([...after.map((q) => q.name), ...completeBefore]).size).toBe(11);
      for (const c of cut) expect(after.map((q) => q.name)).toContain(c.name);

      const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
      const final = JSON.parse(readFileSync(join(dir, 'export.json'), 'utf8')) as State;
      expect(final.status).toBe('complete');
      for (const m of manifest.output) {
        const f = final.files.find((x) => remoteName(x.url) === remoteName(m.url))!;
        expect(f.status).toBe('done');
        expect(lineCount(join(dir, f.name)), f.name).toBe(m.count);
      }
      expect(readdirSync(dir).filter((n) => n.endsWith('.part'))).toEqual([]);
      expect(s.resourcesByType).toEqual({
        Patient: flow.sandbox.counts.Patient,
        Observation: flow.sandbox.counts.Observation,
      });
    } finally {
      await flow.close();
    }
  }, 90_000);
});

describe('smart export: Ctrl-C while the server is still preparing the export', () => {
  it('exits 130, keeps export.json, says the job runs on; --resume re-attaches without a new kick-off', async () => {
    const flow = await startFlow({
      // In progress for two polls, however long they take (not for a time): the first run is
      // stopped after its first; the resume's first poll gets 202 too, then the manifest.
      sandbox: { generate: 10, exportFileSize: 200, exportDelayMs: 0, exportMinPolls: 2 },
    });
    try {
      const dir = outDir();
      const child = execa(process.execPath, [BIN, 'export', '--type', 'Patient', '--out', dir], {
        env: { PATH: process.env.PATH, NO_COLOR: '1', ...flow.ws.env, ...flow.env },
        extendEnv: false,
        reject: false,
        cwd: flow.ws.home,
        stdin: 'ignore',
        timeout: 30_000,
      });
      const stderr = streamText(child.stderr!);
      await stderr.until(/^status: /m);
      child.kill('SIGINT');
      const first = await child;
      expect(first.exitCode, stderr()).toBe(130);
      expect(first.stderr).toContain(
        `stopped: the job is still running on the server; its state is in ${join(dir, 'export.json')}`,
      );
      expect(first.stderr).toContain(`to resume: smart export --resume ${dir}`);
      const state = JSON.parse(readFileSync(join(dir, 'export.json'), 'utf8')) as State & {
        statusUrl: string;
      };
      expect(state.status).toBe('in-progress');

      const kickoffs = () =>
        flow.sandbox.requests.filter((q) => q.path.startsWith('/fhir/$export?')).length;
      const before = kickoffs();
      const r = await runSmart(['export', '--resume', dir], { ws: flow.ws, env: flow.env });
      expect(r.exitCode, r.stderr).toBe(0);
      expect(kickoffs()).toBe(before);
      expect(json<Summary>(r).resourcesByType).toEqual({ Patient: flow.sandbox.counts.Patient });
      expect(flow.sandbox.requests.some((q) => q.path === new URL(state.statusUrl).pathname)).toBe(
        true,
      );
    } finally {
      await flow.close();
    }
  }, 60_000);
});
