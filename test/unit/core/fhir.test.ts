import fc from 'fast-check';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { SmartError } from '../../../src/core/errors.js';
import {
  type Bundle,
  type BundleEntry,
  type FhirRequester,
  type SearchPage,
  encodeSearchParams,
  isMatch,
  parseQueryString,
  entryText,
  parseSearchPage,
  streamSearch,
  parseQueryTarget,
  read,
  searchPages,
  toSearchParams,
} from '../../../src/core/fhir/index.js';
import { parseJsonBody, type HttpResponse } from '../../../src/core/http/index.js';
import { fhirError } from '../../../src/core/auth/session.js';
import { BundleScanner, MalformedJson } from '../../../src/core/bundle-scan.js';

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

// ---------------------------------------------------------------------------------------------
// Paging against a fake session

const BASE = 'http://fhir.test/fhir';

function response(
  url: string,
  status: number,
  body: unknown,
  contentType = 'application/fhir+json',
): HttpResponse {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return {
    status,
    ok: status >= 200 && status < 300,
    url,
    headers: new Headers({ 'content-type': contentType }),
    contentType,
    text,
    json: <T>() => parseJsonBody<T>(text, contentType, url, status),
  };
}

function chunked(text: string, size: number, failAfter?: number): Readable {
  const bytes = new TextEncoder().encode(text);
  return Readable.from(
    (function* () {
      for (let at = 0; at < bytes.length; at += size) {
        if (failAfter !== undefined && at >= failAfter) {
          throw Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
        }
        yield bytes.slice(at, at + size);
      }
    })(),
  );
}

async function entriesOf(page: SearchPage): Promise<BundleEntry[]> {
  const out: BundleEntry[] = [];
  for await (const e of page.entries()) out.push(e);
  return out;
}

/** A session that answers from a map of absolute URL -> body and records every request. */
function fakeSession(pages: Record<string, unknown>): FhirRequester & { requested: string[] } {
  const requested: string[] = [];
  return {
    requested,
    async request(pathOrUrl: string, init?: { stream?: boolean }) {
      const url = /^https?:/.test(pathOrUrl) ? pathOrUrl : `${BASE}/${pathOrUrl}`;
      if (new URL(url).origin !== new URL(BASE).origin) throw new Error(`session asked for ${url}`);
      requested.push(url);
      const body = pages[url];
      if (body === undefined)
        return response(url, 404, {
          resourceType: 'OperationOutcome',
          issue: [{ severity: 'error', code: 'not-found' }],
        });
      if (typeof body === 'object' && body && 'status' in body && 'raw' in body) {
        const b = body as { status: number; raw: string; type: string };
        return response(url, b.status, b.raw, b.type);
      }
      const res = response(url, 200, body);
      // Streamed like a real server: the body in small pieces, cut anywhere.
      return init?.stream ? { ...res, text: '', nodeBody: chunked(res.text, 7) } : res;
    },
    error: (res, method = 'GET') => fhirError(res, method, 'system/*.read'),
  };
}

const obs = (id: string): BundleEntry => ({
  fullUrl: `${BASE}/Observation/${id}`,
  resource: { resourceType: 'Observation', id },
  search: { mode: 'match' },
});

function bundle(entries: BundleEntry[] | undefined, next?: string, total?: number): Bundle {
  return {
    resourceType: 'Bundle',
    type: 'searchset',
    ...(total === undefined ? {} : { total }),
    link: [
      { relation: 'self', url: 'ignored' },
      ...(next ? [{ relation: 'next', url: next }] : []),
    ],
    ...(entries ? { entry: entries } : {}),
  };
}

async function collect(pages: AsyncIterable<Bundle>): Promise<Bundle[]> {
  const out: Bundle[] = [];
  for await (const p of pages) out.push(p);
  return out;
}

const ids = (bundles: Bundle[]) =>
  bundles.flatMap((b) => (b.entry ?? []).filter(isMatch).map((e) => e.resource?.id));

// Next links deliberately use a server-specific shape the client must not rebuild.
const P1 = `${BASE}/Observation?code=x`;
const P2 = `${BASE}/Observation?code=x&_page=2&_opaque=a%7Cb`;
const P3 = `${BASE}/Observation?_cursor=ZZZ`;

function threePages() {
  return fakeSession({
    [P1]: bundle([obs('1'), obs('2')], P2, 5),
    [P2]: bundle([obs('3'), obs('4')], P3, 5),
    [P3]: bundle([obs('5')], undefined, 5),
  });
}

describe('searchPages', () => {
  it('fetches one page by default and says there is more', async () => {
    const s = threePages();
    const pages = searchPages(s, 'Observation', [['code', 'x']]);
    expect(ids(await collect(pages))).toEqual(['1', '2']);
    expect(s.requested).toEqual([P1]);
    expect(pages.stats).toMatchObject({ pages: 1, matches: 2, total: 5, more: true, firstUrl: P1 });
  });

  it('--all follows Bundle.link[next] exactly as the server gave it', async () => {
    const s = threePages();
    const pages = searchPages(s, 'Observation', [['code', 'x']], { all: true });
    expect(ids(await collect(pages))).toEqual(['1', '2', '3', '4', '5']);
    expect(s.requested).toEqual([P1, P2, P3]);
    expect(pages.stats).toMatchObject({ pages: 3, matches: 5, more: false });
  });

  it('--limit stops at n matches, cuts the last page and fetches no page it does not need', async () => {
    const first = `${BASE}/Observation?code=x&_count=2`;
    const s = fakeSession({
      [first]: bundle([obs('1'), obs('2')], P2, 5),
      [P2]: bundle([obs('3'), obs('4')], P3, 5),
      [P3]: bundle([obs('5')]),
    });
    // The user's _count is kept, so the pages are the server's.
    const pages = searchPages(
      s,
      'Observation',
      [
        ['code', 'x'],
        ['_count', '2'],
      ],
      { limit: 3 },
    );
    const got = await collect(pages);
    expect(ids(got)).toEqual(['1', '2', '3']);
    expect(s.requested).toEqual([first, P2]);
    expect(got[1]!.entry).toHaveLength(1);
    expect(pages.stats).toMatchObject({ matches: 3, more: true, total: 5 });
  });

  it('--limit ending exactly on a page boundary does not fetch the next page', async () => {
    const first = `${BASE}/Observation?code=x&_count=2`;
    const s = fakeSession({ [first]: bundle([obs('1'), obs('2')], P2, 5) });
    const pages = searchPages(s, 'Observation', [['code', 'x']], { limit: 2, count: 2 });
    expect(ids(await collect(pages))).toEqual(['1', '2']);
    expect(s.requested).toEqual([first]);
    expect(pages.stats.more).toBe(true);
  });

  it('--limit asks for _count=limit when no page size was given; --count sets _count', async () => {
    const s = fakeSession({
      [`${BASE}/Observation?_count=7`]: bundle([obs('1')]),
      [`${BASE}/Observation?_count=50`]: bundle([obs('1')]),
    });
    await collect(searchPages(s, 'Observation', [], { limit: 7 }));
    await collect(searchPages(s, 'Observation', [['_count', '3']], { count: 50 }));
    expect(s.requested).toEqual([`${BASE}/Observation?_count=7`, `${BASE}/Observation?_count=50`]);
  });

  it('copes with a missing entry and counts only match (or mode-less) entries', async () => {
    const include: BundleEntry = {
      resource: { resourceType: 'Patient', id: 'p' },
      search: { mode: 'include' },
    };
    const outcome: BundleEntry = {
      resource: { resourceType: 'OperationOutcome', issue: [] },
      search: { mode: 'outcome' },
    };
    const noMode: BundleEntry = { resource: { resourceType: 'Observation', id: '9' } };
    const s = fakeSession({
      [`${BASE}/Observation?_count=2`]: bundle(undefined, `${BASE}/Observation?p=2`),
      [`${BASE}/Observation?p=2`]: bundle(
        [outcome, include, obs('1'), include, noMode, obs('2')],
        `${BASE}/Observation?p=3`,
      ),
    });
    const pages = searchPages(s, 'Observation', [], { limit: 2 });
    const got = await collect(pages);
    expect(ids(got)).toEqual(['1', '9']);
    // Cut after the second match: the trailing obs('2') is dropped, the include before it kept.
    expect(got[1]!.entry!.map((e) => e.resource!.id ?? e.resource!.resourceType)).toEqual([
      'OperationOutcome',
      'p',
      '1',
      'p',
      '9',
    ]);
    expect(pages.stats).toMatchObject({ matches: 2, more: true, pages: 2 });
  });

  it('refuses a next link on another origin, naming it, before any request goes there', async () => {
    const s = fakeSession({
      [`${BASE}/Patient`]: bundle([obs('1')], 'https://evil.example/fhir/Patient?_page=2'),
    });
    let err: unknown;
    try {
      await collect(searchPages(s, 'Patient', [], { all: true }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SmartError);
    expect((err as SmartError).code).toBe('foreign_origin');
    expect((err as SmartError).message).toContain('https://evil.example');
    expect(s.requested).toEqual([`${BASE}/Patient`]);
  });

  it('resolves a relative next link against the page URL', async () => {
    const s = fakeSession({
      [`${BASE}/Patient`]: bundle([obs('1')], '/fhir/Patient?_page=2'),
      [`${BASE}/Patient?_page=2`]: bundle([obs('2')]),
    });
    expect(ids(await collect(searchPages(s, 'Patient', [], { all: true })))).toEqual(['1', '2']);
  });

  it('stops with an error when the next link points back to the same page', async () => {
    const s = fakeSession({ [`${BASE}/Patient`]: bundle([obs('1')], `${BASE}/Patient`) });
    await expect(collect(searchPages(s, 'Patient', [], { all: true }))).rejects.toThrow(
      /next link of page 1 points back to page 1/,
    );
  });

  it('turns an error answer into the session error (404 names the URL, 403 the scopes)', async () => {
    const s = fakeSession({
      [`${BASE}/Observation`]: {
        status: 403,
        raw: JSON.stringify({
          resourceType: 'OperationOutcome',
          issue: [{ severity: 'fatal', code: 'forbidden' }],
        }),
        type: 'application/fhir+json',
      },
    });
    const e403 = await collect(searchPages(s, 'Observation', [])).catch((e: SmartError) => e);
    expect(e403).toBeInstanceOf(SmartError);
    expect((e403 as SmartError).exitCode).toBe(3);
    expect((e403 as SmartError).hint).toContain('system/*.read');
    const e404 = await collect(searchPages(s, 'Nothing', [])).catch((e: SmartError) => e);
    expect((e404 as SmartError).exitCode).toBe(1);
    expect((e404 as SmartError).message).toContain(`${BASE}/Nothing`);
  });

  it('names the content type of a non-JSON page, and refuses JSON that is not a Bundle', async () => {
    const s = fakeSession({
      [`${BASE}/Patient`]: { status: 200, raw: '<html>login</html>', type: 'text/html' },
      [`${BASE}/Group`]: { resourceType: 'Patient', id: 'x' },
    });
    await expect(collect(searchPages(s, 'Patient', []))).rejects.toThrow(/text\/html.*<html>login/);
    await expect(collect(searchPages(s, 'Group', []))).rejects.toThrow(/a Patient, not a Bundle/);
  });
});

describe('read', () => {
  it('GETs Type/id and returns the resource', async () => {
    const s = fakeSession({ [`${BASE}/Patient/p1`]: { resourceType: 'Patient', id: 'p1' } });
    expect(await read(s, 'Patient', 'p1')).toEqual({ resourceType: 'Patient', id: 'p1' });
    await expect(read(s, 'Patient', 'p2')).rejects.toThrow(/404/);
  });
});

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

describe('streamSearch', () => {
  it('stream: false keeps each page text as sent, and releases it when the next is asked for', async () => {
    const s = threePages();
    const seen: SearchPage[] = [];
    for await (const page of streamSearch(s, 'Observation', [['code', 'x']], {
      all: true,
      stream: false,
    })) {
      seen.push(page);
      expect(JSON.parse(page.text!)).toMatchObject({ resourceType: 'Bundle' });
    }
    expect(seen).toHaveLength(3);
    for (const page of seen) expect(page.text).toBeUndefined();
  });

  it('streamed pages hand out entries as they arrive, and the head once read', async () => {
    const s = threePages();
    const ids: string[] = [];
    for await (const page of streamSearch(s, 'Observation', [['code', 'x']], { all: true })) {
      expect(page.text).toBeUndefined();
      for await (const e of page.entries()) ids.push(e.resource!.id!);
      expect(page.head).toMatchObject({ resourceType: 'Bundle', total: 5 });
      expect(page.hasEntry).toBe(true);
    }
    expect(ids).toEqual(['1', '2', '3', '4', '5']);
  });

  it('a connection lost in the middle of a page is a network error (exit 4) naming the host', async () => {
    const s = threePages();
    const broken: FhirRequester = {
      ...s,
      request: async (url, init) => {
        const res = await s.request(url, init);
        return {
          ...res,
          nodeBody: chunked(JSON.stringify(bundle([obs('1'), obs('2')], P2)), 16, 48),
        };
      },
    };
    const err = await collect(searchPages(broken, 'Observation', [['code', 'x']])).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SmartError);
    expect((err as SmartError).exitCode).toBe(4);
    expect((err as SmartError).message).toContain('fhir.test');
  });

  it('a page that stalls fails after the idle timeout', async () => {
    const s = threePages();
    const stalled: FhirRequester = {
      ...s,
      request: async (url, init) => {
        const res = await s.request(url, init);
        return {
          ...res,
          nodeBody: new Readable({ read: () => undefined }),
        };
      },
    };
    const err = await collect(
      searchPages(stalled, 'Observation', [['code', 'x']], { idleTimeoutMs: 50 }),
    ).catch((e: unknown) => e);
    expect((err as SmartError).kind).toBe('network');
    expect((err as SmartError).message).toMatch(/no data from fhir\.test for 0s/);
  });

  it('malformed JSON in the middle of a streamed page is an error naming the URL', async () => {
    const s = threePages();
    const garbled: FhirRequester = {
      ...s,
      request: async (url, init) => {
        const res = await s.request(url, init);
        return {
          ...res,
          nodeBody: chunked('{"resourceType":"Bundle","entry":[{"a":1},{"b":}]}', 5),
        };
      },
    };
    const err = await collect(searchPages(garbled, 'Observation', [['code', 'x']])).catch(
      (e: unknown) => e,
    );
    expect((err as SmartError).code).toBe('bad_json');
    expect((err as SmartError).message).toContain(`${BASE}/Observation?code=x`);
  });

  it('counts matches the consumer did not iterate, so --limit still stops', async () => {
    const first = `${BASE}/Observation?code=x&_count=2`;
    const s = fakeSession({
      [first]: bundle([obs('1'), obs('2')], P2),
      [P2]: bundle([obs('3'), obs('4')], P3),
      [P3]: bundle([obs('5')]),
    });
    const stream = streamSearch(
      s,
      'Observation',
      [
        ['code', 'x'],
        ['_count', '2'],
      ],
      { limit: 3 },
    );
    let pages = 0;
    for await (const page of stream) {
      void page;
      pages++;
    }
    expect(pages).toBe(2);
    expect(s.requested).toEqual([first, P2]);
    expect(stream.stats).toMatchObject({ matches: 3, more: true });
  });
});
