import type { Readable } from 'node:stream';
import { BundleScanner, MalformedJson, setOwn } from '../bundle-scan.js';
import { SmartError } from '../errors.js';
import { networkError, parseJsonBody, type HttpResponse } from '../http/index.js';
import { redactUrl } from '../redact.js';
import type { Bundle, BundleEntry } from './types.js';

/**
 * The page model: a search page read whole or as it downloads, its entries parsed lazily, the
 * --limit cut, and the Bundle text kept as the server sent it.
 */

/** Entries that are search results: `search.mode` match, or no mode at all. */
export function isMatch(entry: BundleEntry): boolean {
  const mode = entry.search?.mode;
  return mode === undefined || mode === 'match';
}

export function nextLink(bundle: Bundle): string | undefined {
  return bundle.link?.find((l) => l.relation === 'next')?.url;
}

export interface SearchOptions {
  /** Follow next links to the end. */
  all?: boolean;
  /** Stop after this many matches; implies following next links as far as needed. */
  limit?: number;
  /** `_count`: the page size asked of the server. */
  count?: number;
  /**
   * Read each page as it downloads, one entry at a time (default). `false` reads each page whole
   * and keeps its text, for printing the server's Bundle as it came.
   */
  stream?: boolean;
  /** A streamed page that sends nothing for this long fails (default 30 s). */
  idleTimeoutMs?: number;
  signal?: AbortSignal;
  /** A remark about the server's paging (shown on stderr by the command). */
  onWarning?: (message: string) => void;
}

export interface SearchStats {
  pages: number;
  /** Match entries delivered so far (after the limit). */
  matches: number;
  /** `Bundle.total` of the first page, when the server gave one. */
  total?: number;
  /** The server has more results than were delivered. */
  more: boolean;
  /** The URL of the first page. */
  firstUrl?: string;
}

/**
 * One page of a search. Its entries are parsed one at a time as they are iterated (iterate once);
 * the members other than `entry` are complete once the entries have been read. A page is valid
 * until the next one is requested.
 */
export interface SearchPage {
  readonly url: string;
  /** The Bundle's members other than `entry` (resourceType, type, total, link...). */
  readonly head: Bundle;
  /** The page as the server sent it, when it was read whole (`stream: false`). */
  readonly text?: string;
  /** Whether the page has an `entry` array at all (Aidbox may leave out an empty one). */
  readonly hasEntry: boolean;
  /** The entries, cut after the last match --limit wants. */
  entries(): AsyncIterable<BundleEntry> | Iterable<BundleEntry>;
  /** The whole page as one Bundle (with the same cut). */
  bundle(): Promise<Bundle>;
}

type ChunkReader = AsyncIterator<Uint8Array, unknown>;
type ChunkResult = IteratorResult<Uint8Array, unknown>;

interface Tally {
  matches: number;
  cut: boolean;
}

function malformed(url: string, e: unknown): SmartError {
  return new SmartError(
    'http',
    `the JSON from ${redactUrl(url)} is malformed: ${(e as Error).message}`,
    {
      cause: e,
      code: 'bad_json',
      hint: 'a proxy or the server cut or garbled the answer; try again, or with a smaller --count',
    },
  );
}

function notBundle(url: string, head: Record<string, unknown>): SmartError {
  const what =
    typeof head.resourceType === 'string'
      ? `a ${head.resourceType}`
      : 'JSON that is not a FHIR resource';
  return new SmartError('fhir', `GET ${redactUrl(url)} returned ${what}, not a Bundle`, {
    hint: 'a search answers with a searchset Bundle; check the URL and --fhir-url',
  });
}

/** Entries one by one with the --limit cut: `wanted` matches, then the page is cut. */
class EntryCounter {
  matches = 0;
  cut = false;
  constructor(private readonly wanted: number | undefined) {}

  /** Whether to hand out this entry. */
  take(entry: BundleEntry): boolean {
    if (!isMatch(entry)) return !this.full;
    if (this.full) {
      this.cut = true;
      return false;
    }
    this.matches++;
    return true;
  }

  get full(): boolean {
    return this.wanted !== undefined && this.matches >= this.wanted;
  }
}

/** Where an entry keeps its JSON text as the server sent it, when JSON.stringify would differ. */
const ENTRY_TEXT = Symbol('entryText');

/**
 * A number that JSON.parse cannot give back digit for digit: a fraction ending in 0 (FHIR
 * decimals keep their precision: 1.50 is not 1.5), an exponent, 16 digits or more (a double
 * holds 15 for sure), -0. Only where a value starts (after `:`, `,` or `[`), so that ids and UUIDs (`6e1b`) do not
 * match; text inside a string may still match, which only costs keeping the entry's text.
 */
const LOSSY_NUMBER =
  /[:,[]\s*(?:-?\d+\.\d*0(?=[\s,}\]])|-?\d+(?:\.\d+)?[eE][+-]?\d|-?\d{16}|-?(?=[\d.]{17})\d+\.\d|-0(?=[\s,}\]]))/;

/**
 * The entry's JSON text as the server sent it, when re-serializing the parsed entry would change
 * a number; undefined when JSON.stringify gives the same values.
 */
export function entryText(entry: BundleEntry): string | undefined {
  return (entry as { [ENTRY_TEXT]?: string })[ENTRY_TEXT];
}

function entryOf(text: string, url: string): BundleEntry | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw malformed(url, e);
  }
  // Not an object: nothing to show, and not a result.
  if (!v || typeof v !== 'object' || Array.isArray(v)) return undefined;
  if (LOSSY_NUMBER.test(text)) Object.defineProperty(v, ENTRY_TEXT, { value: text });
  return v as BundleEntry;
}

function assemble(
  head: Record<string, unknown>,
  entryIndex: number,
  entries: BundleEntry[],
): Bundle {
  if (entryIndex < 0) return { ...head } as Bundle;
  const out: Record<string, unknown> = {};
  const keys = Object.keys(head);
  keys.forEach((k, i) => {
    if (i === entryIndex) out.entry = entries;
    setOwn(out, k, head[k]);
  });
  if (entryIndex >= keys.length) out.entry = entries;
  return out as Bundle;
}

export abstract class BasePage implements SearchPage {
  protected tallied?: Tally;
  abstract readonly url: string;
  abstract readonly head: Bundle;
  abstract readonly hasEntry: boolean;
  abstract entries(): AsyncIterable<BundleEntry> | Iterable<BundleEntry>;
  protected abstract entryIndex(): number;

  async bundle(): Promise<Bundle> {
    const list: BundleEntry[] = [];
    for await (const e of this.entries()) list.push(e);
    return assemble(this.head, this.entryIndex(), list);
  }

  /** Matches handed out and whether the limit cut the page, reading what was not iterated. */
  async tally(): Promise<Tally> {
    if (!this.tallied) {
      for await (const e of this.entries()) void e;
    }
    // A consumer that stopped early leaves the rest unknown: say there may be more.
    return this.tallied ?? { matches: 0, cut: true };
  }

  abstract release(): Promise<void>;
}

/** A page read whole: its text is kept, its entries are found in one pass and parsed lazily. */
export class WholePage extends BasePage {
  readonly head: Bundle;

  constructor(
    readonly url: string,
    public text: string | undefined,
    head: Record<string, unknown>,
    private readonly index: number,
    private texts: string[] | BundleEntry[],
    private readonly wanted: number | undefined,
  ) {
    super();
    this.head = head as Bundle;
  }

  get hasEntry(): boolean {
    return this.index >= 0;
  }

  protected entryIndex(): number {
    return this.index;
  }

  *entries(): IterableIterator<BundleEntry> {
    const counter = new EntryCounter(this.wanted);
    for (const t of this.texts) {
      const entry = typeof t === 'string' ? entryOf(t, this.url) : t;
      if (!entry || typeof entry !== 'object') continue;
      if (counter.take(entry)) yield entry;
      else if (counter.cut) break;
    }
    this.tallied = { matches: counter.matches, cut: counter.cut };
  }

  async release(): Promise<void> {
    this.text = undefined;
    this.texts = [];
  }
}

/**
 * A search answer read whole, as a SearchPage. Non-JSON bodies fail with the content type and the
 * first characters; JSON that is not a Bundle fails naming what it is.
 */
export function parseSearchPage(
  res: Pick<HttpResponse, 'url' | 'text' | 'contentType' | 'status'>,
  wanted?: number,
): SearchPage {
  const scanner = new BundleScanner();
  const texts: string[] = [];
  try {
    scanner.push(res.text, (t) => texts.push(t));
    scanner.end();
  } catch (e) {
    if (!(e instanceof MalformedJson)) throw e;
    // Not JSON at all: name the content type and show the start of the body.
    const body = parseJsonBody<unknown>(res.text, res.contentType, res.url, res.status);
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw notBundle(res.url, {});
    throw malformed(res.url, e);
  }
  if (scanner.head.resourceType !== 'Bundle') throw notBundle(res.url, scanner.head);
  return new WholePage(res.url, res.text, scanner.head, scanner.entryIndex, texts, wanted);
}

/** A Bundle already in memory as a SearchPage. */
export function pageOfBundle(bundle: Bundle, url = ''): SearchPage {
  const { entry, ...head } = bundle;
  const index = Array.isArray(entry) ? Object.keys(bundle).indexOf('entry') : -1;
  return new WholePage(
    url,
    JSON.stringify(bundle),
    head,
    index,
    Array.isArray(entry) ? entry : [],
    undefined,
  );
}

/** SearchPage or Bundle: renderers take either. */
export function asSearchPage(item: SearchPage | Bundle): SearchPage {
  return typeof (item as SearchPage).entries === 'function'
    ? (item as SearchPage)
    : pageOfBundle(item as Bundle);
}

/** Read a chunk, or fail when the server sends nothing for `ms`. */
async function readChunk(reader: ChunkReader, ms: number, url: string): Promise<ChunkResult> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const idle = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new SmartError(
            'network',
            `no data from ${new URL(url).host} for ${Math.round(ms / 1000)}s while reading ${redactUrl(url)}`,
            {
              code: 'ETIMEDOUT',
              hint: 'the server stalled in the middle of a page; raise --timeout or try a smaller --count',
            },
          ),
        ),
      ms,
    );
  });
  try {
    return await Promise.race([reader.next(), idle]);
  } catch (e) {
    if (e instanceof SmartError) throw e;
    throw networkError(e, url, false, ms);
  } finally {
    clearTimeout(timer);
  }
}

/** A page read as it downloads: entries are parsed and handed out one at a time. */
export class StreamedPage extends BasePage {
  private readonly scanner = new BundleScanner();
  private iterator?: AsyncGenerator<BundleEntry>;
  private finished = false;

  constructor(
    readonly url: string,
    private readonly body: Readable,
    private readonly wanted: number | undefined,
    private readonly idleMs: number,
    private readonly signal?: AbortSignal,
  ) {
    super();
  }

  get head(): Bundle {
    return this.scanner.head as Bundle;
  }

  get hasEntry(): boolean {
    return this.scanner.entryIndex >= 0;
  }

  protected entryIndex(): number {
    return this.scanner.entryIndex;
  }

  entries(): AsyncIterable<BundleEntry> {
    this.iterator ??= this.read();
    const it = this.iterator;
    return { [Symbol.asyncIterator]: () => it };
  }

  private async *read(): AsyncGenerator<BundleEntry> {
    const reader = this.body[Symbol.asyncIterator]() as ChunkReader;
    const decoder = new TextDecoder();
    const counter = new EntryCounter(this.wanted);
    const ready: string[] = [];
    const collect = (t: string) => void ready.push(t);
    try {
      for (;;) {
        let chunk: ChunkResult;
        try {
          chunk = await readChunk(reader, this.idleMs, this.url);
        } catch (e) {
          if (this.signal?.aborted) throw this.signal.reason;
          throw e;
        }
        try {
          if (chunk.done) {
            this.scanner.push(decoder.decode(), collect);
            this.scanner.end();
          } else
            this.scanner.push(decoder.decode(chunk.value as Uint8Array, { stream: true }), collect);
        } catch (e) {
          if (e instanceof MalformedJson) throw malformed(this.url, e);
          throw e;
        }
        // After the limit, entries are only looked at to know whether the page was cut.
        for (let k = 0; k < ready.length; k++) {
          const entry = entryOf(ready[k]!, this.url);
          ready[k] = '';
          if (entry && counter.take(entry)) yield entry;
        }
        ready.length = 0;
        if (chunk.done) break;
      }
      this.finished = true;
      if (this.scanner.head.resourceType !== 'Bundle') {
        throw notBundle(this.url, this.scanner.head);
      }
      this.tallied = { matches: counter.matches, cut: counter.cut };
    } finally {
      if (!this.finished) this.body.destroy();
    }
  }

  async release(): Promise<void> {
    if (this.finished) return;
    if (this.iterator) await this.iterator.return(undefined);
    else this.body.destroy();
  }
}

export const isJsonType = (type: string) =>
  type.trim() === '' || /^application\/([\w.+-]*\+)?json\b/i.test(type.trim());

/** The whole body as text, streamed or not (an error body, or one that is not JSON). */
export async function bodyText(res: HttpResponse, idleMs: number): Promise<string> {
  const body = res.nodeBody;
  if (!body) return res.text;
  const reader = body[Symbol.asyncIterator]() as ChunkReader;
  const chunks: Uint8Array[] = [];
  try {
    for (;;) {
      const chunk = await readChunk(reader, idleMs, res.url);
      if (chunk.done) break;
      chunks.push(chunk.value as Uint8Array);
    }
  } catch (e) {
    body.destroy();
    throw e;
  }
  return Buffer.concat(chunks).toString('utf8');
}
