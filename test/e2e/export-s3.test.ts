import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RequestLogEntry } from '../../src/sandbox/index.js';
import { BIN, json, smart } from '../helpers/cli.js';
import { startFlow, type Flow } from '../helpers/sandbox.js';
import { fixedServer } from '../helpers/servers.js';
import {
  s3AbortRecorder,
  startS3rver,
  whenOutput,
  type S3AbortRecorder,
  type S3rver,
} from '../helpers/stores.js';

// An export into S3, against s3rver on 127.0.0.1. s3rver completes multipart uploads but cannot
// abort or list them (AbortMultipartUpload answers 405, ListMultipartUploads 501), so the first
// Ctrl-C and resume test sets the part size (64 MiB) above every file's size: each file is one
// PUT sent after its last byte and the line count check. One test sets the smallest part size
// (5 MiB) below the size of a file, which then lands as a completed multipart upload. The last
// ones go through `s3AbortRecorder`, a proxy in front of s3rver that answers AbortMultipartUpload
// as S3 does and records the uploads created, completed and aborted: a multipart upload cut by
// Ctrl-C or by a broken download is aborted (none is left behind), and --resume completes the
// export. The proxy also answers ListMultipartUploads (s3rver cannot): an upload left open by a
// run killed with SIGKILL is listed and aborted by the resume's sweep.

interface Summary {
  outDir: string;
  destination: { kind: string; url: string };
  resourcesByType: Record<string, number>;
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
/** The requests that arrived at or after `since` (ms): those of one run, whenever logged. */
const since = (requests: RequestLogEntry[], ms: number) =>
  requests.filter((r) => Date.parse(r.time) >= ms);

describe('smart export --out s3://bucket/prefix (s3rver)', () => {
  let s3: S3rver;
  let flow: Flow;
  let sdk: typeof import('@aws-sdk/client-s3');
  let client: import('@aws-sdk/client-s3').S3Client;
  let env: Record<string, string>;
  /** The store's endpoint and credentials. */
  let store: Record<string, string>;

  const text = async (key: string) => {
    const r = await client.send(new sdk.GetObjectCommand({ Bucket: 'smart', Key: key }));
    return r.Body!.transformToString('utf8');
  };
  const keys = async (prefix: string) =>
    (
      (await client.send(new sdk.ListObjectsV2Command({ Bucket: 'smart', Prefix: prefix })))
        .Contents ?? []
    ).map((o) => o.Key!.slice(prefix.length));
  const lines = (s: string) => s.split('\n').filter(Boolean).length;

  beforeAll(async () => {
    // For this process's own client (the checks below): no Node support notice on stderr.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
    sdk = await import('@aws-sdk/client-s3');
    s3 = await startS3rver(['smart']);
    client = new sdk.S3Client({
      endpoint: s3.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
    flow = await startFlow({
      sandbox: {
        // 200 patients: 11 Patient/Observation files, the Observation ones about 125 KB each.
        generate: 200,
        exportFileSize: 200,
        exportDelayMs: 0,
        // The first downloads of the first two Observation files (the 3rd and 4th of the
        // manifest) trickle at 16 KiB/s: in flight at Ctrl-C. By name, not by request count:
        // downloads that start together reach the server in either order.
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
    store = {
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      AWS_REGION: 'us-east-1',
      AWS_ENDPOINT_URL_S3: s3.endpoint,
    };
    // Above every file's size: one PUT per file (multipart uploads are tested below).
    env = { ...flow.env, ...store, SMART_UPLOAD_PART_SIZE: '64m' };
  }, 60_000);
  afterAll(async () => {
    client?.destroy();
    await flow?.close();
    await s3?.close();
  });

  it('lands complete with counts and metadata; Ctrl-C, then --resume fetches only the rest', async () => {
    const url = 's3://smart/exports/run1';
    const child = execa(
      process.execPath,
      [
        BIN,
        'export',
        '--type',
        'Patient,Observation',
        '--parallel',
        '2',
        '--out',
        url,
        '-o',
        'ndjson',
      ],
      {
        env: { PATH: process.env.PATH, NO_COLOR: '1', ...flow.ws.env, ...env },
        extendEnv: false,
        reject: false,
        cwd: flow.ws.home,
        stdin: 'ignore',
        timeout: 60_000,
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const ready = () => {
      const e = stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { event: string; file?: string; bytes?: number });
      const done = new Set(e.filter((x) => x.event === 'file-done').map((x) => x.file));
      const moving = new Set(
        e
          .filter((x) => x.event === 'file-progress' && !done.has(x.file) && x.bytes! > 0)
          .map((x) => x.file),
      );
      return done.size >= 2 && moving.size >= 2;
    };
    await whenOutput(child, ready, () => stderr);
    child.kill('SIGINT');
    const first = await child;
    expect(first.exitCode, stderr).toBe(130);
    expect(first.stderr).not.toMatch(/Warning|AWS SDK|node >=/);
    expect(first.stderr).toContain(`to resume: smart export --resume ${url}`);

    // Only complete files are there, each with its counted lines in its metadata.
    const state = JSON.parse(await text('exports/run1/export.json')) as State;
    const done = state.files.filter((f) => f.status === 'done');
    expect(done).toHaveLength(2);
    const visible = (await keys('exports/run1/')).filter((k) => k.endsWith('.ndjson')).sort();
    expect(visible).toEqual(done.map((f) => f.name).sort());
    for (const f of done) {
      const head = await client.send(
        new sdk.HeadObjectCommand({ Bucket: 'smart', Key: `exports/run1/${f.name}` }),
      );
      expect(head.Metadata).toMatchObject({
        smartlines: String(f.count),
        smartmanifest: state.statusUrl,
      });
      expect(head.ContentLength).toBe(f.bytes);
      expect(lines(await text(`exports/run1/${f.name}`))).toBe(f.count);
    }
    // A download's log entry comes when its response has closed, a moment after the client has
    // read it: wait for the complete ones.
    await flow.sandbox.logged((q) => fileGet(q) && complete(q), done.length);
    const completeBefore = fileGets(flow.sandbox.requests)
      .filter(complete)
      .map((r) => r.name);
    expect(completeBefore.sort()).toEqual(done.map((f) => remoteName(f.url)).sort());

    const mark = Date.now();
    const r = await smart(['export', '--resume', url, '-o', 'json'], { ws: flow.ws, env });
    expect(r.exitCode, r.stderr).toBe(0);
    // The SDK's Node support notice (Node < 22) stays out of the output: the CLI silences it,
    // in a child whose environment does not.
    expect(r.stderr).not.toMatch(/Warning|AWS SDK|node >=/);
    const s = json<Summary>(r);
    expect(s.destination).toEqual({ kind: 's3', url });
    expect(s.skipped).toBe(2);
    expect(s.downloaded).toBe(9);
    await flow.sandbox.logged((q) => fileGet(q) && Date.parse(q.time) >= mark, 9);
    const after = fileGets(since(flow.sandbox.requests, mark));
    expect(after.filter((q) => completeBefore.includes(q.name))).toEqual([]);
    expect(after.every(complete)).toBe(true);
    expect(after).toHaveLength(9);
    expect(s.resourcesByType).toEqual({
      Patient: flow.sandbox.counts.Patient,
      Observation: flow.sandbox.counts.Observation,
    });
    const final = JSON.parse(await text('exports/run1/export.json')) as State;
    expect(final.status).toBe('complete');
    for (const f of final.files) {
      expect(f.status).toBe('done');
      expect(lines(await text(`exports/run1/${f.name}`)), f.name).toBe(f.count);
    }

    // A second resume of a complete export: nothing fetched again.
    const mark2 = Date.now();
    const again = await smart(['export', '--resume', url, '-o', 'json', '--verbose'], {
      ws: flow.ws,
      env,
    });
    expect(again.exitCode, again.stderr).toBe(0);
    // --verbose logs the FHIR requests; the store's credentials never appear.
    expect(again.stderr).not.toContain('S3RVER');
    expect(json<Summary>(again)).toMatchObject({ skipped: 11, downloaded: 0 });
    expect(fileGets(since(flow.sandbox.requests, mark2))).toEqual([]);
  }, 120_000);

  it('a file larger than the part size lands as a completed multipart upload, the rest as one PUT each', async () => {
    // 2000 patients in files of up to 100,000 resources: one Observation file of about 8 MB.
    const big = await startFlow({
      sandbox: { generate: 2000, exportFileSize: 100_000, exportDelayMs: 0 },
    });
    try {
      const url = 's3://smart/exports/multipart';
      const partSize = 5 * 1024 * 1024;
      const r = await smart(
        ['export', '--type', 'Patient,Observation', '--out', url, '-o', 'json'],
        { ws: big.ws, env: { ...big.env, ...store, SMART_UPLOAD_PART_SIZE: '5m' } },
      );
      expect(r.exitCode, r.stderr).toBe(0);
      expect(json<Summary>(r).resourcesByType).toEqual({
        Patient: big.sandbox.counts.Patient,
        Observation: big.sandbox.counts.Observation,
      });
      const state = JSON.parse(await text('exports/multipart/export.json')) as State;
      expect(state.status).toBe('complete');
      expect(Math.max(...state.files.map((f) => f.bytes!))).toBeGreaterThan(partSize);
      for (const f of state.files) {
        const key = `exports/multipart/${f.name}`;
        const head = await client.send(new sdk.HeadObjectCommand({ Bucket: 'smart', Key: key }));
        expect(head.ContentLength, f.name).toBe(f.bytes);
        expect(head.Metadata, f.name).toMatchObject({
          smartlines: String(f.count),
          smartmanifest: state.statusUrl,
        });
        expect(lines(await text(key)), f.name).toBe(f.count);
        // s3rver's event for the object: Post = CompleteMultipartUpload, Put = one PutObject.
        expect(
          s3.created.filter((c) => c.key === key).map((c) => c.how),
          f.name,
        ).toEqual([f.bytes! > partSize ? 'Post' : 'Put']);
      }
    } finally {
      await big.close();
    }
  }, 120_000);

  it('a bucket that does not exist, refused credentials, no credentials: one line each', async () => {
    const mark = flow.sandbox.requests.length;
    const nb = await smart(['export', '--out', 's3://nosuch/x'], { ws: flow.ws, env });
    expect(nb.exitCode, nb.stderr).toBe(2);
    expect(nb.stderr).toMatch(/^error: S3: bucket nosuch does not exist \(s3:\/\/nosuch\/x\)$/m);
    expect(nb.stderr).toMatch(
      /^hint: create it first, or check the name, the region and the endpoint$/m,
    );

    const bad = await smart(['export', '--out', 's3://smart/denied'], {
      ws: flow.ws,
      env: { ...env, AWS_ACCESS_KEY_ID: 'WRONG', AWS_SECRET_ACCESS_KEY: 'not-the-secret-42' },
    });
    expect(bad.exitCode, bad.stderr).toBe(3);
    expect(bad.stderr).toMatch(
      /^error: S3 refused to list s3:\/\/smart\/denied: InvalidAccessKeyId/m,
    );
    expect(bad.stderr).toMatch(/^hint: the credentials \(the AWS default chain\) need permission/m);
    expect(bad.stderr).not.toContain('not-the-secret-42');

    const none = await smart(['export', '--out', 's3://smart/none', '--verbose'], {
      ws: flow.ws,
      env: {
        ...flow.env,
        AWS_EC2_METADATA_DISABLED: 'true',
        AWS_REGION: 'us-east-1',
        AWS_ENDPOINT_URL_S3: s3.endpoint,
      },
    });
    expect(none.exitCode, none.stderr).toBe(3);
    expect(none.stderr).toMatch(/^error: no S3 credentials for s3:\/\/smart\/none: /m);
    expect(none.stderr).toMatch(/^hint: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/m);

    // Credentials but no region (and AWS itself, no endpoint: the SDK needs the region to sign,
    // and fails before any request): a setting to add (exit 2), not a credentials problem.
    const { AWS_REGION: _region, AWS_ENDPOINT_URL_S3: _endpoint, ...noRegion } = env;
    const region = await smart(['export', '--out', 's3://smart/region'], {
      ws: flow.ws,
      env: {
        ...noRegion,
        AWS_CONFIG_FILE: '/nonexistent',
        AWS_SHARED_CREDENTIALS_FILE: '/nonexistent',
      },
    });
    expect(region.exitCode, region.stderr).toBe(2);
    expect(region.stderr).toMatch(/^error: no S3 region for s3:\/\/smart\/region$/m);
    expect(region.stderr).toMatch(/^hint: set AWS_REGION/m);
    // Nothing was kicked off for any of them.
    expect(flow.sandbox.requests.slice(mark).filter((q) => q.path.includes('$export'))).toEqual([]);
  }, 60_000);

  it('a store that keeps answering 503 SlowDown: the SDK retries, then one line, exit 1', async () => {
    const slow = await fixedServer({
      status: 503,
      contentType: 'application/xml',
      body: '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>',
    });
    try {
      const r = await smart(['export', '--out', 's3://smart/slow'], {
        ws: flow.ws,
        env: { ...env, AWS_ENDPOINT_URL_S3: slow.url, AWS_MAX_ATTEMPTS: '2' },
      });
      expect(r.exitCode, r.stderr).toBe(1);
      expect(r.stderr).toMatch(
        /^error: S3 kept throttling requests to s3:\/\/smart\/slow \(SlowDown\) after retries$/m,
      );
      expect(r.stderr).toMatch(/^hint: the store is overloaded/m);
      expect(slow.hits.length).toBe(2);
      // Path-style addressing for an IP endpoint.
      expect(slow.hits[0]).toMatch(/^GET \/smart\/\?list-type=2&max-keys=1&prefix=slow%2F$/);
    } finally {
      await slow.close();
    }
  }, 60_000);

  describe('multipart uploads cut short are aborted (through a proxy that answers AbortMultipartUpload)', () => {
    let big: Flow;
    let proxy: S3AbortRecorder;
    let bigEnv: Record<string, string>;
    const partSize = 5 * 1024 * 1024;

    /** Every upload created was completed or aborted: none is left behind. */
    const noneLeft = () =>
      expect([...proxy.created].sort()).toEqual(
        [...proxy.completed, ...proxy.aborted.map((a) => a.uploadId)].sort(),
      );
    const missing = (key: string) =>
      client.send(new sdk.HeadObjectCommand({ Bucket: 'smart', Key: key })).then(
        () => 'exists',
        (e: { name?: string }) => e.name,
      );

    /**
     * An export into `url` whose one download trickles at 2 MiB/s, returned once the proxy has
     * seen a part of one of its files uploaded (so a multipart upload is open): the child, and
     * that part.
     */
    async function exportWithPartUploaded(url: string) {
      big.sandbox.addFault({
        path: '/fhir/$export-file',
        method: 'GET',
        times: 1,
        action: { throttleBytesPerSec: 2 * 1024 * 1024 },
      });
      const child = execa(
        process.execPath,
        [BIN, 'export', '--type', 'Observation', '--out', url, '-o', 'ndjson'],
        {
          env: { PATH: process.env.PATH, NO_COLOR: '1', ...big.ws.env, ...bigEnv },
          extendEnv: false,
          reject: false,
          cwd: big.ws.home,
          stdin: 'ignore',
          timeout: 60_000,
        },
      );
      const prefix = `${new URL(url).pathname.slice(1)}/`;
      const ours = (p: { key: string }) => p.key.startsWith(prefix) && p.key.endsWith('.ndjson');
      await Promise.race([
        proxy.until(() => proxy.parts.some(ours)),
        child.then((r) => {
          throw new Error(`the export ended before any part was uploaded:\n${r.stderr}`);
        }),
      ]);
      return { child, part: proxy.parts.find(ours)! };
    }

    /** `--resume url` exits 0 with every Observation; the export's state, then complete. */
    async function resumeCompletes(url: string): Promise<State> {
      const r = await smart(['export', '--resume', url, '-o', 'json'], {
        ws: big.ws,
        env: bigEnv,
      });
      expect(r.exitCode, r.stderr).toBe(0);
      expect(json<Summary>(r).resourcesByType).toEqual({
        Observation: big.sandbox.counts.Observation,
      });
      const state = JSON.parse(
        await text(`${new URL(url).pathname.slice(1)}/export.json`),
      ) as State;
      expect(state.status).toBe('complete');
      return state;
    }

    beforeAll(async () => {
      proxy = await s3AbortRecorder(s3.endpoint);
      // 3000 patients in files of up to 100,000 resources: one Observation file of about 12 MB,
      // of which a dropped download still sends more than one 5 MiB part.
      big = await startFlow({
        sandbox: { generate: 3000, exportFileSize: 100_000, exportDelayMs: 0 },
      });
      bigEnv = {
        ...big.env,
        ...store,
        AWS_ENDPOINT_URL_S3: proxy.endpoint,
        SMART_UPLOAD_PART_SIZE: '5m',
      };
    }, 60_000);
    afterAll(async () => {
      await big?.close();
      await proxy?.close();
    });

    it('Ctrl-C during a multipart upload aborts it (exit 130), then --resume completes the export', async () => {
      const url = 's3://smart/exports/cut';
      // The download trickles: the upload has sent its first part long before the end.
      const { child, part } = await exportWithPartUploaded(url);
      child.kill('SIGINT');
      const first = await child;
      expect(first.exitCode, first.stderr).toBe(130);
      expect(first.stderr).toContain(`to resume: smart export --resume ${url}`);
      // The cut upload was aborted, and no other one was left open.
      expect(proxy.completed).not.toContain(part.uploadId);
      expect(proxy.aborted).toContainEqual({
        bucket: 'smart',
        key: part.key,
        uploadId: part.uploadId,
      });
      noneLeft();
      expect(await missing(part.key)).toBe('NotFound');

      const state = await resumeCompletes(url);
      const file = state.files.find((f) => `exports/cut/${f.name}` === part.key)!;
      expect(file.bytes).toBeGreaterThan(partSize);
      expect(lines(await text(part.key))).toBe(file.count);
      noneLeft();
    }, 120_000);

    it('a run killed during a multipart upload leaves it open; --resume aborts it (the sweep) and completes', async () => {
      const url = 's3://smart/exports/kill';
      const { child, part } = await exportWithPartUploaded(url);
      // SIGKILL: no chance to abort the upload.
      child.kill('SIGKILL');
      const first = await child;
      expect(first.signal).toBe('SIGKILL');
      expect(proxy.created).toContain(part.uploadId);
      expect(proxy.completed).not.toContain(part.uploadId);
      expect(proxy.aborted.map((a) => a.uploadId)).not.toContain(part.uploadId);

      const state = await resumeCompletes(url);
      // The orphaned upload was listed and aborted by the resume's sweep.
      expect(proxy.aborted).toContainEqual({
        bucket: 'smart',
        key: part.key,
        uploadId: part.uploadId,
      });
      const file = state.files.find((f) => `exports/kill/${f.name}` === part.key)!;
      expect(lines(await text(part.key))).toBe(file.count);
      noneLeft();
    }, 120_000);

    it('a download cut in the middle of a multipart upload aborts it, and the retry lands the file', async () => {
      const url = 's3://smart/exports/drop';
      // The first download sends about half the file (more than one part), then breaks off.
      big.sandbox.addFault({
        path: '/fhir/$export-file',
        method: 'GET',
        times: 1,
        action: { drop: 'mid-body' },
      });
      const before = proxy.aborted.length;
      const r = await smart(['export', '--type', 'Observation', '--out', url, '-o', 'json'], {
        ws: big.ws,
        env: bigEnv,
      });
      expect(r.exitCode, r.stderr).toBe(0);
      const state = JSON.parse(await text('exports/drop/export.json')) as State;
      expect(state.status).toBe('complete');
      const [file] = state.files;
      const key = `exports/drop/${file!.name}`;
      expect(lines(await text(key))).toBe(file!.count);
      // The cut attempt's upload had sent a part, and was aborted; the retry's was completed.
      const cut = proxy.aborted.slice(before).filter((a) => a.key === key);
      expect(cut).toHaveLength(1);
      expect(proxy.parts.some((p) => p.uploadId === cut[0]!.uploadId)).toBe(true);
      expect(proxy.completed).not.toContain(cut[0]!.uploadId);
      noneLeft();
    }, 120_000);
  });
});
