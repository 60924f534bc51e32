import { SmartError, usageError } from './errors.js';
import type { HttpRequest, HttpResponse } from './http.js';

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

/** GET [base]/Type/id. */
export async function read(
  session: FhirRequester,
  type: string,
  id: string,
  params: SearchParam[] = [],
): Promise<Resource> {
  const { res, body } = await fhirJson<Resource>(
    session,
    searchPath(`${type}/${encodeURIComponent(id)}`, params),
  );
  if (!body || typeof body !== 'object' || typeof body.resourceType !== 'string') {
    throw new SmartError('fhir', `GET ${res.url} did not return a FHIR resource`, {
      hint: 'is --fhir-url the FHIR base of the server?',
    });
  }
  return body;
}

export interface SearchOptions {
  /** Follow next links to the end. */
  all?: boolean;
  /** Stop after this many matches; implies following next links as far as needed. */
  limit?: number;
  /** `_count`: the page size asked of the server. */
  count?: number;
  signal?: AbortSignal;
}

export interface SearchStats {
  pages: number;
  /** Match entries yielded so far (after the limit). */
  matches: number;
  /** `Bundle.total` of the first page, when the server gave one. */
  total?: number;
  /** The server has more results than were yielded. */
  more: boolean;
  /** The URL of the first page. */
  firstUrl?: string;
}

export interface SearchPages extends AsyncIterable<Bundle> {
  readonly stats: SearchStats;
}

/**
 * Search `type`, one Bundle per page. By default one page; `all` follows `Bundle.link[next]`
 * exactly as the server gives it, and `limit` stops after that many matches without fetching a
 * page it does not need (the last Bundle's entries are cut after the last wanted match). A next
 * link on another origin is refused: the token must not leak.
 */
export function searchPages(
  session: FhirRequester,
  type: string,
  params: SearchParam[],
  options: SearchOptions = {},
): SearchPages {
  const stats: SearchStats = { pages: 0, matches: 0, more: false };
  const limit = options.limit;
  let query = params;
  if (options.count !== undefined) query = withParam(query, '_count', String(options.count));
  // Without a page size, ask for just what --limit needs (servers cap it themselves).
  else if (limit !== undefined && !query.some(([n]) => n === '_count')) {
    query = withParam(query, '_count', String(Math.max(1, Math.min(limit, 1000))));
  }
  const follow = Boolean(options.all) || limit !== undefined;

  async function* pages(): AsyncGenerator<Bundle> {
    let url: string | undefined = searchPath(type, query);
    while (url) {
      if (options.signal?.aborted) throw options.signal.reason;
      const fetched: { res: HttpResponse; body: Bundle } = await fhirJson<Bundle>(session, url);
      const { res, body } = fetched;
      if (!body || body.resourceType !== 'Bundle') {
        throw new SmartError(
          'fhir',
          `GET ${res.url} returned ${body && typeof body === 'object' && 'resourceType' in body ? `a ${String(body.resourceType)}` : 'JSON that is not a FHIR resource'}, not a Bundle`,
          { hint: 'a search answers with a searchset Bundle; check the URL and --fhir-url' },
        );
      }
      stats.pages++;
      if (stats.pages === 1) {
        stats.firstUrl = res.url;
        if (typeof body.total === 'number') stats.total = body.total;
      }
      const entries = Array.isArray(body.entry) ? body.entry : [];
      let page: Bundle = body;
      let cut = false;
      if (limit !== undefined) {
        let seen = stats.matches;
        let end = entries.length;
        for (let i = 0; i < entries.length; i++) {
          if (!isMatch(entries[i]!)) continue;
          if (seen === limit) {
            end = i;
            cut = true;
            break;
          }
          seen++;
        }
        if (cut) page = { ...body, entry: entries.slice(0, end) };
        stats.matches = seen;
      } else {
        stats.matches += entries.filter(isMatch).length;
      }
      const next = nextLink(body);
      const done = !follow || (limit !== undefined && stats.matches >= limit);
      stats.more = cut || (done && next !== undefined);
      yield page;
      if (done || !next) return;
      const following = checkNextLink(next, res.url);
      if (following === url || following === res.url) {
        throw new SmartError(
          'fhir',
          `the server's next link points back to the same page: ${next}`,
          {
            hint: 'the server pages incorrectly; use --limit, or report it to the server operator',
          },
        );
      }
      url = following;
    }
  }

  return { stats, [Symbol.asyncIterator]: () => pages() };
}

/** Resolve a next link (relative ones against the page) and refuse one on another origin. */
function checkNextLink(next: string, pageUrl: string): string {
  let url: URL;
  try {
    url = new URL(next, pageUrl);
  } catch {
    throw new SmartError('fhir', `the server's next link is not a URL: ${next}`, {
      hint: 'the server sent a malformed Bundle.link; report it to the server operator',
    });
  }
  const origin = new URL(pageUrl).origin;
  if (url.origin !== origin) {
    throw new SmartError(
      'fhir',
      `refusing to follow the next link to ${url.origin}: it is not the FHIR server's origin (${origin}), and the access token must not go there`,
      {
        code: 'foreign_origin',
        hint: 'the server builds its links with another base URL (on Aidbox: BOX_WEB_BASE_URL, or a proxy setting X-Original-Uri); use --fhir-url with that origin, or fix the server setting',
        details: { next },
      },
    );
  }
  // Absolute links are passed on exactly as given; the session checks the origin again.
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(next) ? next : url.toString();
}
