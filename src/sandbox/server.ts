import { randomBytes } from 'node:crypto';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry, handleAdmin, requireAdmin } from './admin.js';
import {
  JwksCache,
  type TokenContext,
  DEFAULT_ALGS,
  createServerKey,
  handleToken,
  smartConfiguration,
} from './auth.js';
import { FIXTURES_DIR, Store, generate, loadDir } from './data.js';
import { type ExportLevel, Exports } from './export.js';
import { FaultSet, faultLabel } from './faults.js';
import { Quirks } from './quirks.js';
import {
  type FhirContext,
  authorize,
  capabilityStatement,
  handleRead,
  handleSearch,
} from './fhir.js';
import {
  type Exchange,
  HttpError,
  JSON_TYPE,
  Pacer,
  fhirError,
  mediaType,
  outcome,
  readBody,
  send,
} from './http.js';
import type { RequestArrival, RequestLogEntry, SandboxHandle, SandboxOptions } from './types.js';
import { Watched } from './watch.js';

const SECRET_PARAMS =
  /^(access_token|client_assertion|client_secret|password|token|secret|sig|signature)$/i;

/** The path and query for the log, with any secret-looking parameter masked. */
function loggablePath(url: URL): string {
  const q = new URLSearchParams(url.search);
  for (const k of [...q.keys()]) if (SECRET_PARAMS.test(k)) q.set(k, '***');
  const qs = q.toString();
  return url.pathname + (qs ? `?${qs}` : '');
}

/** A client id for the log: whole when short; a JWT-like one (reference registration) cut. */
function shortClientId(id: string): string {
  return id.length <= 40 ? id : `${id.slice(0, 8)}…${id.slice(-3)}`;
}

function decodePath(pathname: string): string {
  return pathname
    .split('/')
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    })
    .join('/');
}

function displayHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

export async function startSandbox(options: SandboxOptions = {}): Promise<SandboxHandle> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 8080;
  const adminSecret = options.adminSecret ?? randomBytes(18).toString('base64url');
  const log = options.log ?? (() => {});
  const started = new Date().toISOString();
  const clockOffsetMs = Math.round((options.clockOffsetSeconds ?? 0) * 1000);

  const store = new Store();
  if (options.dataDir) await loadDir(store, options.dataDir, started);
  else await loadDir(store, FIXTURES_DIR, started);
  if (options.generate && options.generate > 0) generate(store, options.generate);
  store.index();
  const typeNames = store.typeNames();

  const registry = new Registry();
  const key = await createServerKey();
  const faults = new FaultSet(options.faults ?? []);
  const clock = options.now ?? Date.now;
  const now = clockOffsetMs ? () => clock() + clockOffsetMs : clock;
  const quirks = new Quirks(options.quirks ?? [], now);
  const exports = new Exports(store, {
    fileSize: options.exportFileSize ?? 1000,
    delayMs: options.exportDelayMs ?? 500,
    minPolls: options.exportMinPolls,
    requiresAccessToken:
      (options.exportRequiresAccessToken ?? true) && !options.exportSignedStorage,
    storageOrigin: () => storageUrl,
    storage: options.exportStorage ?? true,
    now,
    quirks,
  });
  // What tests wait on: requests as they arrive, and the log entry each one gets once it ends.
  const requests = new Watched<RequestLogEntry>();
  const arrivals = new Watched<RequestArrival>();
  // Filled in once the port is known.
  let url = '';
  let storageUrl: string | undefined;
  const publicUrl = options.publicUrl ? new URL(options.publicUrl).origin : undefined;
  const algs = options.algs?.length ? [...options.algs] : [...DEFAULT_ALGS];
  const inlineKeyTypes = algs.some((a) => a.startsWith('ES')) ? ['RSA', 'EC'] : ['RSA'];
  const tc: TokenContext = {
    algs,
    get url() {
      return publicUrl ?? url;
    },
    registry,
    jwks: new JwksCache(now),
    key,
    types: () => typeNames,
    seenJti: new Map(),
    now,
    quirks,
  };
  const fc: FhirContext = { store, tc, adminSecret };
  const scopesSupported = [
    'system/*.read',
    'system/*.rs',
    ...typeNames.flatMap((t) => [`system/${t}.read`, `system/${t}.rs`]),
  ];

  async function route(ex: Exchange): Promise<void> {
    const { method, pathname } = ex;
    const parts = pathname.split('/').filter(Boolean);
    if (
      pathname === '/.well-known/smart-configuration' ||
      pathname === '/fhir/.well-known/smart-configuration'
    ) {
      if (method !== 'GET') throw fhirError(405, 'not-supported', `${method} ${pathname}`);
      // Endpoints on the origin the client used (as Aidbox follows X-Original-Uri), so that
      // `localhost` or a LAN address works too; the token endpoint accepts either as aud.
      send(
        ex,
        200,
        quirks.discovery(smartConfiguration(ex.origin, scopesSupported, algs)),
        JSON_TYPE,
      );
      return;
    }
    if (pathname === '/.well-known/jwks.json') {
      send(ex, 200, { keys: [key.publicJwk] }, JSON_TYPE, { 'Cache-Control': 'max-age=3600' });
      return;
    }
    if (pathname === '/auth/token') return handleToken(ex, tc);
    if (pathname === '/auth/register' && quirks.has('reference-registration')) {
      return quirks.register(ex, registry, key, url);
    }
    if (parts[0] === 'Client' || parts[0] === 'AccessPolicy') {
      if (parts.length > 2) throw fhirError(404, 'not-found', `no route ${pathname}`);
      requireAdmin(ex, adminSecret);
      return handleAdmin(ex, registry, parts[0], parts[1], inlineKeyTypes);
    }
    if (pathname === '/' && method === 'GET') {
      send(
        ex,
        200,
        {
          name: 'smart sandbox',
          fhir: `${tc.url}/fhir`,
          token_endpoint: `${tc.url}/auth/token`,
          smart_configuration: `${tc.url}/.well-known/smart-configuration`,
          admin: 'HTTP Basic as root: PUT/GET/DELETE /Client/<id> and /AccessPolicy/<id>',
        },
        JSON_TYPE,
      );
      return;
    }
    if (parts[0] !== 'fhir') throw fhirError(404, 'not-found', `no route ${pathname}`);
    const rest = parts.slice(1);
    if (rest.length === 1 && rest[0] === 'metadata') {
      if (method !== 'GET') throw fhirError(405, 'not-supported', `${method} ${pathname}`);
      send(ex, 200, capabilityStatement(ex.origin, typeNames, started));
      return;
    }
    if (rest.length === 0) throw fhirError(404, 'not-found', 'no route /fhir (try /fhir/metadata)');
    // A pre-signed file URL is its own credential: no token needed.
    if (rest[0] === '$export-file' && rest.length === 3 && ex.url.searchParams.has('sig')) {
      return exports.signedFile(ex, rest[1]!, rest[2]!);
    }

    const token = await authorize(ex, fc);
    const level: ExportLevel | undefined =
      rest.length === 1 && rest[0] === '$export'
        ? { kind: 'system' }
        : rest.length === 2 && rest[0] === 'Patient' && rest[1] === '$export'
          ? { kind: 'patient' }
          : rest.length === 3 && rest[0] === 'Group' && rest[2] === '$export'
            ? { kind: 'group', id: rest[1]! }
            : undefined;
    if (level) return exports.kickoff(ex, token, level);
    if (rest[0] === '$export-status' && rest.length === 2)
      return exports.status(ex, token, rest[1]!);
    if (rest[0] === '$export-file' && rest.length === 3)
      return exports.file(ex, token, rest[1]!, rest[2]!);

    const [type, id] = rest as [string, string | undefined];
    if (rest.length === 2 && id === '_search') {
      if (method !== 'POST') throw fhirError(405, 'not-supported', `use POST for ${pathname}`);
      const ct = mediaType(ex.req.headers['content-type']);
      const body = await readBody(ex);
      if (body && ct !== 'application/x-www-form-urlencoded') {
        throw fhirError(
          415,
          'not-supported',
          '_search takes an application/x-www-form-urlencoded body',
        );
      }
      const params = [...ex.url.searchParams, ...new URLSearchParams(body)];
      return handleSearch(ex, fc, token, type, params);
    }
    if (rest.length > 2) throw fhirError(404, 'not-found', `no route ${pathname}`);
    if (method !== 'GET') {
      throw fhirError(
        405,
        'not-supported',
        `${method} is not supported: the sandbox FHIR API is read-only`,
      );
    }
    if (id === undefined) return handleSearch(ex, fc, token, type, [...ex.url.searchParams]);
    return handleRead(ex, fc, token, type, id);
  }

  /**
   * The storage listener (exportSignedStorage): pre-signed export file URLs only, as a cloud
   * storage bucket; the signature is the credential, an Authorization header is ignored.
   */
  async function storageRoute(ex: Exchange): Promise<void> {
    const parts = ex.pathname.split('/').filter(Boolean);
    if (parts[0] === 'exports' && parts.length === 3 && ex.url.searchParams.has('sig')) {
      return exports.signedFile(ex, parts[1]!, parts[2]!);
    }
    throw new HttpError(
      403,
      outcome('forbidden', 'access denied: not a signed URL of this storage'),
    );
  }

  async function handle(
    req: IncomingMessage,
    res: ServerResponse,
    routeTo: (ex: Exchange) => Promise<void> = route,
  ): Promise<void> {
    const t0 = performance.now();
    const time = new Date().toISOString();
    const method = (req.method ?? 'GET').toUpperCase();
    const origin = req.headers.host ? `http://${req.headers.host}` : url;
    let reqUrl: URL;
    try {
      reqUrl = new URL(req.url ?? '/', origin);
    } catch {
      reqUrl = new URL(req.url ?? '/', url);
    }
    const ex: Exchange = {
      req,
      res,
      method,
      url: reqUrl,
      pathname: decodePath(reqUrl.pathname),
      // Links are built on the server's own name when it has one (as Aidbox on BOX_WEB_BASE_URL).
      origin: publicUrl ?? reqUrl.origin,
      drop: false,
    };
    if (clockOffsetMs) res.setHeader('Date', new Date(now()).toUTCString());
    const applied = faults.match(method, ex.pathname);
    const label = applied.map(faultLabel).join(',') || undefined;
    arrivals.push({ method, path: loggablePath(reqUrl), time, ...(label ? { fault: label } : {}) });
    res.on('close', () => {
      const entry: RequestLogEntry = {
        method,
        path: loggablePath(reqUrl),
        status: res.statusCode,
        ms: Math.round(performance.now() - t0),
        time,
        authorization: req.headers.authorization !== undefined,
      };
      if (ex.clientId) entry.clientId = ex.clientId;
      if (label) entry.fault = label;
      if (ex.drop) entry.fault = label ?? 'aborted';
      else if (!res.writableFinished) entry.fault = label ? `${label},aborted` : 'aborted';
      requests.push(entry);
      log(
        `${method} ${entry.path} ${entry.status} ${entry.ms}ms` +
          (entry.clientId ? ` client=${shortClientId(entry.clientId)}` : '') +
          (entry.fault ? ` fault=${entry.fault}` : ''),
      );
    });
    try {
      // A delay ends early when the connection goes (a client gone, or the sandbox stopping):
      // no timer outlives the request.
      const pause = (ms: number) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, ms);
          res.once('close', () => {
            clearTimeout(timer);
            resolve();
          });
        });
      for (const a of applied) if ('delayMs' in a) await pause(a.delayMs);
      if (options.latencyMs) await pause(options.latencyMs);
      if (res.destroyed) return;
      const status = applied.find((a) => 'status' in a);
      if (status && 'status' in status) {
        const headers: Record<string, string> = status.retryAfter
          ? { 'Retry-After': status.retryAfter }
          : {};
        const text = `injected fault: HTTP ${status.status}`;
        if (ex.pathname === '/auth/token') {
          const error = status.status === 500 ? 'server_error' : 'temporarily_unavailable';
          send(ex, status.status, { error, error_description: text }, JSON_TYPE, headers);
        } else {
          const code =
            status.status === 429 ? 'throttled' : status.status === 503 ? 'transient' : 'exception';
          send(ex, status.status, outcome(code, text), undefined, headers);
        }
        return;
      }
      if (applied.some((a) => 'drop' in a)) ex.drop = true;
      const rates = applied.flatMap((a) =>
        'throttleBytesPerSec' in a ? [a.throttleBytesPerSec] : [],
      );
      if (rates.length) ex.throttle = new Pacer(Math.min(...rates));
      await routeTo(ex);
    } catch (e) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (e instanceof HttpError) {
        send(ex, e.status, e.body, e.contentType, e.headers);
        return;
      }
      log(`error: ${method} ${loggablePath(reqUrl)}: ${(e as Error)?.stack ?? String(e)}`);
      send(ex, 500, outcome('exception', `internal error: ${(e as Error)?.message ?? String(e)}`));
    }
  }

  const server = createServer((req, res) => {
    void handle(req, res);
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  url = `http://${displayHost(host)}:${address.port}`;

  // Aidbox-like export storage: a listener of its own, so the file URLs are on another origin.
  let storage: ReturnType<typeof createServer> | undefined;
  if (options.exportSignedStorage) {
    const s = createServer((req, res) => {
      void handle(req, res, storageRoute);
    });
    s.keepAliveTimeout = 5000;
    storage = s;
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(0, host, () => {
        s.off('error', reject);
        resolve();
      });
    }).catch(async (e: unknown) => {
      await new Promise<void>((r) => server.close(() => r()));
      throw e;
    });
    storageUrl = `http://${displayHost(host)}:${(s.address() as AddressInfo).port}`;
  }
  const closeServer = (srv: ReturnType<typeof createServer>, graceMs: number) =>
    new Promise<void>((resolve, reject) => {
      const timer = graceMs > 0 ? setTimeout(() => srv.closeAllConnections(), graceMs) : undefined;
      srv.close((e) => {
        clearTimeout(timer);
        if (e) reject(e);
        else resolve();
      });
      if (timer) srv.closeIdleConnections();
      else srv.closeAllConnections();
    });

  return {
    url,
    ...(publicUrl ? { publicUrl } : {}),
    ...(storageUrl ? { storageUrl } : {}),
    tokenUrl: `${url}/auth/token`,
    fhirUrl: `${url}/fhir`,
    adminClientId: 'root',
    adminSecret,
    requests: requests.items,
    logged: (match, count) => requests.when(match, count),
    received: (match, count) => arrivals.when(match, count),
    counts: store.counts(),
    addFault: (rule) => faults.add(rule),
    close: async (graceMs = 0) => {
      await Promise.all([
        closeServer(server, graceMs),
        ...(storage ? [closeServer(storage, graceMs)] : []),
      ]);
      const closed = new Error('the sandbox closed before such a request came');
      requests.close(closed);
      arrivals.close(closed);
    },
  };
}
