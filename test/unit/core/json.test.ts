import { describe, expect, it } from 'vitest';
import { tryJson, tryJsonObject } from '../../../src/core/json.js';

describe('tryJson', () => {
  it('parses any JSON value, and gives undefined for what is not JSON', () => {
    expect(tryJson('{"a":1}')).toEqual({ a: 1 });
    expect(tryJson('[1,2]')).toEqual([1, 2]);
    expect(tryJson('"s"')).toBe('s');
    expect(tryJson('null')).toBeNull();
    expect(tryJson('<html>')).toBeUndefined();
    expect(tryJson('')).toBeUndefined();
  });
});

describe('tryJsonObject', () => {
  it('an object (an array too: its members read as undefined); not null, a scalar or junk', () => {
    expect(tryJsonObject('{"error":"invalid_client"}')).toEqual({ error: 'invalid_client' });
    expect(tryJsonObject('[{"error":"x"}]')?.error).toBeUndefined();
    for (const text of ['null', '42', '"x"', 'not json']) {
      expect(tryJsonObject(text), text).toBeUndefined();
    }
  });
});
