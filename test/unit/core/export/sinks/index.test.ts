import { describe, expect, it } from 'vitest';
import { DirectorySink, isSinkUrl, openSink } from '../../../../../src/core/export/sinks/index.js';
import { rejected } from '../../../../helpers/rejected.js';

describe('sinks/index: the destination of --out', () => {
  it('destination URLs: a registered scheme is a URL, anything else a path', async () => {
    expect(isSinkUrl('s3://b/x')).toBe(true);
    expect(isSinkUrl('./out')).toBe(false);
    await expect(openSink('gs://b/x')).rejects.toMatchObject({ code: 'bad_destination' });
    await expect(openSink('az://c/x', {})).rejects.toMatchObject({
      kind: 'auth',
      code: 'store_no_credentials',
    });
  });

  it('isSinkUrl: the scheme in any case; other schemes and paths with colons are not URLs', () => {
    expect(isSinkUrl('AZ://c/p')).toBe(true);
    expect(isSinkUrl('S3://b')).toBe(true);
    expect(isSinkUrl('gs://b/x')).toBe(false);
    expect(isSinkUrl('/data/exports:2024')).toBe(false);
    expect(isSinkUrl('C:\\exports')).toBe(false);
  });

  it('a path is a directory sink, whatever it looks like', async () => {
    for (const p of ['out', '/tmp/x/y', 'exports:2024', 's3:/not-a-url']) {
      const sink = await openSink(p);
      expect(sink).toBeInstanceOf(DirectorySink);
      expect(sink.kind).toBe('directory');
      expect(sink.location).toBe(p);
    }
  });

  it('an unknown scheme: exit 2, naming the schemes there are', async () => {
    const e = await rejected(openSink('gs://bucket/prefix'));
    expect(e.message).toBe('--out gs://bucket/prefix: unknown destination scheme "gs://"');
    expect(e.exitCode).toBe(2);
    expect(e.hint).toBe('give a directory, or one of s3://, az://');
  });

  it('s3:// and az:// open their sinks (no request yet), with the destination as given', async () => {
    const s3 = await openSink('S3://bucket/a/b', { AWS_REGION: 'eu-west-1' });
    try {
      expect(s3.kind).toBe('s3');
      expect(s3.location).toBe('S3://bucket/a/b');
      expect(s3.describe('Patient.000.ndjson')).toBe('s3://bucket/a/b/Patient.000.ndjson');
    } finally {
      await s3.close();
    }
    const az = await openSink('az://exports/2024', {
      AZURE_STORAGE_ACCOUNT: 'acct',
      AZURE_STORAGE_SAS_TOKEN: '?sv=2024&sig=x',
    });
    expect(az.kind).toBe('azure');
    expect(az.describe('export.json')).toBe('az://exports/2024/export.json');
    await az.close();
  });

  it('a URL that does not parse, or a bucket URL with a query: exit 2', async () => {
    const bad = await rejected(openSink('s3://[bad/x'));
    expect(bad.code).toBe('bad_destination');
    expect(bad.message).toBe('--out s3://[bad/x is not a valid URL');
    expect(bad.exitCode).toBe(2);
    const query = await rejected(openSink('s3://b/x?versionId=1'));
    expect(query.message).toBe('--out s3://b/x?versionId=1 is not a usable destination URL');
  });
});
