import type { Context } from '../context.js';
import { csvRow } from './csv.js';
import { escapeControls } from './escape.js';
import type { Column } from './table.js';

export type { Column } from './table.js';
import { terminalWidth } from './format.js';

export { chooseOutputFormat, OUTPUT_FORMATS, terminalWidth } from './format.js';
import { jsonText, writeOut } from './write.js';
export { jsonText, writeOut };

/** A list of records: table, JSON array, one JSON object per line, or CSV. */
export async function printRecords<T>(
  ctx: Context,
  rows: T[],
  columns: Column<T>[],
): Promise<void> {
  const out = ctx.io.stdout;
  switch (ctx.outputFormat()) {
    case 'table': {
      if (rows.length === 0) {
        ctx.log.info('(no results)');
        return;
      }
      // cli-table3 only when a table is drawn: JSON output (and `smart token`) skip it.
      const { renderTable } = await import('./table.js');
      return writeOut(out, renderTable(rows, columns, terminalWidth(out, ctx.env)));
    }
    case 'json':
      return writeOut(out, jsonText(rows, true));
    case 'ndjson':
      return writeOut(out, rows.map((r) => JSON.stringify(r) + '\n').join(''));
    case 'csv': {
      const terminal = Boolean(out.isTTY);
      return writeOut(
        out,
        csvRow(
          columns.map((c) => c.header),
          terminal,
        ) +
          rows
            .map((r) =>
              csvRow(
                columns.map((c) => c.get(r)),
                terminal,
              ),
            )
            .join(''),
      );
    }
  }
}

/** One record: a two-column field/value table for a person, the object itself otherwise. */
export async function printObject(
  ctx: Context,
  value: Record<string, unknown>,
  fields?: Array<[string, unknown]>,
): Promise<void> {
  const format = ctx.outputFormat();
  if (format === 'table') {
    // Absent values are left out, and do not widen the key column.
    const rows = (fields ?? Object.entries(value)).filter(([, v]) => v !== undefined);
    const width = Math.max(0, ...rows.map(([k]) => k.length));
    // A value can come from a server: its control characters are shown escaped.
    const text = rows
      .map(([k, v]) =>
        escapeControls(
          `${k.padEnd(width)}  ${typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v)}`,
          { oneLine: true },
        ),
      )
      .join('\n');
    return writeOut(ctx.io.stdout, text + '\n');
  }
  if (format === 'csv') {
    const rows = fields ?? Object.entries(value);
    const terminal = Boolean(ctx.io.stdout.isTTY);
    return writeOut(
      ctx.io.stdout,
      csvRow(
        rows.map(([k]) => k),
        terminal,
      ) +
        csvRow(
          rows.map(([, v]) => v),
          terminal,
        ),
    );
  }
  return writeOut(ctx.io.stdout, jsonText(value, format === 'json'));
}
