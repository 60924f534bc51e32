import { SmartError, usageError } from './errors.js';
import { BundleScanner, MalformedJson, setOwn } from './bundle-scan.js';
import type { Readable } from 'node:stream';
import { networkError, parseJsonBody, type HttpRequest, type HttpResponse } from './http/index.js';
import { redactUrl } from './redact.js';

/** A FHIR resource as JSON: resourceType and, for stored resources, id. */
export interface Resource {
  resourceType: string;
  id?: string;
  meta?: { lastUpdated?: string; versionId?: string; [k: string]: unknown };
  [k: string]: unknown;
}

export interface BundleEntry {
  fullUrl?: string;
  resource?: Resource;
  search?: { mode?: string; score?: number };
  [k: string]: unknown;
}

export interface BundleLink {
  relation: string;
  url: string;
}

export interface Bundle extends Resource {
  resourceType: 'Bundle';
  type?: string;
  total?: number;
  link?: BundleLink[];
  entry?: BundleEntry[];
}

/** What searchPages needs from a session: FhirSession fits, and tests can pass a fake. */
export interface FhirRequester {
  request(pathOrUrl: string, init?: HttpRequest): Promise<HttpResponse>;
  error(res: HttpResponse, method?: string): SmartError;
  /** The FHIR base, to keep relative next links under it. */
  readonly fhirUrl?: string;
  /** A URL the server gave under its own name (serverUrl), moved to the origin we reach. */
  reachable?(url: string): string;
}

/** A search parameter as the user wrote it, decoded: `[name, value]`. */
export type SearchParam = [name: string, value: string];

/** What `smart query` was asked for: a search of `type`, or a read of `type/id`. */
export interface QueryTarget {
  type: string;
  id?: string;
  params: SearchParam[];
}

const TYPE = /^[A-Z][A-Za-z0-9]*$/;
// FHIR ids: 1-64 of [A-Za-z0-9-.]; underscore too, as some servers (Aidbox) allow it.
const ID = /^[A-Za-z0-9\-._]{1,64}$/;
// Names such as `code`, `_id`, `code:text`, `subject:Patient.name`, `_has:Observation:patient:code`,
// `value-quantity`.
const PARAM_NAME = /^[A-Za-z_$][A-Za-z0-9_.:$-]*$/;

/** Decode a percent-encoded query component; `+` stays a plus (FHIR dates carry `+hh:mm`). */
function decodeComponent(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function parseParam(raw: string, where: string): SearchParam {
  const eq = raw.indexOf('=');
  if (eq < 0) {
    throw usageError(
      `search parameter "${raw}" has no "=": parameters are name=value`,
      `e.g. smart query Observation code=4548-4 (${where})`,
      { code: 'bad_param' },
    );
  }
  const name = raw.slice(0, eq);
  const value = raw.slice(eq + 1);
  if (!PARAM_NAME.test(name)) {
    throw usageError(
      name === ''
        ? `search parameter "${raw}" has an empty name`
        : `"${name}" is not a valid search parameter name (in "${raw}")`,
      'names are letters, digits, _ - . $ and :modifiers, e.g. code:text=glucose',
      { code: 'bad_param' },
    );
  }
  return [name, value];
}

/**
 * `name=value` arguments to decoded parameter pairs, in order. The value is everything after the
 * first `=` (it may hold `=`, commas, `|`); repeated names stay repeated (FHIR ANDs them).
 */
export function toSearchParams(params: string[]): SearchParam[] {
  return params.map((p) => parseParam(p, 'arguments'));
}

/** A query string `a=b&c=d` (as in a URL) to decoded pairs. */
export function parseQueryString(query: string): SearchParam[] {
  return query
    .split('&')
    .filter((part) => part !== '')
    .map((part) => {
      const [name, value] = parseParam(part, 'query string');
      return [decodeComponent(name), decodeComponent(value)];
    });
}

// Kept literal: `,` (FHIR's OR separator), `|` (system|code), `:` (modifiers), `$`.
// Everything else outside the unreserved set is percent-encoded, `+` included.
function encodeComponent(s: string): string {
  return encodeURIComponent(s)
    .replace(/%2C/gi, ',')
    .replace(/%7C/gi, '|')
    .replace(/%3A/gi, ':')
    .replace(/%24/g, '$');
}

/** Pairs to a query string; spaces are %20 and `+` is %2B, so dates with offsets survive. */
export function encodeSearchParams(params: SearchParam[]): string {
  return params.map(([n, v]) => `${encodeComponent(n)}=${encodeComponent(v)}`).join('&');
}

/**
 * The `smart query` target: `Type`, `Type/id` or `Type?a=b&c=d`, plus `name=value` arguments.
 */
export function parseQueryTarget(target: string, params: string[] = []): QueryTarget {
  const q = target.indexOf('?');
  const path = (q < 0 ? target : target.slice(0, q)).replace(/^\/+|\/+$/g, '');
  const fromQuery = q < 0 ? [] : parseQueryString(target.slice(q + 1));
  const parts = path.split('/');
  const type = parts[0] ?? '';
  if (!TYPE.test(type) || parts.length > 2) {
    throw usageError(
      `"${target}" is not a resource type, Type/id or "Type?params"`,
      'e.g. smart query Patient, smart query Patient/123, smart query "Observation?code=4548-4"; use `smart api` for other paths',
      { code: 'bad_target' },
    );
  }
  const id = parts[1];
  if (id !== undefined && !ID.test(id)) {
    throw usageError(
      `"${id}" is not a valid FHIR id (in "${target}")`,
      'ids are 1-64 letters, digits, "-" and "."',
      { code: 'bad_target' },
    );
  }
  return { type, id, params: [...fromQuery, ...toSearchParams(params)] };
}

/** Replace every `name` parameter by one with this value (or add it). */
export function withParam(params: SearchParam[], name: string, value: string): SearchParam[] {
  return [...params.filter(([n]) => n !== name), [name, value]];
}

export function searchPath(type: string, params: SearchParam[]): string {
  const q = encodeSearchParams(params);
  return q ? `${type}?${q}` : type;
}

/** Entries that are search results: `search.mode` match, or no mode at all. */
export function isMatch(entry: BundleEntry): boolean {
  const mode = entry.search?.mode;
  return mode === undefined || mode === 'match';
}

export function nextLink(bundle: Bundle): string | undefined {
  return bundle.link?.find((l) => l.relation === 'next')?.url;
}

async function fhirJson<T>(
  session: FhirRequester,
  path: string,
): Promise<{ res: HttpResponse; body: T }> {
  const res = await session.request(path);
  if (!res.ok) throw session.error(res, 'GET');
  return { res, body: res.json<T>() };
}

/** GET [base]/Type/id: the resource, and its JSON text as the server sent it. */
export async function readResource(
  session: FhirRequester,
  type: string,
  id: string,
  params: SearchParam[] = [],
): Promise<{ resource: Resource; text: string }> {
  const { res, body } = await fhirJson<Resource>(
    session,
    searchPath(`${type}/${encodeURIComponent(id)}`, params),
  );
  if (!body || typeof body !== 'object' || typeof body.resourceType !== 'string') {
    throw new SmartError('fhir', `GET ${res.url} did not return a FHIR resource`, {
      hint: 'is --fhir-url the FHIR base of the server?',
    });
  }
  return { resource: body, text: res.text };
}

/** GET [base]/Type/id. */
export async function read(
  session: FhirRequester,
  type: string,
  id: string,
  params: SearchParam[] = [],
): Promise<Resource> {
  return (await readResource(session, type, id, params)).resource;
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

abstract class BasePage implements SearchPage {
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
class WholePage extends BasePage {
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
class StreamedPage extends BasePage {
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

const isJsonType = (type: string) =>
  type.trim() === '' || /^application\/([\w.+-]*\+)?json\b/i.test(type.trim());

/** The whole body as text, streamed or not (an error body, or one that is not JSON). */
async function bodyText(res: HttpResponse, idleMs: number): Promise<string> {
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

export interface SearchPageStream extends AsyncIterable<SearchPage> {
  readonly stats: SearchStats;
}

export interface SearchPages extends AsyncIterable<Bundle> {
  readonly stats: SearchStats;
}

/**
 * Search `type`, page by page. By default one page; `all` follows `Bundle.link[next]` exactly as
 * the server gives it, and `limit` stops after that many matches without fetching a page it does
 * not need (the last page's entries are cut after the last wanted match). A next link on another
 * origin is refused: the token must not leak. Pages stream in (see SearchOptions.stream).
 */
export function streamSearch(
  session: FhirRequester,
  type: string,
  params: SearchParam[],
  options: SearchOptions = {},
): SearchPageStream {
  const stats: SearchStats = { pages: 0, matches: 0, more: false };
  const limit = options.limit;
  let query = params;
  if (options.count !== undefined) query = withParam(query, '_count', String(options.count));
  // Without a page size, ask for just what --limit needs (servers cap it themselves).
  else if (limit !== undefined && !query.some(([n]) => n === '_count')) {
    query = withParam(query, '_count', String(Math.max(1, Math.min(limit, 1000))));
  }
  const follow = Boolean(options.all) || limit !== undefined;
  const stream = options.stream !== false;
  const idleMs = options.idleTimeoutMs ?? 30_000;

  async function open(url: string): Promise<BasePage> {
    // Pages are capped (--max-response) even though they stream: a page that never ends stops.
    const res = await session.request(url, { stream, sizeCap: 'fhir' });
    const wanted = limit === undefined ? undefined : limit - stats.matches;
    if (!res.ok) throw session.error({ ...res, text: await bodyText(res, idleMs) }, 'GET');
    if (!stream || !res.nodeBody || !isJsonType(res.contentType)) {
      return parseSearchPage({ ...res, text: await bodyText(res, idleMs) }, wanted) as WholePage;
    }
    return new StreamedPage(res.url, res.nodeBody, wanted, idleMs, options.signal);
  }

  async function* pages(): AsyncGenerator<SearchPage> {
    let url: string | undefined = searchPath(type, query);
    // Every page seen, by normalised URL: a next link back to any of them is a cycle (2 -> 3 -> 2
    // would otherwise be followed forever).
    const visited = new Map<string, number>();
    // Cleared by hand: a suspended generator would otherwise keep the last page alive while the
    // next one downloads.
    let page: BasePage | undefined;
    let warnedOutside = false;
    while (url) {
      if (options.signal?.aborted) throw options.signal.reason;
      page = await open(url);
      const pageUrl = page.url;
      stats.pages++;
      if (stats.pages === 1) stats.firstUrl = pageUrl;
      visited.set(pageKey(pageUrl), stats.pages);
      try {
        yield page;
        const { matches, cut } = await page.tally();
        stats.matches += matches;
        if (stats.pages === 1 && typeof page.head.total === 'number') {
          stats.total = page.head.total;
        }
        const next = nextLink(page.head);
        const done = !follow || (limit !== undefined && stats.matches >= limit);
        stats.more = cut || (done && next !== undefined);
        if (done || !next) return;
        const following = checkNextLink(next, pageUrl, session, () => {
          if (warnedOutside) return;
          warnedOutside = true;
          options.onWarning?.(
            `the server's next link ${next} lies outside the FHIR base ${session.fhirUrl}: following it under the FHIR base`,
          );
        });
        const seen = visited.get(pageKey(following));
        if (seen !== undefined) {
          throw new SmartError(
            'fhir',
            `next link of page ${stats.pages} points back to page ${seen}: ${redactUrl(following)}`,
            {
              code: 'paging_cycle',
              hint: 'the server pages in a cycle; use --limit, or report it to the server operator',
              details: { next },
            },
          );
        }
        url = following;
      } finally {
        await page.release();
        page = undefined;
      }
    }
  }

  return { stats, [Symbol.asyncIterator]: () => pages() };
}

/** Like streamSearch, one whole Bundle per page (entries cut at `limit`). */
export function searchPages(
  session: FhirRequester,
  type: string,
  params: SearchParam[],
  options: SearchOptions = {},
): SearchPages {
  const stream = streamSearch(session, type, params, options);
  return {
    stats: stream.stats,
    async *[Symbol.asyncIterator]() {
      for await (const page of stream) yield await page.bundle();
    },
  };
}

/** A page URL as a key for cycle detection: scheme and host case, default port and fragment do not count. */
function pageKey(url: string): string {
  try {
    const u = new URL(url);
    u.hash = '';
    return u.href;
  } catch {
    return url;
  }
}

/**
 * Resolve a next link (relative ones against the page) and refuse one on another origin. A link
 * under the server's own name (serverUrl) moves to the origin we reach. A relative link whose
 * path lies outside the FHIR base (Aidbox documents `/Patient?_page=4` for a `/fhir` search; at
 * the root it would reach Aidbox's non-FHIR API) is resolved under the FHIR base instead.
 */
export function checkNextLink(
  next: string,
  pageUrl: string,
  session: Pick<FhirRequester, 'fhirUrl' | 'reachable'> = {},
  outsideBase: () => void = () => {},
): string {
  const absolute = /^[a-z][a-z0-9+.-]*:\/\//i.test(next);
  let url: URL;
  try {
    url = new URL(absolute && session.reachable ? session.reachable(next) : next, pageUrl);
  } catch {
    throw new SmartError('fhir', `the server's next link is not a URL: ${next}`, {
      hint: 'the server sent a malformed Bundle.link; report it to the server operator',
    });
  }
  if (!absolute && !next.startsWith('//') && session.fhirUrl) {
    const base = new URL(session.fhirUrl.replace(/\/+$/, '') + '/');
    if (url.origin === base.origin && !url.pathname.startsWith(base.pathname)) {
      const under = new URL(base.pathname.replace(/\/$/, '') + url.pathname + url.search, base);
      outsideBase();
      return under.toString();
    }
  }
  const origin = new URL(pageUrl).origin;
  if (url.origin !== origin) {
    throw new SmartError(
      'fhir',
      `refusing to follow the next link to ${url.origin}: it is not the FHIR server's origin (${origin}), and the access token must not go there`,
      {
        code: 'foreign_origin',
        hint: `the server builds its links with another base URL (on Aidbox: BOX_WEB_BASE_URL, or a proxy setting X-Original-Uri): if ${url.origin} is this server's own name for itself, set \`smart config set serverUrl ${url.origin}\`, or fix the server setting`,
        details: { next },
      },
    );
  }
  // Absolute links are passed on exactly as given (or as moved from the server's own name); the
  // session checks the origin again.
  if (absolute) return session.reachable ? session.reachable(next) : next;
  return url.toString();
}
