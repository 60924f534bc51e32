/**
 * A scripted HttpClient for unit tests of the core: every request is recorded, and a handler
 * decides the answer. No sockets, so tests run in milliseconds and can count requests exactly.
 */
import type { HttpClient, HttpRequest, HttpResponse } from '../../src/core/http/index.js';
import { httpResponse } from './http-response.js';
import { resolvePaths, type Settings } from '../../src/core/settings.js';
import { tempDir } from './tmp.js';

export interface FakeCall {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: string;
}

export interface FakeAnswer {
  status?: number;
  /** An object is sent as JSON; a string as is. */
  body?: unknown;
  contentType?: string;
  headers?: Record<string, string>;
}

export type FakeHandler = (call: FakeCall) => FakeAnswer | Promise<FakeAnswer>;

export interface FakeHttp extends HttpClient {
  calls: FakeCall[];
}

export function fakeHttp(handler: FakeHandler): FakeHttp {
  const calls: FakeCall[] = [];
  return {
    calls,
    async request(url: string, init: HttpRequest = {}): Promise<HttpResponse> {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(init.headers ?? {})) headers[k.toLowerCase()] = v;
      const call: FakeCall = {
        url,
        method: (init.method ?? 'GET').toUpperCase(),
        headers,
        body: init.body === undefined ? '' : String(init.body),
      };
      calls.push(call);
      const a = await handler(call);
      const contentType =
        a.contentType ??
        (a.body !== undefined && typeof a.body !== 'string' ? 'application/json' : 'text/plain');
      return httpResponse({
        url,
        status: a.status ?? 200,
        body: a.body,
        contentType,
        headers: a.headers,
      });
    },
  };
}

/** A Settings object for tests, with its own temp cache and config dirs. */
export function testSettings(over: Partial<Settings> = {}): Settings {
  const home = tempDir('smart-unit-');
  return {
    profile: 'default',
    profileExists: false,
    scope: 'system/*.read',
    adminClientId: 'root',
    timeoutMs: 30_000,
    paths: resolvePaths({ HOME: home }),
    sources: {},
    ...over,
  };
}

/** Form fields of a recorded POST. */
export function formOf(call: FakeCall): Record<string, string> {
  return Object.fromEntries(new URLSearchParams(call.body));
}
