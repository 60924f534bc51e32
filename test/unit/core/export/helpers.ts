import { beforeAll } from 'vitest';
/**
 * Shared pieces of the unit tests of src/core/export/: HTTP answers as the session hands them
 * over, a session answering from a script, OperationOutcomes, and a session over a real HTTP
 * client for the tests that talk to a server on 127.0.0.1.
 */
import { fhirError, resolveFhirUrl } from '../../../../src/core/auth/session.js';
import { SmartError } from '../../../../src/core/errors.js';
import {
  createHttpClient,
  type HttpClient,
  type HttpClientOptions,
  type HttpRequest,
  type HttpResponse,
} from '../../../../src/core/http/index.js';
import { useServer } from '../http/harness.js';
import { httpResponse } from '../../../helpers/http-response.js';
import type { ExportSession } from '../../../../src/core/export/types.js';

export function response(
  status: number,
  body: unknown = '',
  headers: Record<string, string> = {},
  url = 'http://fhir.test/fhir/$export-status/1',
): HttpResponse {
  return httpResponse({
    url,
    status,
    body,
    contentType: headers['content-type'] ?? 'application/json',
    headers,
  });
}

/** A session answering from a script; records what was asked. */
export function fakeSession(answers: Array<HttpResponse | Error>) {
  const calls: Array<{ url: string; init: HttpRequest }> = [];
  const session: ExportSession = {
    async request(url, init = {}) {
      calls.push({ url, init });
      const next = answers.shift();
      if (!next) throw new Error('no more answers');
      if (next instanceof Error) throw next;
      return { ...next, url };
    },
    resolve(p) {
      if (/^https?:/.test(p)) {
        if (new URL(p).origin !== 'http://fhir.test') throw new SmartError('usage', 'foreign');
        return p;
      }
      return `http://fhir.test/fhir/${p}`;
    },
    error(res, method = 'GET') {
      return new SmartError(
        res.status === 403 ? 'auth' : 'fhir',
        `${method} answered ${res.status}`,
        {
          status: res.status,
        },
      );
    },
  };
  return { session, calls };
}

export const OO = (code: string, diagnostics = `x ${code}`) => ({
  resourceType: 'OperationOutcome',
  issue: [{ severity: 'error', code, diagnostics }],
});

/**
 * The session `smart export` gets, over a real HTTP client, minus the token endpoint: every
 * request carries `Authorization: Bearer test-token`; URLs resolve against `<base>/fhir` the
 * way FhirSession resolves them (another origin is refused); errors are worded by fhirError.
 */
export function httpSession(base: () => string, http: () => HttpClient): ExportSession {
  return {
    request: (pathOrUrl, init: HttpRequest = {}, options = {}) =>
      http().request(
        resolveFhirUrl(`${base()}/fhir`, pathOrUrl, undefined, options.trustedOrigins),
        {
          ...init,
          headers: { ...init.headers, authorization: 'Bearer test-token' },
        },
      ),
    resolve: (pathOrUrl) => resolveFhirUrl(`${base()}/fhir`, pathOrUrl),
    error: (res, method = 'GET') => fhirError(res, method),
  };
}

/**
 * A server on 127.0.0.1 for the calling file or describe block (useServer: its handler is set
 * per test) and the export session over a real HTTP client made with `clientOptions`.
 */
export function useSessionServer(clientOptions: HttpClientOptions = { retries: 0 }) {
  const srv = useServer();
  let http: HttpClient;
  beforeAll(async () => {
    http = await createHttpClient(clientOptions);
  });
  return {
    srv,
    session: httpSession(
      () => srv.base,
      () => http,
    ),
  };
}
