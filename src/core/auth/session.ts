import { SmartError } from '../errors.js';
import {
  describeErrorBody,
  statusError,
  summarizeOperationOutcome,
  type HttpClient,
  type HttpRequest,
  type HttpResponse,
} from '../http/index.js';
import { requireSetting, type Settings } from '../settings.js';
import { CACHE_MARGIN_MS, TokenProvider, type AccessToken } from './token.js';
import { redactUrl } from '../redact.js';
import { reachable, serverAlias, type ServerAlias } from '../server-url.js';

export interface SessionOptions {
  settings: Settings;
  http: () => Promise<HttpClient>;
  now: () => number;
  /** Waits between retries of the token request (the run's clock); default the real one. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Ends those waits (Ctrl-C). */
  signal?: AbortSignal;
  log?: (message: string) => void;
  /** Warnings for the user (an untrusted token cache). */
  warn?: (message: string) => void;
  /** Bypass the token cache (still refreshes on 401). */
  noCache?: boolean;
}

/**
 * Resolve a path relative to the FHIR base, or check that an absolute URL is on its origin (or on
 * one the caller trusts: export files with --trust-origin). An absolute URL under the server's
 * own name (serverUrl) is first moved to the origin we reach.
 */
export function resolveFhirUrl(
  fhirUrl: string,
  pathOrUrl: string,
  alias?: ServerAlias,
  trustedOrigins: readonly string[] = [],
): string {
  const base = fhirUrl.replace(/\/+$/, '');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(pathOrUrl)) {
    const target = new URL(reachable(pathOrUrl, alias));
    const origin = new URL(base).origin;
    if (target.origin !== origin && !trustedOrigins.includes(target.origin)) {
      throw new SmartError(
        'usage',
        `refusing to send the access token to ${target.origin}: it is not the FHIR server's origin (${origin})`,
        {
          code: 'foreign_origin',
          hint:
            alias === undefined && target.pathname.startsWith(new URL(base).pathname)
              ? `a token must only go to the server it was issued for; if ${target.origin} is this server's own name for itself (Aidbox's BOX_WEB_BASE_URL), set \`smart config set serverUrl ${target.origin}\``
              : 'a token must only go to the server it was issued for; use a path relative to the FHIR base',
        },
      );
    }
    return target.toString();
  }
  return `${base}/${pathOrUrl.replace(/^\/+/, '')}`;
}

/**
 * An authenticated FHIR session: every request carries the Bearer token from the shared token
 * path (cache, discovery); a 401 drops the token and retries once with a new one.
 */
export class FhirSession {
  readonly fhirUrl: string;
  readonly tokens: TokenProvider;
  private current?: AccessToken;

  constructor(private readonly options: SessionOptions) {
    this.fhirUrl = requireSetting(options.settings, 'fhirUrl', 'to call the FHIR API');
    this.tokens = new TokenProvider(options);
  }

  resolve(pathOrUrl: string, trustedOrigins?: readonly string[]): string {
    return resolveFhirUrl(
      this.fhirUrl,
      pathOrUrl,
      serverAlias(this.options.settings),
      trustedOrigins,
    );
  }

  /** A URL the server gave, moved from its own name (serverUrl) to the origin we reach. */
  reachable(url: string): string {
    return reachable(url, serverAlias(this.options.settings));
  }

  async token(forceNew = false): Promise<AccessToken> {
    if (
      this.current &&
      !forceNew &&
      (!this.current.expiresAt || this.current.expiresAt - CACHE_MARGIN_MS > this.options.now())
    ) {
      return this.current;
    }
    this.current = await this.tokens.getToken({ noCache: this.options.noCache, forceNew });
    return this.current;
  }

  /** The granted scopes of the token in use, for 403 messages. */
  get grantedScope(): string | undefined {
    return this.current?.scope ?? this.current?.requestedScope;
  }

  /**
   * An authenticated request on the FHIR server's origin; `trustedOrigins` (export files with
   * --trust-origin) are origins the token may go to besides.
   */
  async request(
    pathOrUrl: string,
    init: HttpRequest = {},
    options: { trustedOrigins?: readonly string[] } = {},
  ): Promise<HttpResponse> {
    const url = this.resolve(pathOrUrl, options.trustedOrigins);
    const http = await this.options.http();
    // The caller's own Authorization header is used as given, like curl: no token is fetched
    // and a 401 is the answer, not a reason to retry.
    const own = Object.keys(init.headers ?? {}).find((h) => h.toLowerCase() === 'authorization');
    if (own) {
      this.options.log?.('the request carries its own Authorization header: no token requested');
      return http.request(url, {
        ...init,
        headers: { accept: 'application/fhir+json', ...init.headers },
      });
    }
    const send = async (token: AccessToken) =>
      http.request(url, {
        ...init,
        headers: {
          accept: 'application/fhir+json',
          ...(init.headers ?? {}),
          authorization: `Bearer ${token.accessToken}`,
        },
      });
    let token = await this.token();
    let res = await send(token);
    if (res.status === 401) {
      this.options.log?.('the FHIR server answered 401: getting a new token and retrying once');
      res.nodeBody?.destroy();
      await this.tokens.invalidate(token);
      token = await this.token(true);
      res = await send(token);
    }
    return res;
  }

  /** An error for a failed FHIR answer, with the OperationOutcome and, on 403, the token's scopes. */
  error(res: HttpResponse, method = 'GET'): SmartError {
    return fhirError(res, method, this.grantedScope);
  }
}

export function fhirError(res: HttpResponse, method: string, grantedScope?: string): SmartError {
  const url = redactUrl(res.url);
  let body: unknown;
  try {
    body = JSON.parse(res.text);
  } catch {
    body = undefined;
  }
  const outcome = summarizeOperationOutcome(body);
  const summary = describeErrorBody(res);
  if (res.status === 401) {
    return new SmartError(
      'auth',
      `${method} ${url} answered 401 even with a new token: ${summary}`,
      {
        status: 401,
        hint: 'the FHIR server does not accept tokens from this token endpoint: check --fhir-url and --token-url',
      },
    );
  }
  if (res.status === 403) {
    return new SmartError(
      'auth',
      `access denied: ${method} ${url} answered 403${outcome ? `: ${outcome}` : ''}`,
      {
        status: 403,
        hint: `the token's scopes are "${grantedScope ?? 'unknown'}"; ask for a scope that covers this resource (--scope), or check the server's access policy for this client (on Aidbox: the AccessPolicy linked to the Client)`,
        details: { outcome: body },
      },
    );
  }
  if (res.status === 404) {
    return new SmartError(
      'fhir',
      `not found: ${method} ${url} answered 404${outcome ? `: ${outcome}` : ''}`,
      {
        status: 404,
        hint: 'check the resource type and id, and the FHIR base URL (--fhir-url)',
        details: { outcome: body },
      },
    );
  }
  return statusError(method, res.url, res, {
    kind: outcome ? 'fhir' : 'http',
    said: summary,
    details: { outcome: body },
  });
}
