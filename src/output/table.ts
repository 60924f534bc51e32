import Table from 'cli-table3';
import { DEFAULT_WIDTH } from './format.js';

export interface Column<T = Record<string, unknown>> {
  header: string;
  get: (row: T) => unknown;
}

export function cellText(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map(cellText).join(', ');
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

function truncate(s: string, width: number): string {
  const oneLine = s.replace(/\s+/g, ' ');
  if (oneLine.length <= width) return oneLine;
  return width <= 1 ? oneLine.slice(0, width) : oneLine.slice(0, width - 1) + '…';
}

/**
 * Fit columns into the terminal width: each column gets what it needs, and the widest ones are
 * shrunk (with an ellipsis) until the table fits.
 */
export function fitWidths(natural: number[], total: number): number[] {
  const overhead = natural.length * 3 + 1; // borders and padding
  const widths = natural.map((w) => Math.max(w, 1));
  const budget = Math.max(total - overhead, natural.length * 4);
  let sum = widths.reduce((a, b) => a + b, 0);
  while (sum > budget) {
    const max = Math.max(...widths);
    if (max <= 4) break;
    const i = widths.indexOf(max);
    const second = Math.max(...widths.filter((_, j) => j !== i), 4);
    const cut = Math.min(sum - budget, max - Math.max(second, 4), max - 4) || 1;
    widths[i] = max - cut;
    sum -= cut;
  }
  return widths;
}

export function renderTable<T>(rows: T[], columns: Column<T>[], width = DEFAULT_WIDTH): string {
  const cells = rows.map((r) => columns.map((c) => cellText(c.get(r)).replace(/\s+/g, ' ')));
  const natural = columns.map((c, i) =>
    Math.max(c.header.length, ...cells.map((row) => row[i]!.length), 1),
  );
  const widths = fitWidths(natural, width);
  const table = new Table({
    head: columns.map((c, i) => truncate(c.header, widths[i]!)),
    style: { head: [], border: [] },
    // No rule between rows: compact, like gh and kubectl.
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
    wordWrap: false,
  });
  for (const row of cells) table.push(row.map((cell, i) => truncate(cell, widths[i]!)));
  return table.toString() + '\n';
}
