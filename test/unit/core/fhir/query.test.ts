import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SmartError } from '../../../../src/core/errors.js';
import {
  encodeSearchParams,
  parseQueryString,
  parseQueryTarget,
  toSearchParams,
} from '../../../../src/core/fhir/index.js';

// ---------------------------------------------------------------------------------------------
// Parameter encoding

const TRICKY = [
  '=',
  '&',
  ',',
  '|',
  '+',
  '%',
  ' ',
  '#',
  '?',
  ':',
  '$',
  '/',
  '\\',
  '%2B',
  '"',
  'é',
  '😀',
  '\n',
];
const valueArb = fc.string({
  unit: fc.oneof(
    fc.constantFrom(...TRICKY),
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }),
  ),
  maxLength: 20,
});
const nameArb = fc.stringMatching(/^[A-Za-z_$][A-Za-z0-9_.:$-]{0,15}$/);
const pairsArb = fc.array(fc.tuple(nameArb, valueArb), { maxLength: 8 });

/** What a server (any WHATWG/x-www-form-urlencoded parser) reads back from the query. */
const serverReads = (query: string) => [...new URLSearchParams(query)];

describe('search parameter encoding', () => {
  it('round-trips any name=value arguments through the query string a server decodes', () => {
    fc.assert(
      fc.property(pairsArb, (pairs) => {
        const args = pairs.map(([n, v]) => `${n}=${v}`);
        const parsed = toSearchParams(args);
        expect(parsed).toEqual(pairs);
        expect(serverReads(encodeSearchParams(parsed))).toEqual(pairs);
      }),
      { numRuns: 500 },
    );
  });

  it('keeps one query component per parameter: no raw &, #, space, + or = inside a value', () => {
    fc.assert(
      fc.property(
        pairsArb.filter((p) => p.length > 0),
        (pairs) => {
          const query = encodeSearchParams(pairs);
          const parts = query.split('&');
          expect(parts).toHaveLength(pairs.length);
          for (const part of parts) {
            expect(part.split('=')).toHaveLength(2);
            expect(part).not.toMatch(/[ #+\n"]/);
          }
        },
      ),
    );
  });

  it('round-trips through the "Type?query" form', () => {
    fc.assert(
      fc.property(pairsArb, (pairs) => {
        const target = parseQueryTarget(`Observation?${encodeSearchParams(pairs)}`);
        expect(target).toEqual({ type: 'Observation', id: undefined, params: pairs });
      }),
    );
  });

  it('keeps order and repeated names (FHIR ANDs them)', () => {
    const params = toSearchParams(['date=ge2020-01-01', 'code=4548-4', 'date=lt2021-01-01']);
    expect(params).toEqual([
      ['date', 'ge2020-01-01'],
      ['code', '4548-4'],
      ['date', 'lt2021-01-01'],
    ]);
    expect(encodeSearchParams(params)).toBe('date=ge2020-01-01&code=4548-4&date=lt2021-01-01');
  });

  it('splits at the first = only, and keeps commas, | and :modifiers literal', () => {
    expect(
      encodeSearchParams(
        toSearchParams([
          'code=http://loinc.org|4548-4,http://loinc.org|2339-0',
          'name:exact=a=b',
          '_has:Observation:patient:code=1234',
          'subject:Patient.name=Kessler',
        ]),
      ),
    ).toBe(
      'code=http:%2F%2Floinc.org|4548-4,http:%2F%2Floinc.org|2339-0&name:exact=a%3Db&_has:Observation:patient:code=1234&subject:Patient.name=Kessler',
    );
  });

  it('encodes + (timezone offsets) and spaces so the server does not read spaces', () => {
    const q = encodeSearchParams(
      toSearchParams(['date=ge2020-01-01T00:00:00+01:00', 'name=van der Berg']),
    );
    expect(q).toBe('date=ge2020-01-01T00:00:00%2B01:00&name=van%20der%20Berg');
    expect(serverReads(q)).toEqual([
      ['date', 'ge2020-01-01T00:00:00+01:00'],
      ['name', 'van der Berg'],
    ]);
  });

  it('allows an empty value, rejects a missing = or a bad name with a usage error', () => {
    expect(toSearchParams(['_summary='])).toEqual([['_summary', '']]);
    for (const bad of ['code', '=4548-4', 'co de=1', 'a&b=1']) {
      let err: unknown;
      try {
        toSearchParams([bad]);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SmartError);
      expect((err as SmartError).exitCode).toBe(2);
      expect((err as SmartError).message).toContain(bad.split('=')[0] || bad);
    }
  });

  it('decodes percent-escapes in the ?-form, keeps + and bad escapes literal', () => {
    expect(parseQueryString('code=http%3A%2F%2Floinc.org%7C4548-4&date=ge2020+01&x=100%')).toEqual([
      ['code', 'http://loinc.org|4548-4'],
      ['date', 'ge2020+01'],
      ['x', '100%'],
    ]);
  });
});

describe('query targets', () => {
  it('reads Type, Type/id and Type?params, adding name=value arguments after the query', () => {
    expect(parseQueryTarget('Patient')).toEqual({ type: 'Patient', id: undefined, params: [] });
    expect(parseQueryTarget('Patient/abc-1.2')).toEqual({
      type: 'Patient',
      id: 'abc-1.2',
      params: [],
    });
    expect(parseQueryTarget('/Observation?code=4548-4&_count=2', ['subject=Patient/1'])).toEqual({
      type: 'Observation',
      id: undefined,
      params: [
        ['code', '4548-4'],
        ['_count', '2'],
        ['subject', 'Patient/1'],
      ],
    });
  });

  it.each(['patient', 'Patient/a/b', 'Patient/has space', '', '123', 'Patient/' + 'x'.repeat(65)])(
    'rejects %j with a usage error',
    (target) => {
      expect(() => parseQueryTarget(target)).toThrow(SmartError);
      try {
        parseQueryTarget(target);
      } catch (e) {
        expect((e as SmartError).exitCode).toBe(2);
      }
    },
  );
});
