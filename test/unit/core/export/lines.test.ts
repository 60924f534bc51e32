import fc from 'fast-check';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  LineCounter,
  countingStream,
  gunzipCountingStream,
} from '../../../../src/core/export/lines.js';

describe('LineCounter', () => {
  const count = (chunks: string[]) => {
    const c = new LineCounter();
    for (const s of chunks) c.push(Buffer.from(s));
    return c.end();
  };
  it('counts lines across chunk boundaries', () => {
    expect(count(['{"a":1}\n{"a"', ':2}\n'])).toBe(2);
    expect(count(['{"a":1}', '\n', '{"b":2}'])).toBe(2); // last line without a newline
    expect(count([''])).toBe(0);
    expect(count(['\n\n\n'])).toBe(0);
    expect(count(['a\r\n', '\r\n', 'b\r', '\n'])).toBe(2);
    expect(count(['a\n\nb\n'])).toBe(2);
    expect(count(['\r', '\r\n', ' \t', '\n'])).toBe(0); // blank however it is cut
    expect(count([' ', '{}', ' \n'])).toBe(1);
  });
  it('agrees with a split of the whole text, however it is chunked', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom('a', '{', '"', '\n', '\r', 'é', ' '), { maxLength: 200 }),
        fc.array(fc.nat(200), { maxLength: 10 }),
        (chars, cuts) => {
          const text = chars.join('');
          const buf = Buffer.from(text);
          const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
          const c = new LineCounter();
          let prev = 0;
          for (const p of [...points, buf.length]) {
            c.push(buf.subarray(prev, p));
            prev = p;
          }
          const expected = text.split('\n').filter((l) => /[^ \t\r]/.test(l)).length;
          expect(c.end()).toBe(expected);
          expect(c.bytes).toBe(buf.length);
        },
      ),
    );
  });
});

describe('LineCounter edge cases', () => {
  const count = (chunks: Array<string | Buffer>) => {
    const c = new LineCounter();
    for (const s of chunks) c.push(typeof s === 'string' ? Buffer.from(s) : s);
    return c;
  };

  it('CRLF lines, split between CR and LF, count once each', () => {
    expect(count(['{"a":1}\r', '\n{"a":2}\r', '\n']).end()).toBe(2);
    expect(count(['{"a":1}\r\n{"a":2}']).end()).toBe(2);
    expect(count(['\r\n\r\n', '{}\r\n']).end()).toBe(1);
  });

  it('a last line without a newline counts at the end only, once', () => {
    const c = count(['{"a":1}\n{"a"', ':2}']);
    expect(c.lines).toBe(1);
    expect(c.end()).toBe(2);
    expect(c.end()).toBe(2);
    // Trailing blanks after the last newline are not a line.
    expect(count(['{}\n', ' \t\r']).end()).toBe(1);
  });

  it('a multi-byte character cut between chunks is still one line', () => {
    const b = Buffer.from('{"name":"Zoë"}\n{"name":"日本"}');
    const c = count([b.subarray(0, 12), b.subarray(12, 22), b.subarray(22)]);
    expect(c.end()).toBe(2);
    expect(c.bytes).toBe(b.length);
  });

  it('a snapshot taken mid-line continues to the same count (a cut download resumed)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom('{}', '\n', '\r', ' ', 'x'), { maxLength: 80 }),
        fc.nat(80),
        (chars, at) => {
          const buf = Buffer.from(chars.join(''));
          const cut = at % (buf.length + 1);
          const whole = new LineCounter();
          whole.push(buf);
          const first = new LineCounter();
          first.push(buf.subarray(0, cut));
          const snap = first.snapshot();
          expect(snap.bytes).toBe(cut);
          const rest = LineCounter.from(JSON.parse(JSON.stringify(snap)));
          rest.push(buf.subarray(cut));
          expect(rest.bytes).toBe(whole.bytes);
          expect(rest.end()).toBe(whole.end());
        },
      ),
    );
  });
});

/** Chunks through `transform` into memory; what came out. */
async function through(chunks: Buffer[], transform: NodeJS.ReadWriteStream): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(chunks),
    transform,
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        out.push(chunk);
        cb();
      },
    }),
  );
  return Buffer.concat(out);
}

const NDJSON = Array.from({ length: 500 }, (_, i) =>
  JSON.stringify({ resourceType: 'Patient', id: `p${i}` }),
).join('\n');

/** `buf` cut into pieces of `size` bytes. */
const pieces = (buf: Buffer, size: number) =>
  Array.from({ length: Math.ceil(buf.length / size) }, (_, i) =>
    buf.subarray(i * size, (i + 1) * size),
  );

describe('countingStream', () => {
  it('passes the bytes through unchanged, counts lines (the last without a newline), reports each chunk', async () => {
    const counter = new LineCounter();
    let chunks = 0;
    const input = Buffer.from(NDJSON);
    const out = await through(
      pieces(input, 1000),
      countingStream(counter, () => chunks++),
    );
    expect(out.equals(input)).toBe(true);
    expect(counter.lines).toBe(500);
    expect(counter.bytes).toBe(input.length);
    expect(chunks).toBe(Math.ceil(input.length / 1000));
  });
});

describe('gunzipCountingStream', () => {
  it('keeps the gzip bytes as they are and counts the lines inside', async () => {
    const counter = new LineCounter();
    let chunks = 0;
    const gz = gzipSync(NDJSON + '\n');
    const out = await through(
      pieces(gz, 333),
      gunzipCountingStream(counter, () => chunks++),
    );
    expect(out.equals(gz)).toBe(true);
    expect(counter.bytes).toBe(gz.length);
    expect(counter.lines).toBe(500);
    expect(chunks).toBe(Math.ceil(gz.length / 333));
  });

  it('counts a last line without a newline', async () => {
    const counter = new LineCounter();
    await through(
      [gzipSync('{"a":1}\n\n{"a":2}')],
      gunzipCountingStream(counter, () => undefined),
    );
    expect(counter.lines).toBe(2);
  });

  it('fails on bytes that are not gzip, and on a cut gzip stream', async () => {
    await expect(
      through(
        [Buffer.from(NDJSON)],
        gunzipCountingStream(new LineCounter(), () => undefined),
      ),
    ).rejects.toThrow(/incorrect header check/);
    const gz = gzipSync(NDJSON);
    await expect(
      through(
        [gz.subarray(0, gz.length - 20)],
        gunzipCountingStream(new LineCounter(), () => undefined),
      ),
    ).rejects.toThrow(/unexpected end of file/);
  });
});
