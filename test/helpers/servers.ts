/**
 * Small local servers for error-path tests: a port nothing listens on, and a server that gives
 * the same answer to every request (an HTML error page, a non-JSON body, a fake discovery...).
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A port nothing listens on: bind one, note it, close it. */
export async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export interface Answer {
  status: number;
  contentType?: string;
  body: string;
}

export interface FixedServer {
  url: string;
  /** "METHOD /path" of every request, in order. */
  hits: string[];
  /** The requests themselves (headers and body), for "nothing secret was sent" checks. */
  requests: Array<{
    method: string;
    url: string;
    headers: IncomingMessage['headers'];
    body: string;
  }>;
  close(): Promise<void>;
}

/**
 * A server that answers with `answer` (or, with a function, per path); unknown paths get a
 * 404 JSON error.
 */
export async function fixedServer(
  answer: Answer | ((path: string) => Answer | undefined),
): Promise<FixedServer> {
  const hits: string[] = [];
  const requests: FixedServer['requests'] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      hits.push(`${req.method} ${req.url}`);
      requests.push({
        method: req.method ?? 'GET',
        url: req.url ?? '/',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      const a =
        typeof answer === 'function'
          ? (answer(new URL(req.url ?? '/', 'http://x').pathname) ?? {
              status: 404,
              contentType: 'application/json',
              body: '{"error":"not found"}',
            })
          : answer;
      res.writeHead(a.status, { 'content-type': a.contentType ?? 'application/json' }).end(a.body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}
