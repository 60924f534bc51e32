import type { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSink } from '../../../../../src/core/export/sinks/index.js';
import type { S3Sink } from '../../../../../src/core/export/sinks/s3.js';
import { rejected } from '../../../../helpers/rejected.js';
import { startS3rver, type S3rver } from '../../../../helpers/stores.js';

// The S3 sink against s3rver on 127.0.0.1, started once. s3rver completes multipart uploads but
// cannot abort or list them (405, 501). The credentials and endpoint go in the environment the
// sink is given; nothing is set in process.env.

const META = { manifest: 'http://fhir/poll/1', source: 'http://fhir/files/Observation.1.ndjson' };
const before = { ...process.env };

async function feed(stream: Writable, chunks: Buffer[]): Promise<void> {
  for (const c of chunks) {
    if (!stream.write(c)) await new Promise((r) => stream.once('drain', r));
  }
  await new Promise<void>((resolve, reject) => {
    stream.once('error', reject);
    stream.end(() => resolve());
  });
}
const lines = (n: number, width = 100) => {
  const line = Buffer.from(`${'x'.repeat(width - 1)}\n`);
  return Array.from({ length: n }, () => line);
};
const text = async (s: NodeJS.ReadableStream) => {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks);
};

describe('sinks/s3 (s3rver)', () => {
  let s3: S3rver;
  let env: Record<string, string>;
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.message);
  const open = async (url: string, over: Record<string, string> = {}) =>
    (await openSink(url, { ...env, ...over })) as S3Sink;
  const created = (key: string) => s3.created.filter((c) => c.key === key).map((c) => c.how);

  beforeAll(async () => {
    process.on('warning', onWarning);
    s3 = await startS3rver(['smart']);
    env = {
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      AWS_REGION: 'us-east-1',
      AWS_ENDPOINT_URL_S3: s3.endpoint,
    };
  }, 60_000);
  afterAll(async () => {
    process.off('warning', onWarning);
    await s3?.close();
  });

  it('a file smaller than a part is one PUT after commit, with its metadata', async () => {
    const sink = await open('s3://smart/single');
    try {
      const up = await sink.open('Patient.000.ndjson', { expected: { ...META, lines: 3 } });
      await feed(up.stream, lines(3));
      expect(await sink.stat('Patient.000.ndjson')).toBeUndefined();
      await up.commit({ ...META, lines: 3 });
      expect(await sink.stat('Patient.000.ndjson')).toEqual({
        bytes: 300,
        meta: { smartlines: '3', smartmanifest: META.manifest, smartsource: META.source },
      });
      expect(created('single/Patient.000.ndjson')).toEqual(['Put']);
      expect((await text(await sink.read('Patient.000.ndjson'))).length).toBe(300);
    } finally {
      await sink.close();
    }
  });

  it('a file larger than a part is a completed multipart upload; counted lines fix the metadata', async () => {
    const sink = await open('s3://smart/multi', { SMART_UPLOAD_PART_SIZE: '5m' });
    try {
      // 6 MiB + a bit: two parts. The manifest said 1 line; 66,000 were counted.
      const up = await sink.open('Observation.000.ndjson', { expected: { ...META, lines: 1 } });
      await feed(up.stream, lines(66_000));
      await up.commit({ ...META, lines: 66_000 });
      expect(await sink.stat('Observation.000.ndjson')).toEqual({
        bytes: 6_600_000,
        meta: { smartlines: '66000', smartmanifest: META.manifest, smartsource: META.source },
      });
      // Completed (Post), then copied onto itself with the counted lines (Copy).
      expect(created('multi/Observation.000.ndjson')).toEqual(['Post', 'Copy']);
    } finally {
      await sink.close();
    }
  });

  it('a part size under 5 MiB is raised to 5 MiB (S3 refuses smaller parts)', async () => {
    const sink = await open('s3://smart/floor', { SMART_UPLOAD_PART_SIZE: '1m' });
    try {
      const up = await sink.open('Patient.000.ndjson');
      await feed(up.stream, lines(40_000)); // 4 MB: over 1 MiB, under 5 MiB: one PUT
      await up.commit(META);
      expect(created('floor/Patient.000.ndjson')).toEqual(['Put']);
    } finally {
      await sink.close();
    }
  });

  it('abort: nothing is created', async () => {
    const sink = await open('s3://smart/abort');
    try {
      const up = await sink.open('Patient.000.ndjson');
      await new Promise<void>((r) => up.stream.write(lines(1)[0]!, () => r()));
      await up.abort();
      await up.abort();
      expect(await sink.stat('Patient.000.ndjson')).toBeUndefined();
      expect(created('abort/Patient.000.ndjson')).toEqual([]);
      // A store that cannot list multipart uploads: the sweep is best effort.
      await expect(sink.sweep()).resolves.toBeUndefined();
    } finally {
      await sink.close();
    }
  });

  it('prepare: an empty prefix is taken, a used one refused; small files round-trip', async () => {
    const sink = await open('s3://smart/prep');
    try {
      expect(await sink.prepare('s3://smart/prep')).toBe(false);
      expect(await sink.readText('export.json')).toBeUndefined();
      await sink.writeText('export.json', '{"v":1}');
      await sink.writeText('export.json', '{"v":2}');
      expect(await sink.readText('export.json')).toBe('{"v":2}');
      expect([...(await sink.list()).entries()]).toEqual([['export.json', { bytes: 7 }]]);
      const used = await rejected(sink.prepare('s3://smart/prep'));
      expect(used).toMatchObject({ code: 'out_not_empty', exitCode: 2 });
      expect(used.hint).toMatch(/--resume s3:\/\/smart\/prep`/);
      // Another prefix of the bucket is not this one.
      const next = await open('s3://smart/prep2');
      expect(await next.prepare('s3://smart/prep2')).toBe(false);
      await next.close();
    } finally {
      await sink.close();
    }
  });

  it('a bucket that does not exist: exit 2; refused keys: exit 3, the secret not in the line', async () => {
    const nosuch = await open('s3://nosuch/x');
    const e = await rejected(nosuch.prepare('s3://nosuch/x'));
    expect(e.message).toBe('S3: bucket nosuch does not exist (s3://nosuch/x)');
    expect(e).toMatchObject({ code: 'store_no_container', exitCode: 2 });
    await nosuch.close();

    const wrong = await open('s3://smart/denied', {
      AWS_ACCESS_KEY_ID: 'WRONG',
      AWS_SECRET_ACCESS_KEY: 'not-the-secret-42',
    });
    const d = await rejected(wrong.prepare('s3://smart/denied'));
    expect(d.message).toMatch(/^S3 refused to list s3:\/\/smart\/denied: InvalidAccessKeyId/);
    expect(d.message).not.toContain('not-the-secret-42');
    expect(d).toMatchObject({ code: 'store_denied', exitCode: 3 });
    // fatal: an SDK error (it has $metadata) is worded; anything else is for the download.
    expect(wrong.fatal(d.cause, 'Patient.000.ndjson')?.code).toBe('store_denied');
    expect(wrong.fatal(new Error('socket hang up'), 'x')).toBeUndefined();
    await wrong.close();
  });

  it('no region and no endpoint: exit 2 before any request', async () => {
    const sink = await open('s3://smart/region', {
      AWS_REGION: '',
      AWS_ENDPOINT_URL_S3: '',
    });
    const e = await rejected(sink.prepare('s3://smart/region'));
    expect(e.message).toBe('no S3 region for s3://smart/region');
    expect(e).toMatchObject({ code: 'store_no_region', exitCode: 2 });
    await sink.close();
  });

  it('the library leaves process.env alone (the CLI silences the SDK notice)', () => {
    expect(process.env).toEqual(before);
    expect(process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED).toBe(
      before.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED,
    );
    // On Node < 22 the SDK's notice went out as a process warning in this process.
    if (
      Number(process.versions.node.split('.')[0]) < 22 &&
      !before.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED
    )
      expect(warnings.some((w) => w.includes('NodeVersionSupportWarning'))).toBe(true);
  });
});
