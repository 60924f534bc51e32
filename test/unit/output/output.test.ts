import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { OutputFormat } from '../../../src/output/format.js';
import { csvField, csvRow } from '../../../src/output/csv.js';
import { terminalWidth } from '../../../src/output/format.js';
import { decideFormat, render, type RenderIO } from '../../../src/output/render.js';
import { cellText, fitWidths, renderTable } from '../../../src/output/table.js';

function fakeCtx(format: OutputFormat) {
  const stdout = Object.assign(new PassThrough(), { isTTY: format === 'table', columns: 80 });
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d) => (out += d));
  stderr.on('data', (d) => (err += d));
  const ctx: RenderIO = {
    io: { stdout },
    env: {},
    log: {
      info: (m: string) => void (err += m + '\n'),
      warn: (m: string) => void (err += `warning: ${m}\n`),
      verbose: () => undefined,
    },
  };
  return { ctx, format, out: () => out, err: () => err };
}

const rows = [
  { kid: 'a', alg: 'RS384', note: 'plain' },
  { kid: 'b', alg: 'ES384', note: 'has, comma and "quotes"' },
];
const columns = [
  { header: 'kid', get: (r: (typeof rows)[number]) => r.kid },
  { header: 'alg', get: (r: (typeof rows)[number]) => r.alg },
  { header: 'note', get: (r: (typeof rows)[number]) => r.note },
];

describe('csv', () => {
  it('quotes only what needs quoting (RFC 4180)', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(csvField(undefined)).toBe('');
    expect(csvField(3)).toBe('3');
    expect(csvField({ a: 1 })).toBe('"{""a"":1}"');
    expect(csvRow(['a', 'b,c'])).toBe('a,"b,c"\r\n');
  });
});

describe('format choice', () => {
  it('--output, then --json, then table on a TTY and json when piped', async () => {
    expect(await decideFormat('records', 'x', { output: 'csv', json: true }, true)).toBe('csv');
    expect(await decideFormat('records', 'x', { json: true }, true)).toBe('json');
    expect(await decideFormat('records', 'x', {}, true)).toBe('table');
    expect(await decideFormat('records', 'x', {}, false)).toBe('json');
  });

  it('terminal width: the stream, else $COLUMNS, else 80 (a pty may report 0 columns)', () => {
    expect(terminalWidth({ columns: 132 }, { COLUMNS: '200' })).toBe(132);
    expect(terminalWidth({ columns: 0 }, {})).toBe(80);
    expect(terminalWidth({ columns: 0 }, { COLUMNS: '100' })).toBe(100);
    expect(terminalWidth({}, { COLUMNS: 'wide' })).toBe(80);
    expect(terminalWidth({}, { COLUMNS: '0' })).toBe(80);
    expect(terminalWidth(undefined)).toBe(80);
  });
});

describe('table', () => {
  it('renders headers and cells', () => {
    const text = renderTable(rows, columns, 120);
    expect(text).toContain('kid');
    expect(text).toContain('ES384');
    expect(text.endsWith('\n')).toBe(true);
  });

  it('shrinks the widest columns to fit the terminal', () => {
    const widths = fitWidths([10, 80, 5], 60);
    expect(widths.reduce((a, b) => a + b, 0) + 3 * 3 + 1).toBeLessThanOrEqual(60);
    expect(widths[0]).toBe(10);
    expect(widths[2]).toBe(5);
    const text = renderTable(
      [{ v: 'x'.repeat(200) }],
      [{ header: 'v', get: (r: { v: string }) => r.v }],
      40,
    );
    for (const line of text.trimEnd().split('\n')) expect(line.length).toBeLessThanOrEqual(40);
    expect(text).toContain('…');
  });

  it('turns values into cell text', () => {
    expect(cellText(null)).toBe('');
    expect(cellText(['a', 1])).toBe('a, 1');
    expect(cellText({ a: 1 })).toBe('{"a":1}');
  });
});

const show = (x: ReturnType<typeof fakeCtx>, r: Parameters<typeof render>[0]) =>
  render(r, x.format, x.ctx);

describe('render: records and objects', () => {
  it('prints a JSON array, NDJSON lines and CSV', async () => {
    const json = fakeCtx('json');
    await show(json, { kind: 'records', rows, columns });
    expect(JSON.parse(json.out())).toEqual(rows);
    const nd = fakeCtx('ndjson');
    await show(nd, { kind: 'records', rows, columns });
    expect(
      nd
        .out()
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l)),
    ).toEqual(rows);
    const csv = fakeCtx('csv');
    await show(csv, { kind: 'records', rows, columns });
    expect(csv.out()).toBe(
      'kid,alg,note\r\na,RS384,plain\r\nb,ES384,"has, comma and ""quotes"""\r\n',
    );
  });

  it('says "(no results)" on stderr for an empty table, with nothing on stdout', async () => {
    const t = fakeCtx('table');
    await show(t, { kind: 'records', rows: [], columns });
    expect(t.out()).toBe('');
    expect(t.err()).toContain('(no results)');
  });

  it('prints the document instead of the rows for -o json; notes only for the others', async () => {
    const result = {
      kind: 'records' as const,
      rows,
      columns,
      document: { keys: 2 },
      note: 'two keys',
    };
    const j = fakeCtx('json');
    await show(j, result);
    expect(JSON.parse(j.out())).toEqual({ keys: 2 });
    expect(j.err()).toBe('');
    const c = fakeCtx('csv');
    await show(c, result);
    expect(c.out()).toMatch(/^kid,alg,note\r\n/);
    expect(c.err()).toBe('two keys\n');
  });

  it('prints one object as field/value lines for a person and as JSON otherwise', async () => {
    const t = fakeCtx('table');
    await show(t, {
      kind: 'object',
      value: { kid: 'a', alg: 'RS384', skipped: undefined },
      fields: [
        ['kid', 'a'],
        ['private key', '/k.pem'],
        ['bits', undefined],
      ],
    });
    expect(t.out()).toBe('kid          a\nprivate key  /k.pem\n');
    const j = fakeCtx('json');
    await show(j, { kind: 'object', value: { kid: 'a', nested: { x: 1 } } });
    expect(JSON.parse(j.out())).toEqual({ kid: 'a', nested: { x: 1 } });
    const nd = fakeCtx('ndjson');
    await show(nd, { kind: 'object', value: { kid: 'a' } });
    expect(nd.out()).toBe('{"kid":"a"}\n');
  });

  it('does not pad for fields that are left out', async () => {
    const t = fakeCtx('table');
    await show(t, {
      kind: 'object',
      value: {},
      fields: [
        ['kid', 'a'],
        ['a very long absent field', undefined],
      ],
    });
    expect(t.out()).toBe('kid  a\n');
  });
});

describe('render: text for a shell', () => {
  const token = { kind: 'text' as const, text: 'eyJ.a.b', json: { access_token: 'eyJ.a.b' } };

  it('is the text alone as a table, the JSON behind it with -o json / ndjson', async () => {
    const t = fakeCtx('table');
    await show(t, token);
    expect(t.out()).toBe('eyJ.a.b\n');
    const j = fakeCtx('json');
    await show(j, token);
    expect(j.out()).toBe('{\n  "access_token": "eyJ.a.b"\n}\n');
    const nd = fakeCtx('ndjson');
    await show(nd, token);
    expect(nd.out()).toBe('{"access_token":"eyJ.a.b"}\n');
  });

  it('stays the text alone when piped without -o (`$(smart token)`), JSON when asked', async () => {
    expect(await decideFormat('text', 'token', {}, false)).toBe('table');
    expect(await decideFormat('text', 'token', { json: true }, false)).toBe('json');
    expect(await decideFormat('text', 'token', { output: 'ndjson' }, false)).toBe('ndjson');
    // The demo is read by a person even in a CI log; data is JSON when piped.
    expect(await decideFormat('demo', 'demo', {}, false)).toBe('table');
    expect(await decideFormat('discover', 'discover', {}, false)).toBe('json');
  });
});

describe('render: a format that makes no sense for the result', () => {
  it('is a usage error (exit 2) that names the formats that do', async () => {
    const e = await decideFormat('discover', 'discover', { output: 'csv' }, false).catch(
      (x: unknown) => x,
    );
    expect(e).toMatchObject({
      kind: 'usage',
      exitCode: 2,
      code: 'unsupported_format',
      message: 'discover cannot print csv: use -o table, json or ndjson',
    });
    await expect(decideFormat('decode', 'decode', { output: 'csv' }, true)).rejects.toThrow(
      'decode cannot print csv: use -o table, json or ndjson',
    );
    await expect(decideFormat('text', 'token', { output: 'csv' }, true)).rejects.toThrow(
      'token cannot print csv: use -o table, json or ndjson',
    );
  });

  it('render() refuses it too, without writing anything', async () => {
    const c = fakeCtx('csv');
    await expect(show(c, { kind: 'serving', value: { url: 'http://x' } })).rejects.toMatchObject({
      code: 'unsupported_format',
    });
    expect(c.out()).toBe('');
  });

  it('every format renders every kind, or says it cannot', async () => {
    const { OUTPUT_FORMATS } = await import('../../../src/output/format.js');
    const { renderersOf } = await import('../../../src/output/render.js');
    const { PIPED_FORMAT } = await import('../../../src/output/results.js');
    for (const f of OUTPUT_FORMATS) {
      const set = await renderersOf(f);
      for (const kind of Object.keys(PIPED_FORMAT)) {
        const r = (set as unknown as Record<string, unknown>)[kind];
        expect(typeof r === 'function' || r === 'unsupported', `${f} ${kind}`).toBe(true);
      }
    }
    // A kind's default when piped is a format that can show it.
    for (const [kind, f] of Object.entries(PIPED_FORMAT)) {
      expect((await renderersOf(f))[kind as keyof typeof PIPED_FORMAT]).not.toBe('unsupported');
    }
  });
});
