import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  parseSearchPage,
  type Bundle,
  type BundleEntry,
  type Resource,
  type SearchPageStream,
  type SearchStats,
} from '../../../src/core/fhir/index.js';
import { defaultColumns } from '../../../src/output/resources.js';
import {
  httpHead,
  prettyBody,
  renderResource,
  renderSearch,
  type StreamRenderOptions,
} from '../../../src/output/stream.js';

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void) {
    this.text += chunk.toString('utf8');
    cb();
  }
}

const patient = (id: string, family = 'Doe'): BundleEntry => ({
  fullUrl: `http://x/fhir/Patient/${id}`,
  resource: {
    resourceType: 'Patient',
    id,
    name: [{ family, given: ['Jo'] }],
    gender: 'other',
    birthDate: '2000-01-01',
  },
  search: { mode: 'match' },
});

const include: BundleEntry = {
  resource: { resourceType: 'Organization', id: 'org', name: 'Clinic' },
  search: { mode: 'include' },
};
const outcome: BundleEntry = {
  resource: {
    resourceType: 'OperationOutcome',
    issue: [
      { severity: 'warning', code: 'processing', diagnostics: 'unknown parameter foo ignored' },
    ],
  },
  search: { mode: 'outcome' },
};

function page(entries: BundleEntry[] | undefined, extra: Partial<Bundle> = {}): Bundle {
  return {
    resourceType: 'Bundle',
    type: 'searchset',
    ...(entries ? { entry: entries } : {}),
    ...extra,
  };
}

/** Pages over fixed bundles; `onPull(i)` runs before page i is handed out. */
function source(
  bundles: Bundle[],
  stats: Partial<SearchStats> = {},
  onPull?: (i: number) => void,
): SearchPageStream {
  const s: SearchStats = { pages: 0, matches: 0, more: false, ...stats };
  return {
    stats: s,
    async *[Symbol.asyncIterator]() {
      for (let i = 0; i < bundles.length; i++) {
        onPull?.(i);
        s.pages++;
        const text = JSON.stringify(bundles[i]!);
        yield parseSearchPage({
          url: `http://x/fhir/Patient?page=${i}`,
          text,
          contentType: 'application/fhir+json',
          status: 200,
        });
      }
    },
  };
}

function options(format: StreamRenderOptions['format'], extra: Partial<StreamRenderOptions> = {}) {
  const info: string[] = [];
  const warn: string[] = [];
  const o: StreamRenderOptions = {
    format,
    columns: defaultColumns('Patient'),
    info: (l) => info.push(l),
    warn: (l) => warn.push(l),
    ...extra,
  };
  return { o, info, warn };
}

const pages3 = () => [
  page([patient('1'), include, patient('2')]),
  page(undefined),
  page([outcome, patient('3')]),
];

describe('ndjson', () => {
  it('writes one resource per line, included ones too; outcomes go to warnings', async () => {
    const out = new Capture();
    const { o, warn } = options('ndjson');
    const r = await renderSearch(out, source(pages3()), o);
    const lines = out.text
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Resource);
    expect(lines.map((l) => `${l.resourceType}/${l.id}`)).toEqual([
      'Patient/1',
      'Organization/org',
      'Patient/2',
      'Patient/3',
    ]);
    expect(out.text.endsWith('\n')).toBe(true);
    expect(r.shown).toBe(3);
    expect(warn).toEqual(['the server says: warning processing: unknown parameter foo ignored']);
  });

  it('writes each page before pulling the next (streaming)', async () => {
    const out = new Capture();
    const seenBeforePull: number[] = [];
    const pages = source(
      [page([patient('1')]), page([patient('2')]), page([patient('3')])],
      {},
      () => seenBeforePull.push(out.text.split('\n').length - 1),
    );
    await renderSearch(out, pages, options('ndjson').o);
    expect(seenBeforePull).toEqual([0, 1, 2]);
  });

  it('waits for a slow reader instead of buffering pages (backpressure)', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let written = 0;
    const slow = new Writable({
      highWaterMark: 16,
      write(chunk: Buffer, _e, cb) {
        written += chunk.length;
        void gate.then(() => cb());
      },
    });
    let pulled = 0;
    const big = (i: number) => page([patient(String(i), 'x'.repeat(1000))]);
    const pages = source([big(1), big(2), big(3), big(4)], {}, () => pulled++);
    // The first write fills the buffer: the renderer waits for 'drain' (or, without
    // backpressure, runs through every page and ends).
    const waitsForDrain = new Promise<void>((resolve) =>
      slow.on('newListener', (event) => event === 'drain' && resolve()),
    );
    const done = renderSearch(slow, pages, options('ndjson').o);
    await Promise.race([waitsForDrain, done]);
    // Nothing more is pulled until the reader drains.
    expect(pulled).toBe(1);
    release();
    await done;
    expect(pulled).toBe(4);
    expect(written).toBeGreaterThan(4000);
  });

  it('stops quietly when the reader goes away (EPIPE, `| head`), fetching no more pages', async () => {
    const broken = new Writable({
      highWaterMark: 1,
      write(_c, _e, cb) {
        cb(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
      },
    });
    broken.on('error', () => undefined);
    let pulled = 0;
    const many = Array.from({ length: 5 }, (_, i) => page([patient(String(i))]));
    const r = await renderSearch(
      broken,
      source(many, {}, () => pulled++),
      options('ndjson').o,
    );
    expect(r.closed).toBe(true);
    expect(pulled).toBeLessThan(5);
  });

  it('rejects on other output errors instead of hanging', async () => {
    const broken = new Writable({
      highWaterMark: 1,
      write(_c, _e, cb) {
        cb(Object.assign(new Error('disk full'), { code: 'ENOSPC' }));
      },
    });
    broken.on('error', () => undefined);
    const many = Array.from({ length: 5 }, (_, i) => page([patient(String(i))]));
    await expect(renderSearch(broken, source(many), options('ndjson').o)).rejects.toThrow(
      /disk full/,
    );
  });
});

describe('json', () => {
  it('one page: the server Bundle as returned (compact when piped, indented on a TTY)', async () => {
    const b = page([patient('1')], {
      total: 9,
      link: [{ relation: 'next', url: 'http://x/fhir/Patient?p=2' }],
    });
    for (const pretty of [false, true]) {
      const out = new Capture();
      await renderSearch(out, source([b]), options('json', { pretty }).o);
      expect(JSON.parse(out.text)).toEqual(b);
      expect(out.text.includes('\n  "resourceType"')).toBe(pretty);
    }
  });

  it('--all: one searchset Bundle of every entry, written as pages arrive', async () => {
    for (const pretty of [false, true]) {
      const out = new Capture();
      const before: string[] = [];
      const pages = source(pages3(), { total: 3, firstUrl: 'http://x/fhir/Patient' }, () =>
        before.push(out.text),
      );
      const { o } = options('json', { combine: true, pretty });
      const r = await renderSearch(out, pages, o);
      const combined = JSON.parse(out.text) as Bundle;
      expect(combined).toEqual({
        resourceType: 'Bundle',
        type: 'searchset',
        total: 3,
        link: [{ relation: 'self', url: 'http://x/fhir/Patient' }],
        entry: [patient('1'), include, patient('2'), outcome, patient('3')],
      });
      expect(r.shown).toBe(3);
      // Page 1's entries were on the way out before page 3 was pulled.
      expect(before[2]).toContain('"id":' + (pretty ? ' "2"' : '"2"'));
    }
  });

  it('--all with no results is still a valid Bundle', async () => {
    for (const pretty of [false, true]) {
      const out = new Capture();
      await renderSearch(
        out,
        source([page(undefined)], { total: 0 }),
        options('json', { combine: true, pretty }).o,
      );
      expect(JSON.parse(out.text)).toEqual({
        resourceType: 'Bundle',
        type: 'searchset',
        total: 0,
        entry: [],
      });
    }
  });
});

describe('table', () => {
  it('collects rows, fits the width, and prints a footer with shown / total and how to get more', async () => {
    const out = new Capture();
    const { o, info } = options('table', { width: 60 });
    await renderSearch(out, source(pages3(), { total: 10, more: true }), o);
    const lines = out.text.trimEnd().split('\n');
    expect(lines.every((l) => l.length <= 60)).toBe(true);
    expect(out.text).toContain('Jo Doe');
    // Only matches are rows: 3 patients, not the Organization or the OperationOutcome.
    expect(out.text.match(/Jo Doe/g)).toHaveLength(3);
    expect(out.text).not.toContain('Clinic');
    expect(info).toEqual(['shown 3 of 10 — use --all or --limit <n> for more']);
  });

  it('says when everything was shown, and when nothing was found', async () => {
    const a = options('table');
    await renderSearch(new Capture(), source([page([patient('1')])], { total: 1 }), a.o);
    expect(a.info).toEqual(['shown 1 of 1']);
    const b = options('table');
    const out = new Capture();
    await renderSearch(out, source([page(undefined)], { total: 0 }), b.o);
    expect(out.text).toBe('');
    expect(b.info).toEqual(['(no results)']);
    const c = options('table');
    await renderSearch(new Capture(), source([page([patient('1')])], { more: true }), c.o);
    expect(c.info).toEqual(['shown 1 — use --all or --limit <n> for more']);
  });
});

describe('csv', () => {
  it('header row, then the table columns, CRLF records', async () => {
    const out = new Capture();
    await renderSearch(out, source(pages3()), options('csv').o);
    expect(out.text).toBe(
      'id,name,gender,birthDate\r\n1,Jo Doe,other,2000-01-01\r\n2,Jo Doe,other,2000-01-01\r\n3,Jo Doe,other,2000-01-01\r\n',
    );
  });
});

describe('renderResource (a read)', () => {
  const r = patient('1').resource!;
  it.each([
    ['json', (t: string) => expect(JSON.parse(t)).toEqual(r)],
    ['ndjson', (t: string) => expect(t).toBe(JSON.stringify(r) + '\n')],
    [
      'csv',
      (t: string) => expect(t).toBe('id,name,gender,birthDate\r\n1,Jo Doe,other,2000-01-01\r\n'),
    ],
    ['table', (t: string) => expect(t).toMatch(/│ 1 +│ Jo Doe +│ other +│ 2000-01-01 │/)],
  ] as const)('%s', async (format, check) => {
    const out = new Capture();
    await renderResource(out, r, options(format).o);
    check(out.text);
  });
});

describe('helpers for smart api', () => {
  it('prettyBody indents JSON and leaves other text alone', () => {
    expect(prettyBody('{"a":1}')).toBe('{\n  "a": 1\n}\n');
    expect(prettyBody('<html>')).toBe('<html>');
  });

  it('httpHead prints the status line and headers like curl -i', () => {
    expect(
      httpHead(404, 'Not Found', new Headers({ 'Content-Type': 'application/fhir+json' })),
    ).toBe('HTTP/1.1 404 Not Found\ncontent-type: application/fhir+json\n\n');
  });
});
