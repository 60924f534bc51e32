import Table from 'cli-table3';
import { DEFAULT_WIDTH } from './format.js';

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

function truncate(s: string, width: number, keepTail = false): string {
  const oneLine = s.replace(/\s+/g, ' ');
  if (oneLine.length <= width) return oneLine;
  // `2.856519918445372 %` -> `2.8565199… %`: a short last word (a unit) stays.
  const space = oneLine.lastIndexOf(' ');
  const tail = space > 0 ? oneLine.slice(space) : '';
  if (keepTail && tail.length > 1 && tail.length <= 12 && width - tail.length >= 4) {
    return oneLine.slice(0, width - tail.length - 1) + '…' + tail;
  }
  return width <= 1 ? oneLine.slice(0, width) : oneLine.slice(0, width - 1) + '…';
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

export function renderTable<T>(rows: T[], columns: Column<T>[], width = DEFAULT_WIDTH): string {
  const cells = rows.map((r) => columns.map((c) => cellText(c.get(r)).replace(/\s+/g, ' ')));
  const natural = columns.map((c, i) =>
    Math.max(c.header.length, ...cells.map((row) => row[i]!.length), 1),
  );
  const widths = fitWidths(
    natural,
    width,
    columns.map((c) => c.keep === true),
  );
  const table = new Table({
    head: columns.map((c, i) => truncate(c.header, widths[i]!)),
    style: { head: [], border: [] },
    // No rule between rows: compact, like gh and kubectl.
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
    wordWrap: false,
  });
  for (const row of cells) {
    table.push(row.map((cell, i) => truncate(cell, widths[i]!, columns[i]!.keep)));
  }
  return table.toString() + '\n';
}
