import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { memberText } from '../../../src/core/bundle-scan.js';

// Values as JSON gives them back: fc.jsonValue may draw -0, which JSON writes as 0.
const json = fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.parse(JSON.stringify(v)) as unknown);
const indent = fc.constantFrom(undefined, 1, 2, '\t', ' \n ');

describe('memberText', () => {
  it('finds the text of any member of any object, as JSON.parse reads it', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.string({ maxLength: 5 }), json, { maxKeys: 6 }),
        fc.string({ maxLength: 5 }),
        json,
        indent,
        (others, name, value, ind) => {
          const obj = { ...others, [name]: value };
          const text = JSON.stringify(obj, null, ind);
          const found = memberText(text, name);
          expect(found).toBeDefined();
          expect(JSON.parse(found!)).toEqual(value);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('keeps numbers digit for digit; absent members and non-objects give undefined', () => {
    const text =
      '{ "id" : "a,b}", "resource" :\n { "value" : 1.50, "big": 12345678901234567890 } }';
    expect(memberText(text, 'resource')).toBe('{ "value" : 1.50, "big": 12345678901234567890 }');
    expect(memberText(text, 'id')).toBe('"a,b}"');
    expect(memberText(text, 'search')).toBeUndefined();
    expect(memberText('{}', 'resource')).toBeUndefined();
    expect(memberText('[1]', 'resource')).toBeUndefined();
    // The last of a repeated name, as JSON.parse takes it.
    expect(memberText('{"a":1,"a":2.0}', 'a')).toBe('2.0');
  });
});
