import { writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { generateSigningKey } from '../../src/core/auth/keys.js';
import type { SandboxHandle, SandboxOptions } from '../../src/sandbox/index.js';
import type { Workspace } from '../helpers/cli.js';
import { startFlow, type Flow } from '../helpers/sandbox.js';

/** Setup of the query/api e2e tests, on the shared flow helper (test/helpers/sandbox.ts). */

export interface QueryFlow {
  sandbox: SandboxHandle;
  ws: Workspace;
  clientId: string;
  /** Environment for the CLI: base URL, client id, key file, scope. */
  env: Record<string, string>;
  /** Register another client on the same sandbox; returns its CLI environment. */
  registerClient(
    id: string,
    options?: { scope?: string[]; policy?: boolean },
  ): Promise<Record<string, string>>;
  close(): Promise<void>;
}

/** A sandbox with a registered backend-services client (JWKS served over HTTP, allow policy). */
export async function startQueryFlow(options: SandboxOptions = {}): Promise<QueryFlow> {
  const main = await startFlow({ clientId: 'query-e2e', sandbox: { port: 0, ...options } });
  const others: Flow[] = [];
  const registerClient = async (id: string, o: { scope?: string[]; policy?: boolean } = {}) => {
    const scope = (o.scope ?? ['system/*.read']).join(' ');
    const flow = await startFlow({
      clientId: id,
      scope,
      accessPolicy: o.policy !== false,
      sandbox: main.sandbox,
    });
    others.push(flow);
    return { ...flow.env, SMART_SCOPE: scope };
  };
  return {
    sandbox: main.sandbox,
    ws: main.ws,
    clientId: main.clientId,
    env: { ...main.env, SMART_SCOPE: 'system/*.read' },
    registerClient,
    close: async () => {
      for (const f of others) await f.close();
      await main.close();
    },
  };
}

async function writeKey(ws: Workspace, name: string) {
  const key = await generateSigningKey('RS384');
  const file = join(ws.home, `${name}.pem`);
  writeFileSync(file, key.privateKeyPem, { mode: 0o600 });
  return { key, file };
}

export interface StubRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

export interface StubServer {
  url: string;
  requests: StubRequest[];
  env: Record<string, string>;
  close(): Promise<void>;
}

/**
 * A misbehaving "FHIR server" for the cases the sandbox will not produce: it hands out opaque
 * tokens at /auth/token and lets `handler` answer everything else.
 */
export async function startStubServer(
  ws: Workspace,
  handler: (req: StubRequest, res: ServerResponse, origin: string) => void,
): Promise<StubServer> {
  const requests: StubRequest[] = [];
  let origin = '';
  let tokens = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r = {
        method: req.method ?? 'GET',
        url: req.url ?? '/',
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      };
      requests.push(r);
      if (r.url === '/auth/token') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            access_token: `stub-token-${++tokens}`,
            token_type: 'Bearer',
            expires_in: 300,
          }),
        );
        return;
      }
      handler(r, res, origin);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { file } = await writeKey(ws, 'stub');
  return {
    url: origin,
    requests,
    env: {
      SMART_BASE_URL: origin,
      SMART_TOKEN_URL: `${origin}/auth/token`,
      SMART_CLIENT_ID: 'stub-client',
      SMART_KEY: file,
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  type = 'application/fhir+json',
) {
  res.writeHead(status, { 'content-type': type });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
}
