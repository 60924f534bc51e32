/**
 * A hostile FHIR server for e2e tests: one node:http server on 127.0.0.1 (port 0) whose routes
 * each misbehave in one precise way. It also answers the token endpoint, so the built CLI runs
 * against it with a real client key:
 *
 *   const h = await startHostile();
 *   const r = await smart(['query', 'Cycle', '--all'], { ws: h.ws, env: h.env });
 *   await h.close();                              // also removes the workspace and the key
 *
 * h.env points the CLI at it: SMART_FHIR_URL (<url>/fhir), SMART_TOKEN_URL (<url>/token),
 * SMART_CLIENT_ID, SMART_KEY. h.hits lists "METHOD /path?query" of every request.
 *
 * Behaviours live in BEHAVIOURS, keyed by path (the path without its query); add one there (one
 * misbehaviour per route, documented), or pass extra routes to startHostile({ routes }) for a
 * single test. A route gets (req, res, url, server).
 */
import { rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { execa } from 'execa';
import { generateSigningKey } from '../../src/core/auth/keys.js';
import { BIN, makeWorkspace, type RunResult, type Workspace } from './cli.js';

export type Behaviour = (
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  server: HostileServer,
) => void;

export interface HostileServer {
  /** http://127.0.0.1:<port> */
  url: string;
  /** <url>/fhir */
  fhirUrl: string;
  /** "METHOD /path?query" of every request, in order. */
  hits: string[];
  ws: Workspace;
  /** SMART_FHIR_URL, SMART_TOKEN_URL, SMART_CLIENT_ID, SMART_KEY. */
  env: Record<string, string>;
  /** Bytes written by the endless routes so far (to show the client stopped reading). */
  endlessBytes: () => number;
  close(): Promise<void>;
}

/** Text that drives a terminal: clear screen, set the window title (OSC ... BEL), a C1 CSI. */
export const ESCAPES = '\u001b[2J\u001b]0;pwned\u0007\u009b31m';
/** How ESCAPES must look once escaped for a terminal. */
export const ESCAPED = '\\u001b[2J\\u001b]0;pwned\\u0007\\u009b31m';

const FHIR_JSON = 'application/fhir+json';

function json(res: ServerResponse, status: number, body: unknown, type = FHIR_JSON): void {
  res.writeHead(status, { 'content-type': type }).end(JSON.stringify(body));
}

function searchset(entries: unknown[], next?: string, extra: Record<string, unknown> = {}) {
  return {
    resourceType: 'Bundle',
    type: 'searchset',
    ...extra,
    ...(next ? { link: [{ relation: 'next', url: next }] } : {}),
    entry: entries.map((resource) => ({ resource, search: { mode: 'match' } })),
  };
}

/**
 * Write `head`, then `chunk` forever (with backpressure) until the client goes away; `tally`
 * counts what was written.
 */
function endless(res: ServerResponse, head: string, chunk: string, tally: { bytes: number }) {
  const buf = Buffer.from(chunk);
  let closed = false;
  res.on('close', () => (closed = true));
  const pump = () => {
    while (!closed) {
      tally.bytes += buf.length;
      if (!res.write(buf)) return void res.once('drain', pump);
    }
  };
  res.write(head);
  pump();
}

const tallies = new WeakMap<HostileServer, { bytes: number }>();
const tallyOf = (s: HostileServer) => tallies.get(s)!;

/** An escape-laden Patient: every displayed field carries terminal control sequences. */
export function evilPatient(id = 'evil') {
  return {
    resourceType: 'Patient',
    id,
    name: [{ family: `Doe${ESCAPES}`, given: ['Jane'] }],
    gender: `female${ESCAPES}`,
    birthDate: '1970-01-01',
  };
}

export const BEHAVIOURS: Record<string, Behaviour> = {
  /** The token endpoint: any POST gets a bearer token for 300 s. */
  '/token': (_req, res) =>
    json(
      res,
      200,
      { access_token: 'hostile-token', token_type: 'bearer', expires_in: 300 },
      'application/json',
    ),

  /**
   * A token endpoint whose access token is a JWT that has already expired (its `exp` is 30 s
   * ago) while `expires_in` says 300 s: the token's own `exp` wins.
   */
  '/token-jwt-expired': (_req, res) => {
    const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const exp = Math.floor(Date.now() / 1000) - 30;
    const jwt = `${part({ alg: 'none', typ: 'JWT' })}.${part({ sub: 'hostile-client', exp })}.sig`;
    json(
      res,
      200,
      { access_token: jwt, token_type: 'bearer', expires_in: 300 },
      'application/json',
    );
  },

  /** A token endpoint whose JSON body never ends. */
  '/token-endless': (_req, res, _url, s) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    endless(res, '{"access_token":"', 'x'.repeat(16_384), tallyOf(s));
  },

  /** Next links in a cycle longer than one: page 1 -> 2 -> 3 -> 2 -> 3 ... */
  '/fhir/Cycle': (_req, res, url, s) => {
    const page = Number(url.searchParams.get('page') ?? '1');
    const next = page === 3 ? 2 : page + 1;
    json(
      res,
      200,
      searchset([{ resourceType: 'Patient', id: `p${page}` }], `${s.fhirUrl}/Cycle?page=${next}`),
    );
  },

  /** A search whose single page (a searchset Bundle) never ends: entries forever. */
  '/fhir/Endless': (_req, res, _url, s) => {
    res.writeHead(200, { 'content-type': FHIR_JSON });
    endless(
      res,
      '{"resourceType":"Bundle","type":"searchset","entry":[{"resource":{"resourceType":"Patient","id":"0"}}',
      `,{"resource":{"resourceType":"Patient","id":"${'1'.repeat(60)}"}}`.repeat(200),
      tallyOf(s),
    );
  },

  /** A read whose body never ends (inside one string). */
  '/fhir/Patient/endless': (_req, res, _url, s) => {
    res.writeHead(200, { 'content-type': FHIR_JSON });
    endless(
      res,
      '{"resourceType":"Patient","id":"endless","text":"',
      'y'.repeat(16_384),
      tallyOf(s),
    );
  },

  /** An error answer (500, an OperationOutcome) whose body never ends. */
  '/fhir/EndlessOutcome': (_req, res, _url, s) => {
    res.writeHead(500, { 'content-type': FHIR_JSON });
    endless(
      res,
      '{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"exception","diagnostics":"',
      'z'.repeat(16_384),
      tallyOf(s),
    );
  },

  /** A SMART configuration (discovery, under the base <url>/endless-fhir) that never ends. */
  '/endless-fhir/.well-known/smart-configuration': (_req, res, _url, s) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    endless(res, '{"token_endpoint":"', 'w'.repeat(16_384), tallyOf(s));
  },

  /** Redirects in a loop: Loop -> Loop2 -> Loop -> ... */
  '/fhir/Loop': (_req, res, _url, s) =>
    res.writeHead(302, { location: `${s.fhirUrl}/Loop2` }).end(),
  '/fhir/Loop2': (_req, res) => res.writeHead(302, { location: '/fhir/Loop' }).end(),

  /** A search answering one escape-laden Patient. */
  '/fhir/Patient': (_req, res) =>
    json(res, 200, searchset([evilPatient()], undefined, { total: 1 })),

  /** A read of the escape-laden Patient. */
  '/fhir/Patient/evil': (_req, res) => json(res, 200, evilPatient()),

  /** A plain-text body (not JSON) with escapes, for `api` on a terminal. */
  '/fhir/Text': (_req, res) =>
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`line one${ESCAPES}\nline two\n`),

  /** An OperationOutcome whose diagnostics carry escapes (400). */
  '/fhir/Outcome': (_req, res) =>
    json(res, 400, {
      resourceType: 'OperationOutcome',
      issue: [{ severity: 'error', code: 'invalid', diagnostics: `bad search${ESCAPES}` }],
    }),

  /**
   * A search of `n` Patients (query n, default 125000) in pages of `count` (default 5000); the
   * names grow longer on later pages (the first page sets the table's widths).
   */
  '/fhir/Many': (_req, res, url, s) => {
    const n = Number(url.searchParams.get('n') ?? '125000');
    const count = Number(url.searchParams.get('count') ?? '5000');
    const from = Number(url.searchParams.get('from') ?? '0');
    const to = Math.min(n, from + count);
    const entries: unknown[] = [];
    for (let i = from; i < to; i++) {
      entries.push({
        resourceType: 'Patient',
        id: `p${i}`,
        name: [{ family: from === 0 ? 'Short' : 'Muchlongerfamilyname', given: [`N${i}`] }],
        gender: 'other',
        birthDate: '2000-01-01',
      });
    }
    const next = to < n ? `${s.fhirUrl}/Many?n=${n}&count=${count}&from=${to}` : undefined;
    json(res, 200, searchset(entries, next, from === 0 ? { total: n } : {}));
  },

  /** A SMART configuration whose fields carry escapes, for `discover`. */
  '/fhir/.well-known/smart-configuration': (_req, res, _url, s) =>
    json(
      res,
      200,
      {
        token_endpoint: `${s.url}/token`,
        token_endpoint_auth_methods_supported: [`private_key_jwt${ESCAPES}`],
        token_endpoint_auth_signing_alg_values_supported: ['RS384', 'ES384'],
        grant_types_supported: ['client_credentials'],
        scopes_supported: ['system/*.read'],
        capabilities: ['client-confidential-asymmetric'],
      },
      'application/json',
    ),
};

export interface HostileOptions {
  /** Extra or replacement routes for this server only. */
  routes?: Record<string, Behaviour>;
}

export async function startHostile(options: HostileOptions = {}): Promise<HostileServer> {
  const routes = { ...BEHAVIOURS, ...(options.routes ?? {}) };
  const hits: string[] = [];
  const ws = makeWorkspace();
  const key = await generateSigningKey('ES384');
  const keyFile = join(ws.home, 'key.pem');
  writeFileSync(keyFile, key.privateKeyPem, { mode: 0o600 });
  writeFileSync(join(ws.home, 'jwks.json'), JSON.stringify({ keys: [key.publicJwk] }));
  const tally = { bytes: 0 };
  const holder: { self?: HostileServer } = {};
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    hits.push(`${req.method} ${url.pathname}${url.search}`);
    // Read the request body first (the token POST), then misbehave.
    req.resume();
    req.on('end', () => {
      const route = routes[url.pathname];
      if (route) route(req, res, url, holder.self!);
      else
        json(res, 404, {
          resourceType: 'OperationOutcome',
          issue: [{ severity: 'error', code: 'not-found' }],
        });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const self: HostileServer = {
    url: origin,
    fhirUrl: `${origin}/fhir`,
    hits,
    ws,
    env: {
      SMART_FHIR_URL: `${origin}/fhir`,
      SMART_TOKEN_URL: `${origin}/token`,
      SMART_CLIENT_ID: 'hostile-client',
      SMART_KEY: keyFile,
    },
    endlessBytes: () => tally.bytes,
    close: async () => {
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
      rmSync(ws.home, { recursive: true, force: true });
    },
  };
  holder.self = self;
  tallies.set(self, tally);
  return self;
}

/**
 * Run the built CLI on a terminal: `script` gives it a pty for stdin, stdout and stderr (both
 * land in `output`, with the pty's CRLF line ends turned back into LF). COLUMNS sets the width.
 */
export async function smartOnTty(
  args: string[],
  options: { ws: Workspace; env?: Record<string, string>; timeout?: number },
): Promise<{ output: string; exitCode: number }> {
  const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
  const command = [process.execPath, BIN, ...args].map(quote).join(' ');
  const r = await execa('script', ['-qefc', command, '/dev/null'], {
    env: {
      PATH: process.env.PATH,
      NO_COLOR: '1',
      COLUMNS: '120',
      TERM: 'xterm',
      ...options.ws.env,
      ...options.env,
    } as Record<string, string>,
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
    cwd: options.ws.home,
    timeout: options.timeout ?? 60_000,
    stripFinalNewline: false,
  });
  return { output: String(r.stdout).replace(/\r\n/g, '\n'), exitCode: r.exitCode ?? -1 };
}

export type { RunResult };
