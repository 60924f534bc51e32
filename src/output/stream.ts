import type { OutStream } from '../context.js';
import type { Bundle, BundleEntry, Resource, SearchPage, SearchStats } from '../core/fhir/index.js';
import { asSearchPage, entryText, isMatch } from '../core/fhir/index.js';
import { memberText } from '../core/bundle-scan.js';
import { summarizeOperationOutcome, type HeaderMap } from '../core/http/index.js';
import { csvRow } from './csv.js';
import { DEFAULT_WIDTH } from './format.js';
import type { Column } from './table.js';

export interface StreamRenderOptions {
  /** Which built-in writer renderSearch/renderResource use when not given one. */
  format?: BuiltinFormat;
  /** Table and CSV columns. */
  columns: Column<Resource>[];
  /** json: one searchset Bundle of every page (--all, --limit) instead of the server's Bundle. */
  combine?: boolean;
  /** json: indented (on a TTY) or compact (piped). */
  pretty?: boolean;
  /** stdout is a terminal: CSV fields get their control characters escaped. */
  terminal?: boolean;
  /** Table width in characters. */
  width?: number;
  /** A line for a person, on stderr: the table footer. */
  info?: (line: string) => void;
  /** A warning on stderr: OperationOutcome entries the server put in the Bundle. */
  warn?: (line: string) => void;
  /** `--where`: the matches to keep (included resources and outcomes are not filtered). */
  where?: (resource: Resource) => boolean;
}

/** A match entry that `--where` drops. */
function dropped(e: BundleEntry, o: StreamRenderOptions): boolean {
  return o.where !== undefined && isMatch(e) && e.resource !== undefined && !o.where(e.resource);
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
export class Sink {
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

function warnOutcome(entry: BundleEntry, warn?: (line: string) => void): boolean {
  if (entry.search?.mode !== 'outcome') return false;
  const summary = summarizeOperationOutcome(entry.resource);
  if (summary && warn) warn(`the server says: ${summary}`);
  return true;
}

function indent(text: string, by: string): string {
  return by + text.replace(/\n/g, `\n${by}`);
}

function jsonValue(value: unknown, pretty: boolean): string {
  return pretty ? JSON.stringify(value, null, 2) : JSON.stringify(value);
}

/**
 * Output gathered into chunks of about 64 KiB: few writes, and no string big enough for V8's
 * large-object space, whose garbage is only reclaimed by full collections.
 */
class Chunker {
  private buf = '';
  constructor(private readonly sink: Sink) {}

  async add(text: string): Promise<void> {
    this.buf += text;
    if (this.buf.length >= 65_536) await this.flush();
  }

  async flush(): Promise<void> {
    const text = this.buf;
    this.buf = '';
    await this.sink.write(text);
  }
}

/** Search pages as streamSearch gives them, or plain Bundles (both render the same). */
export interface RenderablePages extends AsyncIterable<SearchPage | Bundle> {
  readonly stats: SearchStats;
}

async function* eachPage(pages: RenderablePages): AsyncGenerator<SearchPage> {
  for await (const item of pages) yield asSearchPage(item);
}

/** One row of cell texts, computed now so the resource itself can be dropped. */
type Cells = string[];

function footer(shown: number, total: number | undefined, more: boolean): string {
  const of = total !== undefined ? `shown ${shown} of ${total}` : `shown ${shown}`;
  if (!more && (total === undefined || shown >= total)) return of;
  return `${of} — use --all or --limit <n> for more`;
}

/**
 * Render search pages as they stream in, one entry at a time. table: rows are collected and
 * fitted to the width, with a footer on stderr; csv: header then rows; ndjson: one resource per
 * line; json: the server's Bundle, or with `combine` one searchset Bundle written incrementally.
 */
export async function renderSearch(
  out: OutStream,
  pages: RenderablePages,
  options: StreamRenderOptions,
  writer: SearchWriter = SEARCH_WRITERS[options.format ?? 'json'],
): Promise<RenderResult> {
  const sink = new Sink(out);
  try {
    return await writer(sink, pages, options);
  } catch (e) {
    // A reader that stops reading (`| head -1`) is not an error: stop fetching pages.
    if (isBrokenPipe(e)) return { shown: 0, closed: true };
    throw e;
  } finally {
    sink.close();
  }
}

/** Writes search pages to the sink as they stream in; a format file picks (or brings) one. */
export type SearchWriter = (
  sink: Sink,
  pages: RenderablePages,
  o: StreamRenderOptions,
) => Promise<RenderResult>;

/** The built-in formats' search writers. */
export const SEARCH_WRITERS = {
  ndjson: (sink, pages, o) => ndjson(sink, pages, o),
  json: (sink, pages, o) => (o.combine ? jsonCombined(sink, pages, o) : jsonPages(sink, pages, o)),
  csv: (sink, pages, o) => csv(sink, pages, o),
  table: (sink, pages, o) => table(sink, pages, o),
} satisfies Record<string, SearchWriter>;

export type BuiltinFormat = keyof typeof SEARCH_WRITERS;

/** An entry's resource on one line, its numbers as the server wrote them. */
function resourceLine(e: BundleEntry): string {
  const raw = entryText(e);
  const text = raw === undefined ? undefined : memberText(raw, 'resource');
  return text === undefined ? JSON.stringify(e.resource) : compactJson(text);
}

async function ndjson(
  sink: Sink,
  pages: RenderablePages,
  o: StreamRenderOptions,
): Promise<RenderResult> {
  const out = new Chunker(sink);
  let shown = 0;
  for await (const page of eachPage(pages)) {
    for await (const e of page.entries()) {
      // Included resources are data too; OperationOutcomes go to stderr.
      if (warnOutcome(e, o.warn) || !e.resource || dropped(e, o)) continue;
      await out.add(resourceLine(e) + '\n');
      if (isMatch(e)) shown++;
    }
    await out.flush();
  }
  return { shown };
}

async function jsonPages(
  sink: Sink,
  pages: RenderablePages,
  o: StreamRenderOptions,
): Promise<RenderResult> {
  let shown = 0;
  for await (const page of eachPage(pages)) {
    // Piped: the server's text as it came; on a terminal (or without the text), re-serialized.
    const whole = o.pretty || page.text === undefined || o.where ? await page.bundle() : undefined;
    if (whole && o.where) whole.entry = (whole.entry ?? []).filter((e) => !dropped(e, o));
    for await (const e of whole ? (whole.entry ?? []) : page.entries()) {
      if (!warnOutcome(e, o.warn) && isMatch(e)) shown++;
    }
    const text = whole ? jsonValue(whole, Boolean(o.pretty)) : page.text!;
    await sink.write(text.endsWith('\n') ? text : text + '\n');
  }
  return { shown };
}

async function jsonCombined(
  sink: Sink,
  pages: RenderablePages,
  o: StreamRenderOptions,
): Promise<RenderResult> {
  const pretty = Boolean(o.pretty);
  const out = new Chunker(sink);
  let shown = 0;
  let entries = 0;
  let opened = false;
  let total: number | undefined;
  // The Bundle opens with the first entry (or the end of the first page), so that a `total` the
  // server sent before its entries can lead, as usual; one sent after them goes at the end.
  const open = async (head: Bundle) => {
    opened = true;
    const bundle: Record<string, unknown> = { resourceType: 'Bundle', type: 'searchset' };
    // The server's total counts what it matched, not what --where kept.
    if (typeof head.total === 'number' && !o.where) bundle.total = total = head.total;
    if (pages.stats.firstUrl) bundle.link = [{ relation: 'self', url: pages.stats.firstUrl }];
    const text = jsonValue(bundle, pretty);
    // Reopen the object to append the entry array.
    await out.add(
      text.slice(0, text.lastIndexOf('}')).replace(/\s*$/, '') +
        (pretty ? ',\n  "entry": [' : ',"entry":['),
    );
  };
  for await (const page of eachPage(pages)) {
    for await (const e of page.entries()) {
      if (dropped(e, o)) continue;
      if (!opened) await open(page.head);
      // Every entry goes in the Bundle; outcomes are also shown on stderr.
      if (!warnOutcome(e, o.warn) && isMatch(e)) shown++;
      const raw = pretty ? undefined : entryText(e);
      await out.add(
        (entries++ === 0 ? '' : ',') +
          (pretty
            ? '\n' + indent(JSON.stringify(e, null, 2), '    ')
            : raw !== undefined
              ? compactJson(raw)
              : JSON.stringify(e)),
      );
    }
    if (!opened) await open(page.head);
    await out.flush();
  }
  if (!opened) await open({ resourceType: 'Bundle' });
  const late =
    total === undefined && pages.stats.total !== undefined && !o.where
      ? pages.stats.total
      : undefined;
  const tail = late === undefined ? '' : pretty ? `,\n  "total": ${late}` : `,"total":${late}`;
  await out.add((pretty ? (entries ? '\n  ]' : ']') : ']') + tail + (pretty ? '\n}\n' : '}\n'));
  await out.flush();
  return { shown };
}

/** The cells of each match of a page; outcomes are warned about. */
async function* rowsOf(
  page: SearchPage,
  o: StreamRenderOptions,
  cellText: (v: unknown) => string,
): AsyncGenerator<Cells> {
  const { columns } = o;
  for await (const e of page.entries()) {
    if (warnOutcome(e, o.warn) || !isMatch(e) || !e.resource || dropped(e, o)) continue;
    const r = e.resource;
    yield columns.map((c) => cellText(c.get(r)));
  }
}

async function csv(
  sink: Sink,
  pages: RenderablePages,
  o: StreamRenderOptions,
): Promise<RenderResult> {
  const { cellText } = await import('./table.js');
  const out = new Chunker(sink);
  const terminal = Boolean(o.terminal);
  await out.add(
    csvRow(
      o.columns.map((c) => c.header),
      terminal,
    ),
  );
  let shown = 0;
  for await (const page of eachPage(pages)) {
    for await (const row of rowsOf(page, o, cellText)) {
      shown++;
      await out.add(csvRow(row, terminal));
    }
    await out.flush();
  }
  await out.flush();
  return { shown };
}

/**
 * The table streams: column widths come from the first page with rows (its rows are held until
 * it ends), later rows are cut to them, so memory stays flat however many pages follow.
 */
async function table(
  sink: Sink,
  pages: RenderablePages,
  o: StreamRenderOptions,
): Promise<RenderResult> {
  const { cellLine, fitWidths, naturalWidths, TableWriter } = await import('./table.js');
  const headers = o.columns.map((c) => cellLine(c.header));
  const keep = o.columns.map((c) => c.keep === true);
  const out = new Chunker(sink);
  let writer: InstanceType<typeof TableWriter> | undefined;
  let shown = 0;
  for await (const page of eachPage(pages)) {
    let batch: Cells[] = [];
    for await (const row of rowsOf(page, o, cellLine)) {
      shown++;
      batch.push(row);
      if (writer && batch.length >= 500) {
        await out.add(writer.rows(batch));
        batch = [];
      }
    }
    if (!writer && batch.length > 0) {
      writer = new TableWriter(
        headers,
        fitWidths(naturalWidths(headers, batch), o.width || DEFAULT_WIDTH, keep),
        keep,
      );
    }
    if (writer) await out.add(writer.rows(batch));
    await out.flush();
  }
  if (writer) await out.add(writer.end());
  await out.flush();
  const { total, more, matches } = pages.stats;
  if (o.where) {
    const kept = `--where kept ${shown} of ${matches} fetched`;
    o.info?.(more ? `${kept} — use --all or --limit <n> for more` : kept);
  } else {
    o.info?.(shown === 0 && !total ? '(no results)' : footer(shown, total, more));
  }
  return { shown };
}

/**
 * JSON text on one line, every token as it was: whitespace outside strings is dropped, nothing is
 * parsed, so numbers keep their exact digits (FHIR decimals carry their precision: 1.50 is not
 * 1.5). The text must be valid JSON.
 */
export function compactJson(text: string): string {
  let out = '';
  let from = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
      out += text.slice(from, i);
      from = i + 1;
    }
  }
  return out + text.slice(from);
}

/**
 * One resource (a read): json as returned (`text`, the server's own, when given), one ndjson
 * line, or a one-row table/CSV.
 */
export async function renderResource(
  out: OutStream,
  resource: Resource,
  options: StreamRenderOptions,
  text?: string,
  writer: ResourceWriter = RESOURCE_WRITERS[options.format ?? 'json'],
): Promise<void> {
  const sink = new Sink(out);
  try {
    await writer(sink, resource, options, text);
  } catch (e) {
    if (!isBrokenPipe(e)) throw e;
  } finally {
    sink.close();
  }
}

/** Writes one resource (a read) to the sink. */
export type ResourceWriter = (
  sink: Sink,
  resource: Resource,
  o: StreamRenderOptions,
  text?: string,
) => Promise<void>;

/** The built-in formats' resource writers. */
export const RESOURCE_WRITERS = {
  json: async (sink, resource, o, text) => {
    if (o.pretty || text === undefined) {
      return sink.write(jsonValue(resource, Boolean(o.pretty)) + '\n');
    }
    return sink.write(text.endsWith('\n') ? text : text + '\n');
  },
  ndjson: (sink, resource, _o, text) =>
    sink.write((text === undefined ? JSON.stringify(resource) : compactJson(text)) + '\n'),
  csv: async (sink, resource, o) => {
    const { cellText } = await import('./table.js');
    const terminal = Boolean(o.terminal);
    return sink.write(
      csvRow(
        o.columns.map((c) => c.header),
        terminal,
      ) +
        csvRow(
          o.columns.map((c) => cellText(c.get(resource))),
          terminal,
        ),
    );
  },
  table: async (sink, resource, o) => {
    const { renderTable } = await import('./table.js');
    return sink.write(renderTable([resource], o.columns, o.width || DEFAULT_WIDTH));
  },
} satisfies Record<BuiltinFormat, ResourceWriter>;

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
export function httpHead(status: number, statusText: string, headers: HeaderMap): string {
  let text = `HTTP/1.1 ${status}${statusText ? ` ${statusText}` : ''}\n`;
  headers.forEach((value, name) => {
    text += `${name}: ${value}\n`;
  });
  return text + '\n';
}
