import { parseJsonBody, type HttpResponse } from '../../src/core/http/index.js';

/**
 * An HttpResponse as the real client hands it over (core/http/client.ts): the content type in
 * the headers too, and json() parsing as it does, a SmartError for a body that is not JSON. An
 * object body is sent as JSON text. The unit tests' fakes build their answers with it.
 */
export function httpResponse(o: {
  url: string;
  status: number;
  body?: unknown;
  contentType: string;
  headers?: Record<string, string>;
}): HttpResponse {
  const text =
    o.body === undefined ? '' : typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
  return {
    status: o.status,
    ok: o.status >= 200 && o.status < 300,
    url: o.url,
    headers: new Headers({ 'content-type': o.contentType, ...(o.headers ?? {}) }),
    contentType: o.contentType,
    text,
    json: <T>() => parseJsonBody<T>(text, o.contentType, o.url, o.status),
  };
}
