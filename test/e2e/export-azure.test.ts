import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RequestLogEntry } from '../../src/sandbox/index.js';
import { BIN, json, runSmart } from '../helpers/cli.js';
import { startFlow, type Flow } from '../helpers/sandbox.js';
import {
  AZURITE_ACCOUNT,
  AZURITE_KEY,
  startAzurite,
  whenOutput,
  type Azurite,
} from '../helpers/stores.js';

// An export into Azure Blob Storage, against Azurite (Microsoft's emulator, in memory, on a free
// port of 127.0.0.1). One 100k-resource export: Ctrl-C in the middle, then --resume.

interface Summary {
  outDir: string;
  destination: { kind: string; url: string };
  files: Array<{ kind: string; type: string; file: string; resources: number; bytes: number }>;
  resourcesByType: Record<string, number>;
  resources: number;
  downloaded: number;
  skipped: number;
}

interface State {
  status: string;
  statusUrl: string;
  files: Array<{ name: string; url: string; status: string; count?: number; bytes?: number }>;
}

const remoteName = (url: string) => new URL(url, 'http://x').pathname.split('/').pop()!;
const complete = (r: RequestLogEntry) => r.status === 200 && !r.fault?.includes('aborted');
const fileGet = (r: RequestLogEntry) =>
  r.method === 'GET' && r.path.startsWith('/fhir/$export-file/');
function fileGets(requests: RequestLogEntry[]): Array<RequestLogEntry & { name: string }> {
  return requests.filter(fileGet).map((r) => ({ ...r, name: remoteName(r.path) }));
}

// Blocks of 256 KiB: the bigger files (about 1 MB) take several blocks each.
const BLOCK = '256k';

describe('smart export --out az://container/prefix (Azurite)', () => {
  let azurite: Azurite;
  let flow: Flow;
  let blob: typeof import('@azure/storage-blob');
  let env: Record<string, string>;
  const container = () =>
    blob.BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(
      'exports',
    );
  const text = async (name: string) =>
    (await container().getBlockBlobClient(name).downloadToBuffer()).toString('utf8');
  const lines = (s: string) => s.split('\n').filter(Boolean).length;
  const blobs = async (prefix: string) => {
    const out = new Map<string, { bytes: number; meta: Record<string, string> }>();
    for await (const b of container().listBlobsFlat({ prefix, includeMetadata: true }))
      out.set(b.name.slice(prefix.length), {
        bytes: b.properties.contentLength ?? 0,
        meta: b.metadata ?? {},
      });
    return out;
  };

  beforeAll(async () => {
    blob = await import('@azure/storage-blob');
    azurite = await startAzurite();
    await container().create();
    flow = await startFlow({
      sandbox: {
        // About 100k resources; files of up to 10,000 resources (Observations: about 3 MB).
        generate: 8000,
        exportFileSize: 10_000,
        exportDelayMs: 0,
        // The first downloads of the two Encounter files (2-4 MB, the 4th and 5th of the
        // manifest) trickle at 128 KiB/s: in flight, several blocks staged, at Ctrl-C. By name,
        // not by request count: downloads that start together reach the server in either order.
        faults: [
          {
            path: /^\/fhir\/\$export-file\/[^/]+\/Encounter-[12]\.ndjson$/,
            method: 'GET',
            nth: [1, 2],
            action: { throttleBytesPerSec: 128 * 1024 },
          },
        ],
      },
    });
    env = {
      ...flow.env,
      AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString,
      SMART_UPLOAD_PART_SIZE: BLOCK,
    };
  }, 120_000);
  afterAll(async () => {
    await flow?.close();
    await azurite?.close();
  });

  it('lands complete with counts and metadata; Ctrl-C, then --resume fetches only the rest', async () => {
    const url = 'az://exports/run1';
    const child = execa(
      process.execPath,
      [BIN, 'export', '--parallel', '2', '--out', url, '-o', 'ndjson'],
      {
        env: { PATH: process.env.PATH, NO_COLOR: '1', ...flow.ws.env, ...env },
        extendEnv: false,
        reject: false,
        cwd: flow.ws.home,
        stdin: 'ignore',
        timeout: 120_000,
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    // Three files uploaded, and the two slow ones more than two blocks in.
    const events = () =>
      stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { event: string; file?: string; bytes?: number });
    const ready = () => {
      const e = events();
      const done = new Set(e.filter((x) => x.event === 'file-done').map((x) => x.file));
      const deep = new Set(
        e
          .filter((x) => x.event === 'file-progress' && !done.has(x.file) && x.bytes! > 600_000)
          .map((x) => x.file),
      );
      return done.size >= 3 && deep.size >= 2;
    };
    await whenOutput(child, ready, () => stderr);
    child.kill('SIGINT');
    const first = await child;
    expect(first.exitCode, stderr).toBe(130);
    expect(first.stderr).toContain(`to resume: smart export --resume ${url}`);

    // Only complete files are visible, each with its counted lines in its metadata.
    const state = JSON.parse(await text('run1/export.json')) as State;
    const done = state.files.filter((f) => f.status === 'done');
    expect(done.length).toBeGreaterThanOrEqual(3);
    const stored = await blobs('run1/');
    const visible = [...stored.keys()].filter((n) => n.endsWith('.ndjson')).sort();
    expect(visible).toEqual(done.map((f) => f.name).sort());
    for (const f of done) {
      expect(stored.get(f.name)!.meta.smartlines, f.name).toBe(String(f.count));
      expect(lines(await text(`run1/${f.name}`)), f.name).toBe(f.count);
    }
    // A download's log entry comes when its response has closed, a moment after the client has
    // read it: wait for the complete ones.
    await flow.sandbox.logged((q) => fileGet(q) && complete(q), done.length);
    const completeBefore = fileGets(flow.sandbox.requests)
      .filter(complete)
      .map((r) => r.name);
    expect(completeBefore.sort()).toEqual(done.map((f) => remoteName(f.url)).sort());

    // Resume: only what is missing. Its requests are those that arrive from now on (the first
    // run's cut downloads may be logged later, when their responses close).
    const mark = Date.now();
    const ofResume = (q: RequestLogEntry) => fileGet(q) && Date.parse(q.time) >= mark;
    const r = await runSmart(['export', '--resume', url, '-o', 'json'], {
      ws: flow.ws,
      env,
      timeout: 120_000,
    });
    expect(r.exitCode, r.stderr).toBe(0);
    const s = json<Summary>(r);
    expect(s.destination).toEqual({ kind: 'azure', url });
    expect(s.outDir).toBe(url);
    expect(s.skipped).toBe(done.length);
    expect(s.downloaded).toBe(state.files.length - done.length);
    await flow.sandbox.logged(ofResume, state.files.length - done.length);
    const after = fileGets(flow.sandbox.requests.filter(ofResume));
    expect(after.filter((q) => completeBefore.includes(q.name))).toEqual([]);
    expect(after.every(complete)).toBe(true);
    expect(after).toHaveLength(state.files.length - done.length);

    // Complete: every type, every count, files larger than one block.
    const counts = flow.sandbox.counts;
    expect(s.resources).toBeGreaterThanOrEqual(100_000);
    expect(s.resourcesByType).toEqual(
      Object.fromEntries(Object.entries(counts).filter(([, n]) => n > 0)),
    );
    const final = JSON.parse(await text('run1/export.json')) as State;
    expect(final.status).toBe('complete');
    const manifest = JSON.parse(await text('run1/manifest.json')) as {
      output: Array<{ url: string; count: number }>;
    };
    const all = await blobs('run1/');
    expect(Math.max(...[...all.values()].map((b) => b.bytes))).toBeGreaterThan(256 * 1024 * 4);
    for (const m of manifest.output) {
      const f = final.files.find((x) => remoteName(x.url) === remoteName(m.url))!;
      expect(f.status).toBe('done');
      const b = all.get(f.name)!;
      expect(b.bytes, f.name).toBe(f.bytes);
      expect(b.meta.smartlines, f.name).toBe(String(m.count));
      expect(b.meta.smartmanifest).toBe(final.statusUrl);
      expect(lines(await text(`run1/${f.name}`)), f.name).toBe(m.count);
    }

    // cancel works on a bucket destination too: the server frees the files, the state says so.
    const c = await runSmart(['export', 'cancel', url, '-o', 'json', '--verbose'], {
      ws: flow.ws,
      env,
    });
    expect(c.exitCode, c.stderr).toBe(0);
    expect(c.stderr).not.toContain(AZURITE_KEY.slice(0, 16));
    expect(json<{ status: string; outDir: string }>(c)).toMatchObject({
      status: 'cancelled',
      outDir: url,
    });
    expect((JSON.parse(await text('run1/export.json')) as State).status).toBe('cancelled');
  }, 300_000);

  it('a store that refuses writes: one line, exit 3, found before anything starts on the server', async () => {
    const sas = blob
      .generateAccountSASQueryParameters(
        {
          expiresOn: new Date(Date.now() + 3600_000),
          permissions: blob.AccountSASPermissions.parse('rl'),
          resourceTypes: blob.AccountSASResourceTypes.parse('sco').toString(),
          services: blob.AccountSASServices.parse('b').toString(),
        },
        new blob.StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY),
      )
      .toString();
    const mark = flow.sandbox.requests.length;
    const r = await runSmart(['export', '--type', 'Patient', '--out', 'az://exports/readonly'], {
      ws: flow.ws,
      env: { ...flow.env, AZURE_STORAGE_CONNECTION_STRING: azurite.sasConnectionString(sas) },
    });
    expect(r.exitCode, r.stderr).toBe(3);
    expect(r.stderr).toMatch(
      /^error: Azure Blob refused to write az:\/\/exports\/readonly\/export\.json: /m,
    );
    expect(r.stderr).toMatch(
      /^hint: the credentials \(AZURE_STORAGE_CONNECTION_STRING\) need permission to list, read and write objects under az:\/\/exports\/readonly$/m,
    );
    expect(r.stderr).not.toContain('sig=');
    expect(r.stderr).not.toContain(sas.slice(-20));
    expect(r.stderr.match(/^(error|hint): /gm)).toEqual(['error: ', 'hint: ']);
    expect(flow.sandbox.requests.slice(mark).filter((q) => q.path.includes('$export'))).toEqual([]);
    expect(await blobs('readonly/')).toEqual(new Map());
  }, 60_000);

  it('a container that does not exist, and no credentials: one line each, before any kick-off', async () => {
    const mark = flow.sandbox.requests.length;
    const r = await runSmart(['export', '--out', 'az://nosuch/x'], {
      ws: flow.ws,
      env: { ...flow.env, AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString },
    });
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toMatch(
      /^error: Azure Blob: container nosuch does not exist \(az:\/\/nosuch\/x\)$/m,
    );
    expect(r.stderr).toMatch(/^hint: create it first/m);

    const n = await runSmart(['export', '--out', 'az://exports/x'], { ws: flow.ws, env: flow.env });
    expect(n.exitCode, n.stderr).toBe(3);
    expect(n.stderr).toMatch(/^error: no Azure Storage credentials for az:\/\/exports\/x$/m);
    expect(n.stderr).toMatch(
      /^hint: set AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT/m,
    );
    expect(flow.sandbox.requests.slice(mark).filter((q) => q.path.includes('$export'))).toEqual([]);
  }, 60_000);
});
