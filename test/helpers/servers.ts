/**
 * Small local servers for error-path tests: a port nothing listens on, and a server that gives
 * the same answer to every request (an HTML error page, a non-JSON body, a fake discovery...).
 */
import { readFileSync } from 'node:fs';
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { connect, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';

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

export interface ForwardProxy {
  url: string;
  /** What went through: absolute-form URLs for http, `CONNECT host:port` for tunnels. */
  seen: string[];
  close(): Promise<void>;
}

/** A small forward proxy, as corporate ones are: absolute-form http, CONNECT tunnels for https. */
export async function startForwardProxy(): Promise<ForwardProxy> {
  const seen: string[] = [];
  const proxy = createServer((req, res) => {
    seen.push(req.url ?? '');
    const target = new URL(req.url ?? '');
    const upstream = httpRequest(
      target,
      { method: req.method, headers: { ...req.headers, host: target.host } },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  proxy.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    seen.push(`CONNECT ${req.url}`);
    const [host, port] = (req.url ?? '').split(':');
    const upstream = connect(Number(port), host, () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise<void>((r) => {
        proxy.close(() => r());
        proxy.closeAllConnections();
      }),
  };
}

/** The test CA and the 127.0.0.1 / localhost server certificate it signed (test/fixtures/tls). */
export const TLS_DIR = fileURLToPath(new URL('../fixtures/tls/', import.meta.url));
export const TEST_CA = join(TLS_DIR, 'ca.pem');

/** An HTTPS server on 127.0.0.1 with the test certificate. */
export async function startHttpsServer(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ url: string; server: HttpsServer; close(): Promise<void> }> {
  const server = createHttpsServer(
    {
      key: readFileSync(join(TLS_DIR, 'server-key.pem')),
      cert: readFileSync(join(TLS_DIR, 'server.pem')),
    },
    handler,
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    server,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}
