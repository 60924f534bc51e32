import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compactJson } from '../../../src/output/stream.js';

// Values as JSON gives them back: fc.jsonValue may draw -0, which JSON writes as 0.
const json = fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.parse(JSON.stringify(v)) as unknown);
const indent = fc.constantFrom(undefined, 1, 2, '\t', ' \n ');

describe('compactJson', () => {
  it('is JSON.stringify of any value, from text with any whitespace', () => {
    fc.assert(
      fc.property(json, indent, (v, ind) => {
        expect(compactJson(JSON.stringify(v, null, ind))).toBe(JSON.stringify(v));
      }),
      { numRuns: 300 },
    );
  });

  it('leaves strings (escapes included) and number tokens as written', () => {
    expect(compactJson('{ "a b" : "c \\" d\\\\" ,\n "n" : [ 1.50 , -0, 1e3 ] }')).toBe(
      '{"a b":"c \\" d\\\\","n":[1.50,-0,1e3]}',
    );
  });
});
