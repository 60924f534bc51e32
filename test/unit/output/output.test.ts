import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { Context, OutputFormat } from '../../../src/context.js';
import { csvField, csvRow } from '../../../src/output/csv.js';
import { chooseOutputFormat, terminalWidth } from '../../../src/output/format.js';
import { printObject, printRecords } from '../../../src/output/index.js';
import { cellText, fitWidths, renderTable } from '../../../src/output/table.js';

function fakeCtx(format: OutputFormat) {
  const stdout = Object.assign(new PassThrough(), { isTTY: format === 'table', columns: 80 });
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d) => (out += d));
  stderr.on('data', (d) => (err += d));
  const ctx = {
    io: { stdout, stderr, stdin: new PassThrough() },
    outputFormat: () => format,
    log: {
      info: (m: string) => (err += m + '\n'),
      warn: () => undefined,
      verbose: () => undefined,
      debug: () => undefined,
    },
  } as unknown as Context;
  return { ctx, out: () => out, err: () => err };
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
  it('--output, then --json, then table on a TTY and json when piped', () => {
    expect(chooseOutputFormat({ output: 'csv', json: true }, true)).toBe('csv');
    expect(chooseOutputFormat({ json: true }, true)).toBe('json');
    expect(chooseOutputFormat({}, true)).toBe('table');
    expect(chooseOutputFormat({}, false)).toBe('json');
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

describe('printRecords / printObject', () => {
  it('prints a JSON array, NDJSON lines and CSV', async () => {
    const json = fakeCtx('json');
    await printRecords(json.ctx, rows, columns);
    expect(JSON.parse(json.out())).toEqual(rows);
    const nd = fakeCtx('ndjson');
    await printRecords(nd.ctx, rows, columns);
    expect(
      nd
        .out()
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l)),
    ).toEqual(rows);
    const csv = fakeCtx('csv');
    await printRecords(csv.ctx, rows, columns);
    expect(csv.out()).toBe(
      'kid,alg,note\r\na,RS384,plain\r\nb,ES384,"has, comma and ""quotes"""\r\n',
    );
  });

  it('says "(no results)" on stderr for an empty table, with nothing on stdout', async () => {
    const t = fakeCtx('table');
    await printRecords(t.ctx, [], columns);
    expect(t.out()).toBe('');
    expect(t.err()).toContain('(no results)');
  });

  it('prints one object as field/value lines for a person and as JSON otherwise', async () => {
    const t = fakeCtx('table');
    await printObject(t.ctx, { kid: 'a', alg: 'RS384', skipped: undefined }, [
      ['kid', 'a'],
      ['private key', '/k.pem'],
      ['bits', undefined],
    ]);
    expect(t.out()).toBe('kid          a\nprivate key  /k.pem\n');
    const j = fakeCtx('json');
    await printObject(j.ctx, { kid: 'a', nested: { x: 1 } });
    expect(JSON.parse(j.out())).toEqual({ kid: 'a', nested: { x: 1 } });
    const nd = fakeCtx('ndjson');
    await printObject(nd.ctx, { kid: 'a' });
    expect(nd.out()).toBe('{"kid":"a"}\n');
  });
});

describe('printObject alignment', () => {
  it('does not pad for fields that are left out', async () => {
    const t = fakeCtx('table');
    await printObject(t.ctx, {}, [
      ['kid', 'a'],
      ['a very long absent field', undefined],
    ]);
    expect(t.out()).toBe('kid  a\n');
  });
});
