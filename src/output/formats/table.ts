import { escapeControls } from '../escape.js';
import { terminalWidth } from '../format.js';
import type { FormatRenderers, RenderIO } from '../render.js';
import type { RecordsResult } from '../results.js';
import type { Column } from '../table.js';
import { writeOut } from '../write.js';

// -o table, and what a person sees on a terminal without -o.

function pretty(value: unknown): string {
  return JSON.stringify(value, null, 2)
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}

/** Rows fitted to the terminal's width; `(no results)` on stderr when there are none. */
async function records<T>(
  io: RenderIO,
  rows: T[],
  columns: Column<T>[],
  empty = '(no results)',
): Promise<void> {
  if (rows.length === 0) {
    io.log.info(empty);
    return;
  }
  // cli-table3 only when a table is drawn: JSON output (and `smart token`) skip it.
  const { renderTable } = await import('../table.js');
  const out = io.io.stdout;
  await writeOut(out, renderTable(rows, columns, terminalWidth(out, io.env)));
}

async function recordList(r: RecordsResult, io: RenderIO): Promise<void> {
  if (r.rows.length === 0 && r.empty !== undefined) return io.log.info(r.empty);
  if (r.note !== undefined) io.log.info(r.note);
  await records(io, r.rows, r.columns);
  if (r.after !== undefined) io.log.info(r.after);
}

/** `field  value` lines; absent values are left out and do not widen the key column. */
function fieldLines(fields: Array<[string, unknown]>): string {
  const rows = fields.filter(([, v]) => v !== undefined);
  const width = Math.max(0, ...rows.map(([k]) => k.length));
  // A value can come from a server: its control characters are shown escaped.
  return rows
    .map(([k, v]) =>
      escapeControls(
        `${k.padEnd(width)}  ${typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v)}`,
        { oneLine: true },
      ),
    )
    .join('\n');
}

export const renderers: FormatRenderers = {
  progressOnStdout: false,
  object: (r, io) => writeOut(io.io.stdout, fieldLines(r.fields ?? Object.entries(r.value)) + '\n'),
  records: recordList,
  text: (r, io) => writeOut(io.io.stdout, r.text + '\n'),
  // Where it listens is on stderr already.
  serving: async () => undefined,
  discover: async (r, io) => {
    const width = Math.max(...r.fields.map(([k]) => k.length));
    const tty = Boolean(io.io.stdout.isTTY);
    const lines = r.fields.map(([k, v]) => `${k.padEnd(width)}  ${String(v)}`);
    lines.push('');
    const marks = { ok: '✓', assumed: '~', missing: '✗' } as const;
    for (const check of r.checks) {
      const mark = tty ? marks[check.status] : check.status;
      lines.push(`${mark.padEnd(tty ? 1 : 7)}  ${check.requirement}: ${check.detail}`);
    }
    // The fields are the server's words: their control characters are shown escaped.
    await writeOut(io.io.stdout, escapeControls(lines.join('\n')) + '\n');
  },
  decode: async (r, io) => {
    const lines: string[] = [];
    lines.push('header:', pretty(r.decoded.header), 'claims:', pretty(r.decoded.claims));
    if (r.times.length) {
      lines.push('times:');
      for (const t of r.times) lines.push(`  ${t.claim}  ${t.iso}  ${t.relative}`);
    }
    if (r.isAssertion) {
      const ok = io.io.stdout.isTTY ? '✓' : 'ok';
      const bad = io.io.stdout.isTTY ? '✗' : 'violated';
      lines.push('SMART client assertion rules:');
      for (const c of r.checks) lines.push(`  ${c.ok ? ok : bad}  ${c.rule}: ${c.detail}`);
    }
    const v = r.verification;
    if (v) {
      lines.push(
        v.verified
          ? `signature: verified with kid ${v.kid ?? '(none)'} from ${v.source}`
          : `signature: NOT verified: ${v.reason}`,
      );
    }
    // Claims are whatever the token's issuer wrote: control characters shown escaped.
    await writeOut(io.io.stdout, escapeControls(lines.join('\n')) + '\n');
  },
  registration: (r, io) =>
    records(io, r.rows, [
      { header: 'resource', get: (o) => o.what },
      { header: 'id', get: (o) => o.id },
      { header: 'result', get: (o) => (o.result === 'absent' ? 'already gone' : o.result) },
    ]),
  search: async (r, io) => {
    const { renderSearch, SEARCH_WRITERS } = await import('../stream.js');
    await renderSearch(r.stdout ?? io.io.stdout, r.pages, r.options, SEARCH_WRITERS.table);
  },
  demo: async (r, io) => {
    const { renderSearch, SEARCH_WRITERS } = await import('../stream.js');
    await renderSearch(r.stdout ?? io.io.stdout, r.pages, r.options, SEARCH_WRITERS.table);
  },
  resource: async (r, io) => {
    const { renderResource, RESOURCE_WRITERS } = await import('../stream.js');
    await renderResource(io.io.stdout, r.resource, r.options, r.text, RESOURCE_WRITERS.table);
  },
  exportSummary: async (r, io) => {
    // A person at a terminal: one row per type; the totals are already on stderr.
    const { formatBytes, formatCount } = await import('../export-progress.js');
    const rows = new Map<
      string,
      { type: string; files: number; resources: number; bytes: number }
    >();
    for (const f of r.summary.files) {
      const key = f.kind === 'output' ? f.type : `${f.type} (${f.kind})`;
      const row = rows.get(key) ?? { type: key, files: 0, resources: 0, bytes: 0 };
      row.files++;
      row.resources += f.resources;
      row.bytes += f.bytes;
      rows.set(key, row);
    }
    await records(
      io,
      [...rows.values()],
      [
        { header: 'type', get: (x) => x.type },
        { header: 'files', get: (x) => x.files },
        { header: 'resources', get: (x) => formatCount(x.resources) },
        { header: 'size', get: (x) => formatBytes(x.bytes) },
      ],
    );
  },
  exportCancel: async (r, io) => {
    await writeOut(io.io.stdout, 'cancelled\n');
    io.log.info(`the server accepted the cancellation of ${r.statusUrl} (${r.status})`);
  },
};
