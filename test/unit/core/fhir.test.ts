import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SmartError } from '../../../src/core/errors.js';
import {
  type Bundle,
  type BundleEntry,
  type FhirRequester,
  encodeSearchParams,
  isMatch,
  parseQueryString,
  parseQueryTarget,
  read,
  searchPages,
  toSearchParams,
} from '../../../src/core/fhir.js';
import { parseJsonBody, type HttpResponse } from '../../../src/core/http.js';
import { fhirError } from '../../../src/core/session.js';

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

/** A session that answers from a map of absolute URL -> body and records every request. */
function fakeSession(pages: Record<string, unknown>): FhirRequester & { requested: string[] } {
  const requested: string[] = [];
  return {
    requested,
    async request(pathOrUrl: string) {
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
      return response(url, 200, body);
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
      /same page/,
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
