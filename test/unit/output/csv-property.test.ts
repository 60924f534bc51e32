import fc from 'fast-check';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  parseSearchPage,
  type Bundle,
  type SearchPageStream,
} from '../../../src/core/fhir/index.js';
import { csvField, csvRow } from '../../../src/output/csv.js';
import { renderSearch } from '../../../src/output/stream.js';
import { cellText } from '../../../src/output/table.js';

/** A strict RFC 4180 reader: CRLF records, quoted fields with "" escapes. Throws on anything else. */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let i = 0;
  while (i < text.length) {
    const record: string[] = [];
    for (;;) {
      let field = '';
      if (text[i] === '"') {
        i++;
        for (;;) {
          if (i >= text.length) throw new Error('unterminated quoted field');
          if (text[i] === '"') {
            if (text[i + 1] === '"') {
              field += '"';
              i += 2;
              continue;
            }
            i++;
            break;
          }
          field += text[i++];
        }
      } else {
        while (i < text.length && text[i] !== ',' && text[i] !== '\r' && text[i] !== '\n') {
          if (text[i] === '"') throw new Error(`bare quote at ${i}`);
          field += text[i++];
        }
      }
      record.push(field);
      if (text[i] === ',') {
        i++;
        continue;
      }
      if (text.startsWith('\r\n', i)) {
        i += 2;
        break;
      }
      throw new Error(`expected , or CRLF at ${i}, got ${JSON.stringify(text[i])}`);
    }
    records.push(record);
  }
  return records;
}

const nasty = fc.string({
  unit: fc.oneof(
    fc.constantFrom('"', ',', '\r', '\n', '\r\n', ' ', ';', "'", 'é', '😀', '\t'),
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }),
  ),
  maxLength: 30,
});

describe('CSV writer (RFC 4180)', () => {
  it('round-trips any table of strings through a strict RFC 4180 reader', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }).chain((width) =>
          fc.array(fc.array(nasty, { minLength: width, maxLength: width }), {
            minLength: 1,
            maxLength: 10,
          }),
        ),
        (rows) => {
          const text = rows.map((r) => csvRow(r)).join('');
          expect(parseCsv(text)).toEqual(rows);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('quotes exactly the fields that need it', () => {
    fc.assert(
      fc.property(nasty, (s) => {
        const f = csvField(s);
        const needs = /[",\r\n]/.test(s);
        expect(f.startsWith('"') && f.endsWith('"') && f.length >= 2).toBe(needs);
        if (!needs) expect(f).toBe(s);
      }),
    );
  });

  it('writes non-strings as text: numbers, booleans, objects as JSON, nothing as empty', () => {
    expect(csvRow([1.5, true, null, undefined, { a: 'x,y' }])).toBe(
      '1.5,true,,,"{""a"":""x,y""}"\r\n',
    );
  });

  it('the streaming csv renderer writes a header and one parsable record per match', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(nasty, { maxLength: 40 }), { minLength: 1, maxLength: 4 }),
        async (pages) => {
          let n = 0;
          const bundles: Bundle[] = pages.map((names) => ({
            resourceType: 'Bundle',
            entry: names.map((name) => ({
              resource: { resourceType: 'Thing', id: String(++n), name },
            })),
          }));
          const stats = { pages: 0, matches: 0, more: false };
          const source: SearchPageStream = {
            stats,
            async *[Symbol.asyncIterator]() {
              for (const b of bundles) {
                yield parseSearchPage({
                  url: 'http://x/fhir/Thing',
                  text: JSON.stringify(b),
                  contentType: 'application/json',
                  status: 200,
                });
              }
            },
          };
          let out = '';
          const sink = new Writable({
            write(chunk, _enc, cb) {
              out += String(chunk);
              cb();
            },
          });
          const columns = [
            { header: 'id', get: (r: Record<string, unknown>) => r.id },
            { header: 'name, "quoted"', get: (r: Record<string, unknown>) => r.name },
          ];
          await renderSearch(sink, source, { format: 'csv', columns });
          const records = parseCsv(out);
          expect(records[0]).toEqual(['id', 'name, "quoted"']);
          const expected = bundles.flatMap((b) =>
            b.entry!.map((e) => [e.resource!.id!, cellText(e.resource!.name)]),
          );
          expect(records.slice(1)).toEqual(expected);
        },
      ),
      { numRuns: 100 },
    );
  });
});
