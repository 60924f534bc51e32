import type { OutStream, OutputFormat } from '../context.js';
import type { Bundle, BundleEntry, Resource, SearchPages } from '../core/fhir.js';
import { isMatch } from '../core/fhir.js';
import { summarizeOperationOutcome } from '../core/http.js';
import { csvRow } from './csv.js';
import type { Column } from './table.js';

export interface StreamRenderOptions {
  format: OutputFormat;
  /** Table and CSV columns. */
  columns: Column<Resource>[];
  /** json: one searchset Bundle of every page (--all, --limit) instead of the server's Bundle. */
  combine?: boolean;
  /** json: indented (on a TTY) or compact (piped). */
  pretty?: boolean;
  /** Table width in characters. */
  width?: number;
  /** A line for a person, on stderr: the table footer. */
  info?: (line: string) => void;
  /** A warning on stderr: OperationOutcome entries the server put in the Bundle. */
  warn?: (line: string) => void;
}

export interface RenderResult {
  /** Match resources written (rows for table/csv, lines for ndjson, entries for json). */
  shown: number;
  /** The reader went away (EPIPE, e.g. `| head`): rendering stopped early, quietly. */
  closed?: boolean;
}

const isBrokenPipe = (e: unknown) => (e as { code?: unknown } | undefined)?.code === 'EPIPE';

// Left on the stream after rendering: a late EPIPE from the last write must not crash the run.
const ignoreBrokenPipe = (e: Error) => {
  if (!isBrokenPipe(e)) throw e;
};

/**
 * Writes with backpressure: a write that fills the buffer waits for 'drain', so memory stays flat
 * however fast pages arrive. A closed pipe (EPIPE) rejects instead of hanging.
 */
class Sink {
  private failure?: Error;
  private readonly onError = (e: Error) => {
    this.failure = e;
  };

  constructor(private readonly stream: OutStream) {
    stream.on('error', this.onError);
  }

  async write(data: string | Uint8Array): Promise<void> {
    if (this.failure) throw this.failure;
    if (data.length === 0) return;
    if (this.stream.write(data)) return;
    await new Promise<void>((resolve, reject) => {
      const done = (e?: Error) => {
        this.stream.off('drain', onDrain);
        this.stream.off('error', onErr);
        if (e) reject(e);
        else resolve();
      };
      const onDrain = () => done();
      const onErr = (e: Error) => done(e);
      this.stream.once('drain', onDrain);
      this.stream.once('error', onErr);
    });
  }

  close(): void {
    this.stream.off('error', this.onError);
    if (!this.stream.listeners('error').includes(ignoreBrokenPipe)) {
      this.stream.on('error', ignoreBrokenPipe);
    }
  }
}

function warnOutcomes(entries: BundleEntry[], warn?: (line: string) => void): void {
  if (!warn) return;
  for (const e of entries) {
    if (e.search?.mode !== 'outcome') continue;
    const summary = summarizeOperationOutcome(e.resource);
    if (summary) warn(`the server says: ${summary}`);
  }
}

function indent(text: string, by: string): string {
  return by + text.replace(/\n/g, `\n${by}`);
}

function jsonValue(value: unknown, pretty: boolean): string {
  return pretty ? JSON.stringify(value, null, 2) : JSON.stringify(value);
}

/** One row of cell texts, computed now so the resource itself can be dropped. */
type Cells = string[];

function footer(shown: number, total: number | undefined, more: boolean): string {
  const of = total !== undefined ? `shown ${shown} of ${total}` : `shown ${shown}`;
  if (!more && (total === undefined || shown >= total)) return of;
  return `${of} — use --all or --limit <n> for more`;
}

/**
 * Render search pages as they stream in. table: rows are collected and fitted to the width, with
 * a footer on stderr; csv: header then rows page by page; ndjson: one resource per line, page by
 * page; json: the server's Bundle, or with `combine` one searchset Bundle written incrementally.
 */
export async function renderSearch(
  out: OutStream,
  pages: SearchPages,
  options: StreamRenderOptions,
): Promise<RenderResult> {
  const sink = new Sink(out);
  try {
    switch (options.format) {
      case 'ndjson':
        return await ndjson(sink, pages, options);
      case 'json':
        return options.combine
          ? await jsonCombined(sink, pages, options)
          : await jsonPages(sink, pages, options);
      case 'csv':
        return await csv(sink, pages, options);
      case 'table':
        return await table(sink, pages, options);
    }
  } catch (e) {
    // A reader that stops reading (`| head -1`) is not an error: stop fetching pages.
    if (isBrokenPipe(e)) return { shown: 0, closed: true };
    throw e;
  } finally {
    sink.close();
  }
}

async function ndjson(
  sink: Sink,
  pages: SearchPages,
  o: StreamRenderOptions,
): Promise<RenderResult> {
  let shown = 0;
  for await (const page of pages) {
    const entries = page.entry ?? [];
    warnOutcomes(entries, o.warn);
    let text = '';
    for (const e of entries) {
      // Included resources are data too; OperationOutcomes went to stderr.
      if (!e.resource || e.search?.mode === 'outcome') continue;
      text += JSON.stringify(e.resource) + '\n';
      if (isMatch(e)) shown++;
    }
    await sink.write(text);
  }
  return { shown };
}

async function jsonPages(
  sink: Sink,
  pages: SearchPages,
  o: StreamRenderOptions,
): Promise<RenderResult> {
  let shown = 0;
  for await (const page of pages) {
    const entries = page.entry ?? [];
    warnOutcomes(entries, o.warn);
    shown += entries.filter(isMatch).length;
    await sink.write(jsonValue(page, Boolean(o.pretty)) + '\n');
  }
  return { shown };
}

async function jsonCombined(
  sink: Sink,
  pages: SearchPages,
  o: StreamRenderOptions,
): Promise<RenderResult> {
  const pretty = Boolean(o.pretty);
  let shown = 0;
  let first = true;
  let entries = 0;
  for await (const page of pages) {
    if (first) {
      first = false;
      const head: Record<string, unknown> = { resourceType: 'Bundle', type: 'searchset' };
      if (pages.stats.total !== undefined) head.total = pages.stats.total;
      if (pages.stats.firstUrl) head.link = [{ relation: 'self', url: pages.stats.firstUrl }];
      const text = jsonValue(head, pretty);
      // Reopen the object to append the entry array.
      await sink.write(
        text.slice(0, text.lastIndexOf('}')).replace(/\s*$/, '') +
          (pretty ? ',\n  "entry": [' : ',"entry":['),
      );
    }
    const list = page.entry ?? [];
    warnOutcomes(list, o.warn);
    let text = '';
    for (const e of list) {
      text +=
        (entries++ === 0 ? '' : ',') +
        (pretty ? '\n' + indent(JSON.stringify(e, null, 2), '    ') : JSON.stringify(e));
      if (isMatch(e)) shown++;
    }
    await sink.write(text);
  }
  if (first) {
    // No page at all cannot happen (the first page is always fetched), but stay valid JSON.
    await sink.write(
      jsonValue({ resourceType: 'Bundle', type: 'searchset', entry: [] }, pretty) + '\n',
    );
  } else {
    await sink.write(pretty ? (entries ? '\n  ]\n}\n' : ']\n}\n') : ']}\n');
  }
  return { shown };
}

function rowsOf(
  page: Bundle,
  columns: Column<Resource>[],
  cellText: (v: unknown) => string,
): Cells[] {
  const rows: Cells[] = [];
  for (const e of page.entry ?? []) {
    if (!isMatch(e) || !e.resource) continue;
    const r = e.resource;
    rows.push(columns.map((c) => cellText(c.get(r))));
  }
  return rows;
}

async function csv(sink: Sink, pages: SearchPages, o: StreamRenderOptions): Promise<RenderResult> {
  const { cellText } = await import('./table.js');
  await sink.write(csvRow(o.columns.map((c) => c.header)));
  let shown = 0;
  for await (const page of pages) {
    warnOutcomes(page.entry ?? [], o.warn);
    const rows = rowsOf(page, o.columns, cellText);
    shown += rows.length;
    await sink.write(rows.map(csvRow).join(''));
  }
  return { shown };
}

async function table(
  sink: Sink,
  pages: SearchPages,
  o: StreamRenderOptions,
): Promise<RenderResult> {
  const { cellText, renderTable } = await import('./table.js');
  const rows: Cells[] = [];
  for await (const page of pages) {
    warnOutcomes(page.entry ?? [], o.warn);
    for (const row of rowsOf(page, o.columns, cellText)) rows.push(row);
  }
  if (rows.length > 0) {
    const columns: Column<Cells>[] = o.columns.map((c, i) => ({
      header: c.header,
      get: (row) => row[i],
    }));
    await sink.write(renderTable(rows, columns, o.width ?? 120));
  }
  const { total, more } = pages.stats;
  o.info?.(rows.length === 0 && !total ? '(no results)' : footer(rows.length, total, more));
  return { shown: rows.length };
}

/** One resource (a read): json as returned, one ndjson line, or a one-row table/CSV. */
export async function renderResource(
  out: OutStream,
  resource: Resource,
  options: StreamRenderOptions,
): Promise<void> {
  const sink = new Sink(out);
  try {
    switch (options.format) {
      case 'json':
        return await sink.write(jsonValue(resource, Boolean(options.pretty)) + '\n');
      case 'ndjson':
        return await sink.write(JSON.stringify(resource) + '\n');
      case 'csv': {
        const { cellText } = await import('./table.js');
        return await sink.write(
          csvRow(options.columns.map((c) => c.header)) +
            csvRow(options.columns.map((c) => cellText(c.get(resource)))),
        );
      }
      case 'table': {
        const { renderTable } = await import('./table.js');
        return await sink.write(renderTable([resource], options.columns, options.width ?? 120));
      }
    }
  } catch (e) {
    if (!isBrokenPipe(e)) throw e;
  } finally {
    sink.close();
  }
}

/** Raw bytes (a response body) to the stream, chunk by chunk with backpressure. */
export async function pipeBody(out: OutStream, body: AsyncIterable<Uint8Array>): Promise<void> {
  const sink = new Sink(out);
  try {
    for await (const chunk of body) await sink.write(chunk);
  } catch (e) {
    if (!isBrokenPipe(e)) throw e;
  } finally {
    sink.close();
  }
}

/** Text to the stream, waiting for it to drain. */
export async function writeText(out: OutStream, text: string): Promise<void> {
  const sink = new Sink(out);
  try {
    await sink.write(text);
  } catch (e) {
    if (!isBrokenPipe(e)) throw e;
  } finally {
    sink.close();
  }
}

/** A JSON body indented for a person; the text itself when it is not JSON. */
export function prettyBody(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2) + '\n';
  } catch {
    return text;
  }
}

/** `HTTP/1.1 200 OK` and the headers, as `curl -i` shows them. */
export function httpHead(status: number, statusText: string, headers: Headers): string {
  let text = `HTTP/1.1 ${status}${statusText ? ` ${statusText}` : ''}\n`;
  headers.forEach((value, name) => {
    text += `${name}: ${value}\n`;
  });
  return text + '\n';
}
