/* eslint-disable no-control-regex */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { OutStream } from '../../../src/context.js';
import { controlEscaper, escapeControls } from '../../../src/output/escape.js';
import { createExportReporter } from '../../../src/output/export-progress.js';
import { csvRow } from '../../../src/output/csv.js';
import { renderTable } from '../../../src/output/table.js';

const EVIL = 'a\u001b[2J\u001b]0;t\u0007b\u009b1m\u202ec\u007f\r';

describe('escapeControls', () => {
  it('shows C0, DEL, C1 and bidi overrides as \\u escapes; keeps tab and newline', () => {
    expect(escapeControls(EVIL + '\tx\ny')).toBe(
      'a\\u001b[2J\\u001b]0;t\\u0007b\\u009b1m\\u202ec\\u007f\\u000d\tx\ny',
    );
    expect(escapeControls('one\ttwo\nthree', { oneLine: true })).toBe('one\\u0009two\\u000athree');
    expect(escapeControls('Müller 日本 ✓')).toBe('Müller 日本 ✓');
  });

  it('streams: a character split across chunks comes out whole', () => {
    const bytes = Buffer.from('é\u001b');
    const e = controlEscaper();
    expect(e.push(bytes.subarray(0, 1)) + e.push(bytes.subarray(1)) + e.end()).toBe('é\\u001b');
  });

  it('table cells are escaped; CSV only for a terminal', () => {
    const table = renderTable([{ v: EVIL }], [{ header: 'v', get: (r) => r.v }]);
    expect(table).not.toMatch(/[\u001b\u0007\u009b]/);
    expect(table).toContain('a\\u001b[2J');
    expect(csvRow([EVIL])).toContain('\u001b[2J');
    expect(csvRow([EVIL], true)).not.toMatch(/[\u001b\u0007\u009b]/);
  });

  it("export progress lines escape the server's words", () => {
    let text = '';
    const err = new Writable({
      write(chunk, _enc, cb) {
        text += chunk.toString();
        cb();
      },
    }) as OutStream;
    const r = createExportReporter('plain', { stdout: err, stderr: err });
    r.onEvent({ event: 'status', progress: `50%${EVIL}`, elapsedMs: 0, nextPollMs: 1 });
    r.onEvent({ event: 'warning', message: `server says ${EVIL}` });
    expect(text).not.toMatch(/[\u001b\u0007\u009b]/);
    expect(text).toContain('50%a\\u001b[2J');
    expect(text.split('\n').length).toBe(3);
  });
});

describe('huge tables', () => {
  it('renderTable draws 200,000 rows (no spread of every cell into Math.max)', () => {
    const rows = Array.from({ length: 200_000 }, (_, i) => ({ id: `r${i}` }));
    const text = renderTable(rows, [{ header: 'id', get: (r) => r.id }]);
    const lines = text.trimEnd().split('\n');
    expect(lines.length).toBe(200_003);
    expect(lines[lines.length - 2]).toBe('│ r199999 │');
  });
});
