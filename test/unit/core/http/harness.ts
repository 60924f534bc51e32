import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll } from 'vitest';
import {
  createHttpClient,
  type HttpClientOptions,
  type RequestEvent,
} from '../../../../src/core/http/index.js';

export type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;

/** The HTTP server of one test file: what it answers (`handler`), what it got (`hits`). */
export interface TestServer {
  base: string;
  handler: Handler;
  hits: IncomingMessage[];
}

const answerOk: Handler = (_req, res) => res.end('ok');

/**
 * A server on 127.0.0.1 for the tests of the calling file: started before them, stopped after;
 * `handler` and `hits` are reset after each test.
 */
export function useServer(): TestServer {
  const srv: TestServer = { base: '', handler: answerOk, hits: [] };
  let server: Server;
  beforeAll(async () => {
    server = createServer((req, res) => {
      srv.hits.push(req);
      srv.handler(req, res, srv.hits.length);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    srv.base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  afterEach(() => {
    srv.hits = [];
    srv.handler = answerOk;
  });
  return srv;
}

/** A client whose sleeps are recorded, not waited for. */
export async function client(extra: HttpClientOptions = {}) {
  const delays: number[] = [];
  const events: RequestEvent[] = [];
  const http = await createHttpClient({
    userAgent: 'smart/9.9.9',
    sleep: async (ms) => void delays.push(ms),
    random: () => 0.5,
    onRequest: (e) => events.push(e),
    ...extra,
  });
  return { http, delays, events };
}

export const reply =
  (status: number, headers: Record<string, string> = {}, body = '') =>
  (_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(status, headers);
    res.end(body);
  };
