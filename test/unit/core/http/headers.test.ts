import { describe, expect, it } from 'vitest';
import { ResponseHeaders } from '../../../../src/core/http/headers.js';

describe('ResponseHeaders', () => {
  it('looks names up in any case, and joins repeated headers with a comma', () => {
    const h = new ResponseHeaders({ 'Content-Type': 'text/plain', 'set-cookie': ['a=1', 'b=2'] });
    expect(h.get('content-type')).toBe('text/plain');
    expect(h.get('CONTENT-TYPE')).toBe('text/plain');
    expect(h.get('Set-Cookie')).toBe('a=1, b=2');
    expect(h.has('Content-type')).toBe(true);
    expect(h.get('x-missing')).toBeNull();
    expect(h.has('x-missing')).toBe(false);
    h.append('X-N', '1');
    h.append('x-n', '2');
    expect(h.get('x-n')).toBe('1, 2');
  });

  it('skips undefined values and takes [name, value] pairs', () => {
    const h = new ResponseHeaders({ a: undefined, b: 'x' });
    expect(h.has('a')).toBe(false);
    const pairs = new ResponseHeaders([
      ['Location', '/a'],
      ['location', '/b'],
    ]);
    expect(pairs.get('location')).toBe('/a, /b');
  });

  it('iterates lower-case names in name order, as fetch does', () => {
    const h = new ResponseHeaders({ 'X-B': '2', 'Content-Length': '3', 'x-a': '1' });
    expect([...h]).toEqual([
      ['content-length', '3'],
      ['x-a', '1'],
      ['x-b', '2'],
    ]);
    const seen: string[] = [];
    h.forEach((v, k) => seen.push(`${k}=${v}`));
    expect(seen).toEqual(['content-length=3', 'x-a=1', 'x-b=2']);
    expect(new ResponseHeaders().get('a')).toBeNull();
  });
});
