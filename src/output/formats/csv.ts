import { csvRow } from '../csv.js';
import { UNSUPPORTED, type FormatRenderers, type RenderIO } from '../render.js';
import type { RecordsResult } from '../results.js';
import type { Column } from '../table.js';
import { writeOut } from '../write.js';

// -o csv: RFC 4180, a header row then one row per record. Only for what is a list of records.

function rowsCsv<T>(io: RenderIO, rows: T[], columns: Column<T>[]): Promise<void> {
  // On a terminal, fields get their control characters escaped.
  const terminal = Boolean(io.io.stdout.isTTY);
  return writeOut(
    io.io.stdout,
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

async function recordList(r: RecordsResult, io: RenderIO): Promise<void> {
  if (r.rows.length === 0 && r.empty !== undefined) return io.log.info(r.empty);
  if (r.note !== undefined) io.log.info(r.note);
  await rowsCsv(io, r.rows, r.columns);
  if (r.after !== undefined) io.log.info(r.after);
}

export const renderers: FormatRenderers = {
  progressOnStdout: false,
  object: (r, io) => {
    const fields = r.fields ?? Object.entries(r.value);
    const terminal = Boolean(io.io.stdout.isTTY);
    return writeOut(
      io.io.stdout,
      csvRow(
        fields.map(([k]) => k),
        terminal,
      ) +
        csvRow(
          fields.map(([, v]) => v),
          terminal,
        ),
    );
  },
  records: recordList,
  text: UNSUPPORTED,
  serving: UNSUPPORTED,
  discover: UNSUPPORTED,
  decode: UNSUPPORTED,
  registration: (r, io) =>
    rowsCsv(io, r.rows, [
      { header: 'resource', get: (o) => o.what },
      { header: 'id', get: (o) => o.id },
      { header: 'result', get: (o) => (o.result === 'absent' ? 'already gone' : o.result) },
    ]),
  search: async (r, io) => {
    const { renderSearch, SEARCH_WRITERS } = await import('../stream.js');
    await renderSearch(r.stdout ?? io.io.stdout, r.pages, r.options, SEARCH_WRITERS.csv);
  },
  demo: async (r, io) => {
    const { renderSearch, SEARCH_WRITERS } = await import('../stream.js');
    await renderSearch(r.stdout ?? io.io.stdout, r.pages, r.options, SEARCH_WRITERS.csv);
  },
  resource: async (r, io) => {
    const { renderResource, RESOURCE_WRITERS } = await import('../stream.js');
    await renderResource(io.io.stdout, r.resource, r.options, r.text, RESOURCE_WRITERS.csv);
  },
  exportSummary: (r, io) =>
    rowsCsv(io, r.summary.files, [
      { header: 'kind', get: (f) => f.kind },
      { header: 'type', get: (f) => f.type },
      { header: 'file', get: (f) => f.file },
      { header: 'resources', get: (f) => f.resources },
      { header: 'bytes', get: (f) => f.bytes },
    ]),
  exportCancel: UNSUPPORTED,
};
