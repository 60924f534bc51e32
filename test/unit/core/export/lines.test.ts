import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LineCounter } from '../../../../src/core/export/lines.js';

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
