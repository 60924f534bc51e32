import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_MAX_RESPONSE_BYTES,
  checkDeclaredLength,
  maxResponseBytesOf,
  readBodyCapped,
} from '../../../../src/core/http/body.js';
import { SmartError } from '../../../../src/core/errors.js';
import { client, reply, useServer } from './harness.js';
import { rejected } from '../../../helpers/rejected.js';

const srv = useServer();

describe('decoding', () => {
  it('offers gzip and decodes a compressed answer (gzip, deflate, br), dropping a UTF-8 BOM', async () => {
    const { gzipSync, deflateSync, brotliCompressSync } = await import('node:zlib');
    const text = '\ufeff{"resourceType":"Patient","name":"Zoë"}';
    const codings: Record<string, (b: Buffer) => Buffer> = {
      gzip: gzipSync,
      deflate: deflateSync,
      br: brotliCompressSync,
    };
    srv.handler = (req, res) => {
      const coding = req.url!.slice(1);
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': coding });
      res.end(codings[coding]!(Buffer.from(text)));
    };
    const { http } = await client();
    for (const coding of Object.keys(codings)) {
      const res = await http.request(`${srv.base}/${coding}`);
      expect(res.json()).toEqual({ resourceType: 'Patient', name: 'Zoë' });
    }
    expect(srv.hits[0]!.headers['accept-encoding']).toBe('gzip, deflate');
    // Export files come as they are, as curl fetches them.
    await http.request(`${srv.base}/gzip`, { stream: 'node' }).then((r) => r.nodeBody?.resume());
    expect(srv.hits[3]!.headers['accept-encoding']).toBeUndefined();
  });
});

describe('size caps', () => {
  const big = (bytes: number) => Buffer.alloc(bytes, 'a').toString();

  it('fails a buffered answer past --max-response, and says how to raise it', async () => {
    srv.handler = (_req, res) => {
      // No Content-Length: the cap is found while reading.
      res.write(big(600 * 1024));
      res.end(big(600 * 1024));
    };
    const { http } = await client({ maxResponseBytes: 1024 * 1024, retries: 0 });
    const e = await rejected(http.request(`${srv.base}/fhir/Patient`));
    expect(e.code).toBe('response_too_large');
    expect(e.exitCode).toBe(1);
    expect(e.message).toBe(`response from ${srv.base}/fhir/Patient is over 1 MiB`);
    expect(e.hint).toContain('--max-response');
    // Under the cap: read whole.
    srv.handler = reply(200, {}, big(1000));
    expect((await http.request(`${srv.base}/fhir/Patient`)).text).toHaveLength(1000);
  });

  it('refuses a declared Content-Length over the cap before reading, and caps token answers at 1 MiB', async () => {
    srv.handler = reply(200, { 'content-type': 'application/json' }, big(1024 * 1024 + 1));
    const { http } = await client({ retries: 0 });
    const e = await rejected(http.request(`${srv.base}/token`, { sizeCap: 'small' }));
    expect(e.code).toBe('response_too_large');
    expect(e.hint).toMatch(/token or discovery answer is never this big/);
    expect((await http.request(`${srv.base}/token`)).text).toHaveLength(1024 * 1024 + 1);

    const cap = { bytes: 10, small: false };
    expect(() => checkDeclaredLength('11', 'http://h/x', cap)).toThrow(/over 0 MiB/);
    expect(() => checkDeclaredLength('10', 'http://h/x', cap)).not.toThrow();
    expect(() => checkDeclaredLength('not a number', 'http://h/x', cap)).not.toThrow();
    expect(() => checkDeclaredLength(null, 'http://h/x', cap)).not.toThrow();
    expect(() => checkDeclaredLength('99', 'http://h/x', undefined)).not.toThrow();
  });

  it('reads a streamed body whole within a cap, and destroys it past the cap', async () => {
    expect(await readBodyCapped(Readable.from([Buffer.from('ab'), Buffer.from('c')]), 'u', 3)).toBe(
      'abc',
    );
    const body = Readable.from([Buffer.from('ab'), Buffer.from('cd')]);
    const e = await readBodyCapped(body, 'http://h/x?access_token=secret', 3).catch((x) => x);
    expect(e).toBeInstanceOf(SmartError);
    expect((e as SmartError).code).toBe('response_too_large');
    expect((e as SmartError).message).not.toContain('secret');
    expect(body.destroyed).toBe(true);
  });

  it('reads --max-response in MiB, with a 256 MiB default', () => {
    expect(maxResponseBytesOf('1')).toBe(1024 * 1024);
    expect(maxResponseBytesOf('0.5')).toBe(512 * 1024);
    expect(maxResponseBytesOf(undefined)).toBe(DEFAULT_MAX_RESPONSE_BYTES);
    expect(DEFAULT_MAX_RESPONSE_BYTES).toBe(256 * 1024 * 1024);
  });
});
