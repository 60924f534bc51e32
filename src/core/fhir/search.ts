import { SmartError } from '../errors.js';
import { redactUrl } from '../redact.js';
import {
  bodyText,
  isJsonType,
  nextLink,
  parseSearchPage,
  StreamedPage,
  type BasePage,
  type SearchOptions,
  type SearchPage,
  type SearchStats,
  type WholePage,
} from './pages.js';
import { searchPath, withParam, type SearchParam } from './query.js';
import type { Bundle, FhirRequester } from './types.js';

/** The search walk: pages one after another by their next links, within the origin, no cycles. */

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
