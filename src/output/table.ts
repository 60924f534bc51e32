import { createRequire } from 'node:module';
import { escapeControls } from './escape.js';
import { DEFAULT_WIDTH } from './format.js';

// cli-table3's own measures (display width: wide characters count 2; cutting to a width), for
// text that is not plain ASCII.
const utils = createRequire(import.meta.url)('cli-table3/src/utils.js') as {
  strlen: (s: string) => number;
  truncate: (s: string, width: number, mark?: string) => string;
};
const ASCII = /^[\x20-\x7e]*$/;

/** The columns a string takes on a terminal. */
function displayWidth(s: string): number {
  return ASCII.test(s) ? s.length : utils.strlen(s);
}

export interface Column<T = Record<string, unknown>> {
  header: string;
  get: (row: T) => unknown;
  /** Shrunk only after the others (e.g. an Observation's value, whose unit is at its end). */
  keep?: boolean;
}

export function cellText(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map(cellText).join(', ');
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** A cell as drawn: one line, control characters escaped (a table is always for a person). */
export function cellLine(value: unknown): string {
  return escapeControls(cellText(value).replace(/\s+/g, ' '), { oneLine: true });
}

function truncate(s: string, width: number, keepTail = false): string {
  if (s.length <= width) return s;
  // `2.856519918445372 %` -> `2.8565199… %`: a short last word (a unit) stays.
  const space = s.lastIndexOf(' ');
  const tail = space > 0 ? s.slice(space) : '';
  if (keepTail && tail.length > 1 && tail.length <= 12 && width - tail.length >= 4) {
    return s.slice(0, width - tail.length - 1) + '…' + tail;
  }
  return width <= 1 ? s.slice(0, width) : s.slice(0, width - 1) + '…';
}

/**
 * Fit columns into the terminal width: each column gets what it needs, and the widest ones are
 * shrunk (with an ellipsis) until the table fits. Columns marked `keep` (at most half the width
 * between them, unless the others need less) are shrunk only once the others are down to 8.
 */
export function fitWidths(natural: number[], total: number, keep: boolean[] = []): number[] {
  const overhead = natural.length * 3 + 1; // borders and padding
  const widths = natural.map((w) => Math.max(w, 1));
  const budget = Math.max(total - overhead, natural.length * 4);
  const kept = widths.map((_, i) => keep[i] === true);
  if (kept.some(Boolean) && !kept.every(Boolean)) {
    // Half the width, or whatever the others leave when they need less.
    const others = widths.reduce((a, w, i) => a + (kept[i] ? 0 : w), 0);
    const n = kept.filter(Boolean).length;
    const share = Math.max(Math.floor(budget / 2 / n), Math.floor((budget - others) / n));
    kept.forEach((k, i) => {
      if (k) widths[i] = Math.min(widths[i]!, Math.max(share, 4));
    });
    shrink(widths, budget, 8, (i) => !kept[i]);
  }
  shrink(widths, budget, 4, () => true);
  return widths;
}

/** Take from the widest of the `which` columns, down to `floor`, until the sum fits `budget`. */
function shrink(widths: number[], budget: number, floor: number, which: (i: number) => boolean) {
  let sum = widths.reduce((a, b) => a + b, 0);
  while (sum > budget) {
    const candidates = widths.map((w, i) => (which(i) ? w : -1));
    const max = Math.max(...candidates);
    if (max <= floor) break;
    const i = candidates.indexOf(max);
    const second = Math.max(...candidates.filter((_, j) => j !== i), floor);
    const cut = Math.min(sum - budget, max - Math.max(second, floor), max - floor) || 1;
    widths[i] = max - cut;
    sum -= cut;
  }
}

/** What each column needs: its widest cell or header (a loop: rows can number millions). */
export function naturalWidths(headers: string[], rows: Iterable<string[]>): number[] {
  const natural = headers.map((h) => Math.max(displayWidth(h), 1));
  for (const row of rows) {
    for (let i = 0; i < natural.length; i++) {
      const n = displayWidth(row[i] ?? '');
      if (n > natural[i]!) natural[i] = n;
    }
  }
  return natural;
}

/** A cell cut to `width` columns, then padded to it. */
function fit(cell: string, width: number, keepTail = false): string {
  let s = cell.length > width ? truncate(cell, width, keepTail) : cell;
  let w = displayWidth(s);
  if (w > width) {
    // Wide characters: cut by display width.
    s = utils.truncate(s, width, '…');
    w = displayWidth(s);
  }
  return w < width ? s + ' '.repeat(width - w) : s;
}

/**
 * A table drawn row by row with fixed column widths, as cli-table3 draws it with no rule between
 * rows (compact, like gh and kubectl): the header comes with the first rows, the bottom border
 * with end(). Cells must be one line (cellLine); longer ones are cut with `…`.
 */
export class TableWriter {
  private started = false;

  constructor(
    private readonly headers: string[],
    private readonly widths: number[],
    /** Columns whose short last word (a unit) survives a cut. */
    private readonly keepTail: boolean[] = [],
  ) {}

  private rule(left: string, mid: string, right: string): string {
    return left + this.widths.map((w) => '─'.repeat(w + 2)).join(mid) + right + '\n';
  }

  private line(cells: string[]): string {
    return (
      '│ ' +
      this.widths.map((w, i) => fit(cells[i] ?? '', w, this.keepTail[i])).join(' │ ') +
      ' │\n'
    );
  }

  /** The lines for these rows (and the top border and header, the first time). */
  rows(cells: string[][]): string {
    if (cells.length === 0) return '';
    let text = '';
    if (!this.started) {
      this.started = true;
      text += this.rule('┌', '┬', '┐');
      text += '│ ' + this.widths.map((w, i) => fit(this.headers[i] ?? '', w)).join(' │ ') + ' │\n';
    }
    for (const row of cells) text += this.line(row);
    return text;
  }

  /** The bottom border (nothing when no row was drawn). */
  end(): string {
    return this.started ? this.rule('└', '┴', '┘') : '';
  }
}

export function renderTable<T>(rows: T[], columns: Column<T>[], width = DEFAULT_WIDTH): string {
  const headers = columns.map((c) => cellLine(c.header));
  const cells = rows.map((r) => columns.map((c) => cellLine(c.get(r))));
  const keep = columns.map((c) => c.keep === true);
  const writer = new TableWriter(
    headers,
    fitWidths(naturalWidths(headers, cells), width, keep),
    keep,
  );
  return writer.rows(cells) + writer.end();
}
