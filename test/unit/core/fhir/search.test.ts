import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { SmartError } from '../../../../src/core/errors.js';
import {
  type BundleEntry,
  type FhirRequester,
  type SearchPage,
  streamSearch,
  searchPages,
} from '../../../../src/core/fhir/index.js';
import {
  BASE,
  chunked,
  fakeSession,
  obs,
  bundle,
  collect,
  ids,
  P1,
  P2,
  P3,
  threePages,
} from './fixtures.js';

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
