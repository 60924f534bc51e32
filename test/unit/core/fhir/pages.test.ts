import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SmartError } from '../../../../src/core/errors.js';
import { entryText, parseSearchPage } from '../../../../src/core/fhir/index.js';
import { BundleScanner, MalformedJson } from '../../../../src/core/bundle-scan.js';
import { BASE, entriesOf, obs, bundle } from './fixtures.js';

// ---------------------------------------------------------------------------------------------
// Reading a page entry by entry

describe('parseSearchPage', () => {
  const member = fc.string({ maxLength: 8 }).filter((k) => k !== 'entry' && k !== 'resourceType');
  const entryArb = fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 3 }), {
    maxKeys: 4,
  });
  const bundleArb = fc
    .record({
      head: fc.uniqueArray(fc.tuple(member, fc.jsonValue({ maxDepth: 3 })), {
        selector: ([k]) => k,
        maxLength: 5,
      }),
      entries: fc.option(fc.array(entryArb, { maxLength: 6 }), { nil: undefined }),
      at: fc.nat(),
      indent: fc.constantFrom(undefined, 2, '\t'),
    })
    .map((drawn) => {
      // Values as JSON gives them back (fc.jsonValue may draw -0, which JSON writes as 0).
      const { head, entries, at, indent } = {
        ...drawn,
        head: JSON.parse(JSON.stringify(drawn.head)) as typeof drawn.head,
        entries:
          drawn.entries &&
          (JSON.parse(JSON.stringify(drawn.entries)) as NonNullable<typeof drawn.entries>),
      };
      const members: [string, unknown][] = [['resourceType', 'Bundle'], ...head];
      if (entries) members.splice(at % (members.length + 1), 0, ['entry', entries]);
      const bundle: Record<string, unknown> = {};
      for (const [k, v] of members)
        Object.defineProperty(bundle, k, {
          value: v,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      return { bundle, entries, text: JSON.stringify(bundle, null, indent) };
    });

  it('the scanner finds every entry and member, however the text is cut into pieces', () => {
    fc.assert(
      fc.property(
        bundleArb,
        fc.array(fc.nat(), { maxLength: 12 }),
        ({ bundle, entries, text }, cuts) => {
          const points = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((x, y) => x - y);
          const scanner = new BundleScanner();
          const found: unknown[] = [];
          let from = 0;
          for (const at of [...points, text.length]) {
            scanner.push(text.slice(from, at), (t) => found.push(JSON.parse(t)));
            from = at;
          }
          scanner.end();
          expect(found).toEqual(entries ?? []);
          const { entry: _entry, ...head } = JSON.parse(text) as Record<string, unknown>;
          void _entry;
          expect(scanner.head).toEqual(head);
          expect(Object.keys(scanner.head)).toEqual(
            Object.keys(bundle).filter((k) => k !== 'entry'),
          );
          expect(scanner.entryIndex).toBe(entries ? Object.keys(bundle).indexOf('entry') : -1);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('rejects text that is not one JSON object, wherever it breaks', () => {
    for (const bad of [
      '',
      '[1]',
      '{"a":1',
      '{"a":1}}',
      '{"a":}',
      '{"entry":[{"a":1},]}',
      '{"a":1,}',
      '{"a" 1}',
      '{"entry":[1 2]}',
    ]) {
      const scanner = new BundleScanner();
      expect(() => {
        scanner.push(bad, () => undefined);
        scanner.end();
      }, bad).toThrow(MalformedJson);
    }
  });

  it('reads any Bundle text as a page, in order, as JSON.parse does', async () => {
    await fc.assert(
      fc.asyncProperty(bundleArb, async ({ bundle, entries, text }) => {
        const page = parseSearchPage({
          url: `${BASE}/X`,
          text,
          contentType: 'application/fhir+json',
          status: 200,
        });
        expect(page.hasEntry).toBe(entries !== undefined);
        expect(await entriesOf(page)).toEqual(entries ?? []);
        const rebuilt = await page.bundle();
        expect(rebuilt).toEqual(JSON.parse(text));
        expect(Object.keys(rebuilt)).toEqual(Object.keys(bundle));
        expect(JSON.stringify(rebuilt)).toBe(JSON.stringify(bundle));
      }),
      { numRuns: 300 },
    );
  });

  it("keeps an entry's text when JSON.stringify would change one of its numbers", async () => {
    const text =
      '{"resourceType":"Bundle","entry":[' +
      '{"resource":{"resourceType":"Observation","id":"a","valueQuantity":{"value":1.50}}},' +
      '{"resource":{"resourceType":"Observation","id":"b","valueQuantity":{"value":1.5}}},' +
      '{"resource":{"resourceType":"Observation","id":"c","valueInteger":12345678901234567890}},' +
      '{"resource":{"resourceType":"Observation","id":"d","valueQuantity":{"value":1E2}}},' +
      '{"resource":{"resourceType":"Observation","id":"e","issued":"2024-01-01T00:00:00.000Z"}}]}';
    const page = parseSearchPage({
      url: `${BASE}/Observation`,
      text,
      contentType: 'application/fhir+json',
      status: 200,
    });
    const kept = (await entriesOf(page)).map((e) => entryText(e) !== undefined);
    expect(kept).toEqual([true, false, true, true, false]);
    const first = (
      await entriesOf(parseSearchPage({ url: `${BASE}/O`, text, contentType: '', status: 200 }))
    )[0]!;
    expect(entryText(first)).toBe(
      '{"resource":{"resourceType":"Observation","id":"a","valueQuantity":{"value":1.50}}}',
    );
    // Not an enumerable member: JSON.stringify and toEqual do not see it.
    expect(Object.keys(first)).toEqual(['resource']);
  });

  it('keeps the text of every entry whose numbers JSON.stringify would write differently', async () => {
    // Any JSON number text: sign, integer part, fraction, exponent.
    const numberText = fc
      .tuple(
        fc.boolean(),
        fc.oneof(fc.constant('0'), fc.stringMatching(/^[1-9][0-9]{0,20}$/)),
        fc.option(fc.stringMatching(/^[0-9]{1,20}$/), { nil: undefined }),
        fc.option(fc.stringMatching(/^[eE][+-]?[0-9]{1,3}$/), { nil: undefined }),
      )
      .map(
        ([neg, int, frac, exp]) => `${neg ? '-' : ''}${int}${frac ? `.${frac}` : ''}${exp ?? ''}`,
      );
    await fc.assert(
      fc.asyncProperty(fc.array(numberText, { minLength: 1, maxLength: 4 }), async (nums) => {
        const entry = `{"resource":{"resourceType":"Basic","n":[${nums.join(',')}]}}`;
        const page = parseSearchPage({
          url: `${BASE}/Basic`,
          text: `{"resourceType":"Bundle","entry":[${entry}]}`,
          contentType: 'application/fhir+json',
          status: 200,
        });
        const [e] = await entriesOf(page);
        if (JSON.stringify(JSON.parse(entry)) !== entry) expect(entryText(e!)).toBe(entry);
      }),
      { numRuns: 500 },
    );
  });

  it('keeps the text as sent, and cuts entries after the wanted matches', async () => {
    const text = JSON.stringify(
      bundle([
        obs('1'),
        { resource: { resourceType: 'Patient', id: 'p' }, search: { mode: 'include' } },
        obs('2'),
        obs('3'),
      ]),
    );
    const page = parseSearchPage(
      { url: `${BASE}/X`, text, contentType: 'application/fhir+json', status: 200 },
      2,
    );
    expect(page.text).toBe(text);
    expect((await entriesOf(page)).map((e) => e.resource!.id)).toEqual(['1', 'p', '2']);
    expect((await page.bundle()).entry).toHaveLength(3);
  });

  it('names the content type of a body that is not JSON, and a JSON value that is not a Bundle', () => {
    const html = {
      url: `${BASE}/X`,
      text: '<!doctype html><p>hi',
      contentType: 'text/html; charset=utf-8',
      status: 200,
    };
    expect(() => parseSearchPage(html)).toThrow(
      /expected JSON from .* but got text\/html \(HTTP 200\): <!doctype html><p>hi/,
    );
    const arr = { url: `${BASE}/X`, text: '[1,2]', contentType: 'application/json', status: 200 };
    expect(() => parseSearchPage(arr)).toThrow(/not a Bundle/);
    const oo = {
      url: `${BASE}/X`,
      text: '{"resourceType":"OperationOutcome","issue":[]}',
      contentType: 'application/json',
      status: 200,
    };
    expect(() => parseSearchPage(oo)).toThrow(/returned a OperationOutcome, not a Bundle/);
    const broken = {
      url: `${BASE}/X`,
      text: '{"resourceType":"Bundle","entry":[{"a":1}',
      contentType: 'application/json',
      status: 200,
    };
    expect(() => parseSearchPage(broken)).toThrow(SmartError);
  });

  it('skips entries that are not objects', async () => {
    const text =
      '{"resourceType":"Bundle","entry":[null,1,{"resource":{"resourceType":"Patient","id":"a"}},true],"total":1}';
    const page = parseSearchPage({
      url: `${BASE}/X`,
      text,
      contentType: 'application/json',
      status: 200,
    });
    expect((await entriesOf(page)).map((e) => e.resource!.id)).toEqual(['a']);
    const scanner = new BundleScanner();
    const found: string[] = [];
    scanner.push(text, (t) => found.push(t));
    expect(found).toEqual([
      'null',
      '1',
      '{"resource":{"resourceType":"Patient","id":"a"}}',
      'true',
    ]);
    expect(scanner.head).toEqual({ resourceType: 'Bundle', total: 1 });
  });
});
