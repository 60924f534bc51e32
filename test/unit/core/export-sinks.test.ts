import { describe, expect, it } from 'vitest';
import { isIpOrLocalhost, parseSize, splitUrl } from '../../../src/core/export/sinks/common.js';
import { scrub } from '../../../src/core/export/sinks/errors.js';
import { gate } from '../../../src/core/export/sinks/gate.js';
import { isSinkUrl, openSink } from '../../../src/core/export/sinks/index.js';

describe('export sinks: helpers', () => {
  it('scrub masks SAS signatures, account keys and SharedKey signatures', () => {
    const text =
      'GET https://a.blob.core.windows.net/c/x?sv=2024&sig=abcDEF123%2B%3D&se=1 failed; ' +
      'AccountKey=Eby8vdM02xNOcqFl==;SharedAccessSignature=sv=1&sig=zzz Authorization: SharedKey acct:c2lnbmF0dXJl';
    const out = scrub(text);
    expect(out).not.toContain('abcDEF123');
    expect(out).not.toContain('Eby8vdM02xNOcqFl');
    expect(out).not.toContain('zzz');
    expect(out).not.toContain('c2lnbmF0dXJl');
    expect(out).toContain('sig=***');
  });

  it('parseSize takes bytes, k and m; anything else is a config error', () => {
    expect(parseSize('1048576', 'X')).toBe(1048576);
    expect(parseSize('256k', 'X')).toBe(256 * 1024);
    expect(parseSize('16MiB', 'X')).toBe(16 * 1024 * 1024);
    expect(parseSize(undefined, 'X')).toBeUndefined();
    expect(() => parseSize('lots', 'SMART_UPLOAD_PART_SIZE')).toThrow(
      /SMART_UPLOAD_PART_SIZE="lots" is not a size/,
    );
  });

  it('path-style addressing for IP and localhost endpoints only', () => {
    expect(isIpOrLocalhost('127.0.0.1')).toBe(true);
    expect(isIpOrLocalhost('localhost')).toBe(true);
    expect(isIpOrLocalhost('[::1]')).toBe(true);
    expect(isIpOrLocalhost('minio.internal')).toBe(false);
    expect(isIpOrLocalhost('s3.eu-central-1.amazonaws.com')).toBe(false);
  });

  it('destination URLs: bucket and prefix; a query, a fragment or .. is refused', async () => {
    expect(splitUrl(new URL('s3://b/a/b/'), 's3://b/a/b/')).toEqual({
      container: 'b',
      prefix: 'a/b',
    });
    expect(splitUrl(new URL('az://c'), 'az://c')).toEqual({ container: 'c', prefix: '' });
    expect(() => splitUrl(new URL('s3://b/x?y=1'), 's3://b/x?y=1')).toThrow(/not a usable/);
    expect(isSinkUrl('s3://b/x')).toBe(true);
    expect(isSinkUrl('./out')).toBe(false);
    await expect(openSink('gs://b/x')).rejects.toMatchObject({ code: 'bad_destination' });
    await expect(openSink('az://c/x', {})).rejects.toMatchObject({
      kind: 'auth',
      code: 'store_no_credentials',
    });
  });
});

describe('export sinks: the gate in front of an upload body', () => {
  const read = async (body: NodeJS.ReadableStream) => {
    const chunks: Buffer[] = [];
    for await (const c of body) chunks.push(Buffer.from(c as Buffer));
    return Buffer.concat(chunks).toString();
  };

  it('ending the write stream hands every byte over but ends the body only on release', async () => {
    const g = gate(4);
    let ended = false;
    const got = read(g.body).then((t) => ((ended = true), t));
    await new Promise<void>((r) => g.stream.end('hello world', () => r()));
    expect(g.bytes).toBe(11);
    await new Promise((r) => setImmediate(r));
    expect(ended).toBe(false);
    g.release();
    expect(await got).toBe('hello world');
  });

  it('fail breaks the body with an error (the SDK then aborts instead of completing)', async () => {
    const g = gate();
    const got = read(g.body);
    g.stream.write('partial');
    g.fail(new Error('upload aborted'));
    await expect(got).rejects.toThrow('upload aborted');
  });
});
