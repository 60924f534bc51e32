import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { promises as fs } from 'node:fs';
import { SmartError, usageError } from './errors.js';
import { parseJwks, privateMembers, readJwksFile, type Jwks } from './auth/keys.js';

export const JWKS_PATHS = ['/.well-known/jwks.json', '/jwks.json'] as const;

/** One line per request, so an operator sees whether the FHIR server reached the JWKS. */
export interface JwksFetchEvent {
  time: Date;
  remoteAddress: string;
  userAgent: string;
  method: string;
  path: string;
  status: number;
}

export interface JwksServerOptions {
  /** The JWKS file to serve; re-read when it changes. */
  file?: string;
  /** Or a JWKS held in memory (tests, the demo). */
  jwks?: Jwks;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Cache-Control max-age in seconds. */
  maxAge?: number;
  onRequest?: (event: JwksFetchEvent) => void;
  /** The file changed: reloaded, or kept the previous set because the new one is unusable. */
  onReload?: (event: { file: string; keys: number; error?: SmartError }) => void;
}

export interface JwksServer {
  /** http://host:port/.well-known/jwks.json */
  url: string;
  host: string;
  port: number;
  /**
   * Stop: idle keep-alive connections close at once; requests in flight get `graceMs` (default
   * 0) to finish, then their connections are destroyed.
   */
  close(graceMs?: number): Promise<void>;
}

/** A JWKS that may be published: valid, and no private members anywhere. */
export function checkPublishable(jwks: Jwks, source: string): Jwks {
  const leaks = privateMembers(jwks);
  if (leaks.length) {
    throw usageError(
      `${source} holds private key material, refusing to publish it: ${leaks.join('; ')}`,
      'publish only public keys: `smart jwks show` lists them, `smart keygen` writes a public jwks.json',
      { code: 'private_members', details: { keys: leaks } },
    );
  }
  return jwks;
}

function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** Serve a public JWKS over HTTP with Cache-Control, for registration by URL (jwks_uri). */
export async function startJwksServer(options: JwksServerOptions): Promise<JwksServer> {
  const host = options.host ?? '127.0.0.1';
  const maxAge = options.maxAge ?? 300;
  const file = options.file;
  if (!file && !options.jwks) throw usageError('startJwksServer: give a file or a jwks');

  let current = checkPublishable(options.jwks ?? (await readJwksFile(file!)), file ?? 'the JWKS');
  let body = JSON.stringify(current);
  let stamp = file ? await fileStamp(file) : '';

  // Re-reading on a stat change is cheap and survives atomic renames, unlike fs.watch.
  async function refresh(): Promise<void> {
    if (!file) return;
    const next = await fileStamp(file);
    if (next === stamp) return;
    stamp = next;
    try {
      const text = await fs.readFile(file, 'utf8');
      current = checkPublishable(parseJwks(text, file), file);
      body = JSON.stringify(current);
      options.onReload?.({ file, keys: current.keys.length });
    } catch (e) {
      const error =
        e instanceof SmartError
          ? e
          : new SmartError('runtime', `cannot read ${file}: ${String(e)}`);
      options.onReload?.({ file, keys: current.keys.length, error });
    }
  }

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<number> => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const send = (status: number, payload: string, headers: Record<string, string> = {}) => {
      res.writeHead(status, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(payload),
        'access-control-allow-origin': '*',
        ...headers,
      });
      res.end(req.method === 'HEAD' ? undefined : payload);
      return status;
    };
    if (!(JWKS_PATHS as readonly string[]).includes(path)) {
      return send(
        404,
        JSON.stringify({ error: 'not_found', message: `the JWKS is at ${JWKS_PATHS[0]}` }),
      );
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return send(405, JSON.stringify({ error: 'method_not_allowed' }), { allow: 'GET, HEAD' });
    }
    await refresh();
    return send(200, body, { 'cache-control': `public, max-age=${maxAge}` });
  };

  const server = createServer((req, res) => {
    handle(req, res)
      .catch(() => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'server_error' }));
        return 500;
      })
      .then((status) =>
        options.onRequest?.({
          time: new Date(),
          remoteAddress: req.socket.remoteAddress ?? '-',
          userAgent: req.headers['user-agent'] ?? '-',
          method: req.method ?? '-',
          path: req.url ?? '/',
          status,
        }),
      )
      .catch(() => undefined);
  });

  const requestedPort = options.port ?? 8082;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      const where = `${formatHost(host)}:${requestedPort}`;
      if (e.code === 'EADDRINUSE') {
        reject(
          new SmartError('runtime', `cannot listen on ${where}: the port is already in use`, {
            cause: e,
            code: 'EADDRINUSE',
            hint: 'pass another --port (0 picks a free one), or stop the process using it',
          }),
        );
      } else if (e.code === 'EACCES') {
        reject(
          new SmartError('runtime', `cannot listen on ${where}: permission denied`, {
            cause: e,
            code: 'EACCES',
            hint: 'ports below 1024 need privileges; pass --port 8082',
          }),
        );
      } else if (e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND') {
        reject(
          new SmartError('usage', `cannot listen on ${where}: no such local address`, {
            cause: e,
            code: e.code,
            hint: 'pass --host 127.0.0.1, or 0.0.0.0 to listen on every interface',
          }),
        );
      } else {
        reject(new SmartError('runtime', `cannot listen on ${where}: ${e.message}`, { cause: e }));
      }
    });
    server.listen(requestedPort, host, () => resolve());
  });

  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : requestedPort;
  const url = `http://${formatHost(host)}:${port}${JWKS_PATHS[0]}`;
  let closing: Promise<void> | undefined;
  return {
    url,
    host,
    port,
    close(graceMs = 0) {
      closing ??= new Promise<void>((resolve) => {
        const timer =
          graceMs > 0 ? setTimeout(() => server.closeAllConnections(), graceMs) : undefined;
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        if (timer) server.closeIdleConnections();
        else server.closeAllConnections();
      });
      return closing;
    },
  };
}

async function fileStamp(file: string): Promise<string> {
  try {
    const st = await fs.stat(file);
    return `${st.mtimeMs}:${st.size}:${st.ino}`;
  } catch {
    return 'missing';
  }
}
