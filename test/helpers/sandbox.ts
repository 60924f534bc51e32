/**
 * e2e helper: the whole SMART Backend Services setup in one call, for any test that needs a
 * working client against the sandbox.
 *
 *   const flow = await startFlow();                       // RS384 key, client "e2e-client"
 *   const r = await smart(['token'], { ws: flow.ws, env: flow.env });
 *   ...
 *   await flow.close();
 *
 * startFlow(options) does, in order:
 *   1. starts the sandbox on 127.0.0.1, port 0 (options.sandbox is passed to startSandbox);
 *   2. makes a signing key with the core API (generateSigningKey) in a temp dir:
 *      <dir>/key.pem (0600) and <dir>/jwks.json beside it (so the CLI finds the kid);
 *   3. serves that JWKS over HTTP on 127.0.0.1:0 (Cache-Control: no-store, so that the server
 *      re-reads it: `flow.setJwks({keys: []})` revokes the key for the next token request);
 *   4. registers the client through the admin API (PUT /Client and /AccessPolicy with HTTP
 *      Basic root:<secret>) unless `register: false`;
 *   5. returns a fresh workspace (temp HOME / XDG dirs, see cli.ts) and the environment that
 *      points the CLI at it all: SMART_BASE_URL, SMART_CLIENT_ID, SMART_KEY.
 *
 * Options: alg ('RS384' | 'ES384' | any SigningAlg; default RS384), clientId, scope (Client.scope,
 * default "system/*.read"), register, accessPolicy (default true), sandbox (SandboxOptions).
 * Several flows may share one sandbox: pass `sandbox: existingHandle` (it is then not closed).
 * A second key for the same client: `flow.addKey('ES384')` writes another key file and adds its
 * public key to the served JWKS.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startSandbox } from '../../src/sandbox/index.js';
import type { SandboxHandle, SandboxOptions } from '../../src/sandbox/index.js';
import { generateSigningKey, type Jwks, type SigningAlg } from '../../src/core/auth/keys.js';
import { makeWorkspace, type Workspace } from './cli.js';
import { tempDir } from './tmp.js';

export interface FlowKey {
  alg: SigningAlg;
  kid: string;
  /** Path of the private key (PKCS#8 PEM, 0600), with jwks.json beside it. */
  keyFile: string;
  publicJwk: Jwks['keys'][number];
}

export interface Flow {
  sandbox: SandboxHandle;
  ws: Workspace;
  /** SMART_BASE_URL, SMART_CLIENT_ID, SMART_KEY: pass as `smart(args, { ws, env })`. */
  env: Record<string, string>;
  clientId: string;
  key: FlowKey;
  jwksUrl: string;
  /** What the JWKS server serves now. */
  jwks(): Jwks;
  /** Replace what the JWKS server serves (e.g. `{ keys: [] }` to revoke the key). */
  setJwks(jwks: Jwks): void;
  /** Another key: its own dir, added to the served JWKS. */
  addKey(alg: SigningAlg): Promise<FlowKey>;
  /** Requests the JWKS server answered. */
  jwksHits(): number;
  /** PUT /Client and /AccessPolicy again, with this Client body patch. */
  register(patch?: Record<string, unknown>): Promise<void>;
  close(): Promise<void>;
}

export interface FlowOptions {
  alg?: SigningAlg;
  clientId?: string;
  scope?: string;
  register?: boolean;
  accessPolicy?: boolean;
  /** Options for a new sandbox, or a running one to share. */
  sandbox?: SandboxOptions | SandboxHandle;
}

type GeneratedKey = Awaited<ReturnType<typeof generateSigningKey>>;

/**
 * The key pair of a flow: one per alg for the test file (an RSA key costs up to a second of CPU
 * on a busy machine, more than most tests), each flow writing it to its own dir. A second key
 * of a flow (`addKey`) and makeKey() are always new.
 */
const flowKeys = new Map<SigningAlg, Promise<GeneratedKey>>();
function flowKeyPair(alg: SigningAlg): Promise<GeneratedKey> {
  if (!flowKeys.has(alg)) flowKeys.set(alg, generateSigningKey(alg));
  return flowKeys.get(alg)!;
}

/** A new signing key in its own temp dir, with jwks.json beside it. */
export async function makeKey(alg: SigningAlg, pair?: Promise<GeneratedKey>): Promise<FlowKey> {
  const dir = tempDir('smart-key-');
  const k = await (pair ?? generateSigningKey(alg));
  const keyFile = join(dir, 'key.pem');
  writeFileSync(keyFile, k.privateKeyPem, { mode: 0o600 });
  writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [k.publicJwk] }, null, 2));
  return { alg, kid: k.kid, keyFile, publicJwk: k.publicJwk };
}

/** A tiny JWKS server: serves whatever `get()` returns, never cacheable. */
export async function serveJwks(
  get: () => Jwks,
): Promise<{ url: string; hits: () => number; close(): Promise<void> }> {
  let hits = 0;
  const server: Server = createServer((req, res) => {
    hits++;
    if (req.url !== '/.well-known/jwks.json') {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
      return;
    }
    res
      .writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
      .end(JSON.stringify(get()));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    hits: () => hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function isHandle(s: FlowOptions['sandbox']): s is SandboxHandle {
  return Boolean(s && typeof (s as SandboxHandle).close === 'function' && 'requests' in s);
}

/** PUT a resource through the sandbox admin API (HTTP Basic root:<secret>). */
export async function adminPut(
  sandbox: SandboxHandle,
  path: string,
  body: unknown,
): Promise<number> {
  const res = await fetch(`${sandbox.url}${path}`, {
    method: 'PUT',
    headers: {
      'content-type': 'application/json',
      authorization: `Basic ${Buffer.from(`root:${sandbox.adminSecret}`).toString('base64')}`,
    },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`PUT ${path} answered ${res.status}: ${text}`);
  return res.status;
}

export async function startFlow(options: FlowOptions = {}): Promise<Flow> {
  const shared = isHandle(options.sandbox);
  const sandbox = isHandle(options.sandbox)
    ? options.sandbox
    : await startSandbox({ port: 0, ...(options.sandbox ?? {}) });
  const clientId = options.clientId ?? 'e2e-client';
  const alg = options.alg ?? 'RS384';
  const key = await makeKey(alg, flowKeyPair(alg));
  let served: Jwks = { keys: [key.publicJwk] };
  const jwksServer = await serveJwks(() => served);
  const ws = makeWorkspace();

  const register = async (patch: Record<string, unknown> = {}) => {
    await adminPut(sandbox, `/Client/${clientId}`, {
      type: 'bulk-api-client',
      active: true,
      auth: {
        client_credentials: {
          client_assertion_types: ['urn:ietf:params:oauth:client-assertion-type:jwt-bearer'],
          access_token_expiration: 300,
          token_format: 'jwt',
        },
      },
      scope: (options.scope ?? 'system/*.read').split(' '),
      jwks_uri: jwksServer.url,
      grant_types: ['client_credentials'],
      ...patch,
    });
    if (options.accessPolicy !== false) {
      await adminPut(sandbox, `/AccessPolicy/${clientId}`, {
        engine: 'allow',
        link: [{ id: clientId, resourceType: 'Client' }],
      });
    }
  };
  if (options.register !== false) await register();

  return {
    sandbox,
    ws,
    env: { SMART_BASE_URL: sandbox.url, SMART_CLIENT_ID: clientId, SMART_KEY: key.keyFile },
    clientId,
    key,
    jwksUrl: jwksServer.url,
    jwks: () => served,
    setJwks: (jwks) => {
      served = jwks;
    },
    addKey: async (alg) => {
      const k = await makeKey(alg);
      served = { keys: [...served.keys, k.publicJwk] };
      return k;
    },
    jwksHits: jwksServer.hits,
    register,
    close: async () => {
      await jwksServer.close();
      if (!shared) await sandbox.close();
    },
  };
}
