import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SmartError, isSmartError, systemErrorCode } from '../core/errors.js';
import type { HttpClient } from '../core/http/index.js';
import type { Bundle } from '../core/fhir/index.js';
import type { Settings } from '../core/settings.js';
import type { SandboxHandle } from '../sandbox/index.js';
import type { JwksServer } from '../core/jwks-server.js';
import { shorten } from '../core/redact.js';

/**
 * `smart demo`: the seed walkthrough, end to end, on this machine. Each step reports what it
 * does (the equivalent command, the essential request and answer, secrets shortened) through
 * events; the command decides how they look.
 */
export type DemoEvent =
  | { type: 'step'; n: number; total: number; title: string; command: string }
  | { type: 'request'; text: string }
  | { type: 'response'; text: string }
  | { type: 'note'; text: string };

export interface DemoOptions {
  /** Where the key pair lives; a temp dir (removed at close) when not given. */
  workspace?: string;
  clientId?: string;
  scope?: string;
  alg?: string;
  sandboxPort?: number;
  jwksPort?: number;
  /** Sandbox request log lines (used by --keep). */
  sandboxLog?: (line: string) => void;
  jwksLog?: (line: string) => void;
  http: () => Promise<HttpClient>;
  now: () => number;
  onEvent: (event: DemoEvent) => void;
  log?: (line: string) => void;
}

export interface DemoRun {
  sandbox: SandboxHandle;
  jwksServer: JwksServer;
  workspace: string;
  keyFile: string;
  jwksFile: string;
  clientId: string;
  settings: Settings;
  /** The first page of `query Observation code=4548-4 _count=2`. */
  bundle: Bundle;
  close(): Promise<void>;
}

const TOTAL = 6;

export async function runDemo(options: DemoOptions): Promise<DemoRun> {
  const emit = options.onEvent;
  const clientId = options.clientId ?? 'demo-client';
  const scope = options.scope ?? 'system/*.read';
  const ownWorkspace = options.workspace === undefined;
  const workspace = options.workspace ?? (await mkdtemp(join(tmpdir(), 'smart-demo-')));
  const cleanups: Array<() => Promise<void>> = [];
  const close = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    if (ownWorkspace) await rm(workspace, { recursive: true, force: true });
  };

  let n = 0;
  async function step<T>(title: string, command: string, body: () => Promise<T>): Promise<T> {
    n++;
    emit({ type: 'step', n, total: TOTAL, title, command });
    try {
      return await body();
    } catch (e) {
      if (isSmartError(e)) {
        throw new SmartError(
          e.kind,
          `demo step ${n} (${title.toLowerCase()}) failed: ${e.message}`,
          {
            cause: e,
            hint: e.hint,
            code: e.code,
            status: e.status,
          },
        );
      }
      throw e;
    }
  }

  try {
    const sandbox = await step(
      'Start the sandbox',
      `smart sandbox --port ${options.sandboxPort ?? 0} --export-signed-storage`,
      async () => {
        const { startSandbox } = await import('../sandbox/index.js');
        const port = options.sandboxPort ?? 0;
        // As Aidbox with cloud storage: export files pre-signed on another origin (for --keep).
        const s = await startSandbox({
          port,
          log: options.sandboxLog,
          exportSignedStorage: true,
        }).catch((e: unknown) => {
          const code = systemErrorCode(e);
          throw new SmartError(
            'runtime',
            code === 'EADDRINUSE'
              ? `port ${port} on 127.0.0.1 is already in use`
              : `cannot start the sandbox: ${(e as Error).message}`,
            {
              cause: e,
              code,
              hint:
                code === 'EADDRINUSE'
                  ? 'choose another with --port, or leave it out for any free port'
                  : undefined,
            },
          );
        });
        cleanups.push(() => s.close());
        emit({ type: 'note', text: `base URL    ${s.url}` });
        emit({ type: 'note', text: `token URL   ${s.tokenUrl}` });
        emit({ type: 'note', text: `FHIR base   ${s.fhirUrl}` });
        emit({ type: 'note', text: `admin       ${s.adminClientId} / ${shorten(s.adminSecret)}` });
        return s;
      },
    );

    const keysDir = join(workspace, 'keys');
    const key = await step(
      'Make a key pair and its public JWKS',
      `smart keygen --alg ${options.alg ?? 'RS384'} --dir ${keysDir}`,
      async () => {
        const { createKeyPair } = await import('../core/auth/jwks.js');
        const k = await createKeyPair({ dir: keysDir, alg: options.alg ?? 'RS384', force: true });
        emit({
          type: 'note',
          text: `private key ${k.privateKey} (mode 0600, never leaves this machine)`,
        });
        emit({
          type: 'note',
          text: `public JWKS ${k.jwks}: kid ${k.kid}, alg ${k.alg}, kty ${k.publicJwk.kty}`,
        });
        return k;
      },
    );

    const jwksServer = await step(
      'Serve the JWKS where the server can fetch it',
      `smart jwks serve --port ${options.jwksPort ?? 0} ${key.jwks}`,
      async () => {
        const { startJwksServer } = await import('../core/jwks-server.js');
        const server = await startJwksServer({
          file: key.jwks,
          port: options.jwksPort ?? 0,
          onRequest: (e) =>
            options.jwksLog?.(
              `jwks: ${e.method} ${e.path} ${e.status} from ${e.remoteAddress} (${e.userAgent})`,
            ),
        });
        cleanups.push(() => server.close());
        emit({ type: 'note', text: `jwks_uri    ${server.url}` });
        return server;
      },
    );

    const http = await options.http();
    await step(
      'Register the Client and its AccessPolicy (as the Aidbox admin)',
      `smart register-client ${clientId} --jwks-uri ${jwksServer.url} --scope "${scope}"`,
      async () => {
        const { registerClient } = await import('../core/registration/index.js');
        const { result, plan } = await registerClient({
          kind: 'aidbox',
          input: { name: clientId, baseUrl: sandbox.url, scope, jwksUri: jwksServer.url },
          deps: {
            http,
            admin: { clientId: sandbox.adminClientId, secret: sandbox.adminSecret },
          },
        });
        plan.calls.forEach((call, i) => {
          emit({
            type: 'request',
            text: `${call.method} ${call.url}  ${JSON.stringify(call.body)}`,
          });
          const row = result!.rows[i]!;
          emit({ type: 'response', text: `${row.status} ${row.result}` });
        });
      },
    );

    const { resolveSettings } = await import('../core/settings.js');
    // The demo's own config and cache dirs: it never touches the user's profile or token cache.
    const settings = await resolveSettings({
      flags: { baseUrl: sandbox.url, clientId, key: key.privateKey, scope },
      env: {
        HOME: workspace,
        XDG_CONFIG_HOME: join(workspace, 'config'),
        XDG_CACHE_HOME: join(workspace, 'cache'),
      },
      cwd: workspace,
    });

    const { FhirSession } = await import('../core/auth/session.js');
    const session = new FhirSession({
      settings,
      http: options.http,
      now: options.now,
      log: options.log,
    });
    // Step 5 signs and exchanges through the shared token path; step 6's session then finds
    // that token in the (demo's own) cache, as every later command would.
    const { TokenProvider } = await import('../core/auth/token.js');
    const tokens = new TokenProvider({
      settings,
      http: options.http,
      now: options.now,
      log: options.log,
      onAssertion: (a) => {
        emit({ type: 'note', text: `assertion header ${JSON.stringify(a.header)}` });
        emit({ type: 'note', text: `assertion claims ${JSON.stringify(a.claims)}` });
        emit({
          type: 'request',
          text: `POST ${a.claims.aud}  grant_type=client_credentials&scope=${scope}&client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer&client_assertion=${shorten(a.jwt)}`,
        });
      },
    });
    const token = await step(
      'Get an access token (client_credentials + signed assertion)',
      'smart token',
      async () => {
        const t = await tokens.getToken();
        emit({
          type: 'response',
          text: `200 token_type=${t.tokenType} expires_in=${String(t.response.expires_in)} access_token=${shorten(t.accessToken)}`,
        });
        emit({ type: 'note', text: `granted scope: ${t.scope ?? t.requestedScope}` });
        return t;
      },
    );

    const bundle = await step(
      'Search Observations with the token',
      'smart query Observation code=4548-4 _count=2',
      async () => {
        const { searchPages } = await import('../core/fhir/index.js');
        const pages = searchPages(session, 'Observation', [
          ['code', '4548-4'],
          ['_count', '2'],
        ]);
        let first: Bundle | undefined;
        for await (const page of pages) {
          first = page;
          break;
        }
        if (!first) throw new SmartError('fhir', 'the search returned no Bundle');
        emit({
          type: 'request',
          text: `GET ${session.fhirUrl}/Observation?code=4548-4&_count=2  Authorization: Bearer ${shorten(token.accessToken)}`,
        });
        emit({
          type: 'response',
          text: `200 Bundle searchset: total ${String(first.total ?? '?')}, ${first.entry?.length ?? 0} entries on this page`,
        });
        return first;
      },
    );

    return {
      sandbox,
      jwksServer,
      workspace,
      keyFile: key.privateKey,
      jwksFile: key.jwks,
      clientId,
      settings,
      bundle,
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}
