import { Readable } from 'node:stream';
import {
  type Bundle,
  type BundleEntry,
  type FhirRequester,
  type SearchPage,
  isMatch,
} from '../../../../src/core/fhir/index.js';
import type { HttpResponse } from '../../../../src/core/http/index.js';
import { httpResponse } from '../../../helpers/http-response.js';
import { fhirError } from '../../../../src/core/auth/session.js';

/** A fake FHIR session answering from a map of pages, and Bundles to fill it with. */

export const BASE = 'http://fhir.test/fhir';

export function response(
  url: string,
  status: number,
  body: unknown,
  contentType = 'application/fhir+json',
): HttpResponse {
  return httpResponse({ url, status, body, contentType });
}

export function chunked(text: string, size: number, failAfter?: number): Readable {
  const bytes = new TextEncoder().encode(text);
  return Readable.from(
    (function* () {
      for (let at = 0; at < bytes.length; at += size) {
        if (failAfter !== undefined && at >= failAfter) {
          throw Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
        }
        yield bytes.slice(at, at + size);
      }
    })(),
  );
}

export async function entriesOf(page: SearchPage): Promise<BundleEntry[]> {
  const out: BundleEntry[] = [];
  for await (const e of page.entries()) out.push(e);
  return out;
}

/** A session that answers from a map of absolute URL -> body and records every request. */
export function fakeSession(
  pages: Record<string, unknown>,
): FhirRequester & { requested: string[] } {
  const requested: string[] = [];
  return {
    requested,
    async request(pathOrUrl: string, init?: { stream?: boolean }) {
      const url = /^https?:/.test(pathOrUrl) ? pathOrUrl : `${BASE}/${pathOrUrl}`;
      if (new URL(url).origin !== new URL(BASE).origin) throw new Error(`session asked for ${url}`);
      requested.push(url);
      const body = pages[url];
      if (body === undefined)
        return response(url, 404, {
          resourceType: 'OperationOutcome',
          issue: [{ severity: 'error', code: 'not-found' }],
        });
      if (typeof body === 'object' && body && 'status' in body && 'raw' in body) {
        const b = body as { status: number; raw: string; type: string };
        return response(url, b.status, b.raw, b.type);
      }
      const res = response(url, 200, body);
      // Streamed like a real server: the body in small pieces, cut anywhere.
      return init?.stream ? { ...res, text: '', nodeBody: chunked(res.text, 7) } : res;
    },
    error: (res, method = 'GET') => fhirError(res, method, 'system/*.read'),
  };
}

export const obs = (id: string): BundleEntry => ({
  fullUrl: `${BASE}/Observation/${id}`,
  resource: { resourceType: 'Observation', id },
  search: { mode: 'match' },
});

export function bundle(entries: BundleEntry[] | undefined, next?: string, total?: number): Bundle {
  return {
    resourceType: 'Bundle',
    type: 'searchset',
    ...(total === undefined ? {} : { total }),
    link: [
      { relation: 'self', url: 'ignored' },
      ...(next ? [{ relation: 'next', url: next }] : []),
    ],
    ...(entries ? { entry: entries } : {}),
  };
}

export async function collect(pages: AsyncIterable<Bundle>): Promise<Bundle[]> {
  const out: Bundle[] = [];
  for await (const p of pages) out.push(p);
  return out;
}

export const ids = (bundles: Bundle[]) =>
  bundles.flatMap((b) => (b.entry ?? []).filter(isMatch).map((e) => e.resource?.id));

// Next links deliberately use a server-specific shape the client must not rebuild.
export const P1 = `${BASE}/Observation?code=x`;
export const P2 = `${BASE}/Observation?code=x&_page=2&_opaque=a%7Cb`;
export const P3 = `${BASE}/Observation?_cursor=ZZZ`;

export function threePages() {
  return fakeSession({
    [P1]: bundle([obs('1'), obs('2')], P2, 5),
    [P2]: bundle([obs('3'), obs('4')], P3, 5),
    [P3]: bundle([obs('5')], undefined, 5),
  });
}
