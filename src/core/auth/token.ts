import { SmartError } from '../errors.js';
// The HTTP stack, the signer and the error texts are loaded only when a token is fetched: a
// cached token (`$(smart token)` in scripts) needs none of them (bench/startup.mjs).
import type { HttpClient, HttpResponse } from '../http/index.js';
import type { SignedAssertion } from './assertion.js';
import {
  backoffDelay,
  MAX_RETRY_AFTER_MS,
  parseRetryAfter,
  systemClock,
  type Clock,
} from '../clock.js';
import { tryJsonObject } from '../json.js';
import type { OAuthErrorContext } from './token-errors.js';
import { cachedDiscovery, readCachedDiscovery, type SmartConfiguration } from '../discovery.js';
import type { SigningKey } from './keys.js';
import { keyFingerprint, readKeyFiles, type KeyFiles } from './key-file.js';
import { TokenCache, tokenExpiry, type TokenKey } from './token-cache.js';
import { loadConfig, requireSetting, type Settings } from '../settings.js';
import { redactUrl, shortId } from '../redact.js';
import {
  ownName,
  reachable,
  serverAlias,
  serverUrlAdvice,
  unreachableOwnName,
} from '../server-url.js';

// Kept where they were for the modules and tests that import them from here.
export { CACHE_MARGIN_MS, jwtExpiry } from './token-cache.js';

export interface TokenResponse {
  access_token: string;
  token_type: string;
  expires_in?: number;
  scope?: string;
  [member: string]: unknown;
}

export interface AccessToken {
  accessToken: string;
  tokenType: string;
  /** The scopes the server granted (may differ from those requested). */
  scope?: string;
  requestedScope: string;
  /** Epoch ms; undefined when the server said nothing and the token is not a readable JWT. */
  expiresAt?: number;
  obtainedAt: number;
  tokenUrl: string;
  clientId: string;
  kid: string;
  /** The key it was issued for, by the bytes the key is loaded from (key-file.ts). */
  keyFingerprint: string;
  fromCache: boolean;
  /** The server's whole answer (holds the token: print only on request). */
  response: TokenResponse;
}

export interface TokenRequestOptions {
  scope?: string;
  /** Neither read nor write the cache. */
  noCache?: boolean;
  /** Skip a cached token (it was rejected) but store the new one. */
  forceNew?: boolean;
}

export interface TokenProviderOptions {
  settings: Settings;
  http: () => Promise<HttpClient>;
  now: () => number;
  /** Waits between retries of the token request; default the real one. */
  sleep?: Clock['sleep'];
  /** Ends a wait between retries (Ctrl-C). */
  signal?: AbortSignal;
  /** Diagnostic lines (shown with --verbose). Never passed a secret. */
  log?: (message: string) => void;
  /** Warnings for the user (an untrusted token cache). Never passed a secret. */
  warn?: (message: string) => void;
  /** Called with each assertion just before it is sent (the demo shows it, shortened). */
  onAssertion?: (assertion: SignedAssertion) => void;
}

/**
 * Gets access tokens: signs a fresh assertion, POSTs it, caches the answer. One per run; it
 * collapses concurrent requests for the same token into one.
 */
export class TokenProvider {
  private keyPromise?: Promise<SigningKey>;
  private keyFilesPromise?: Promise<KeyFiles>;
  private discovered?: SmartConfiguration;
  private readonly inflight = new Map<string, Promise<AccessToken>>();
  private readonly cache: TokenCache;

  constructor(private readonly options: TokenProviderOptions) {
    this.cache = new TokenCache(options.settings.paths.cacheDir, options.warn);
  }

  /** The signing key, parsed and checked (node:crypto: loaded only when a token is fetched). */
  signingKey(): Promise<SigningKey> {
    const s = this.options.settings;
    this.keyPromise ??= Promise.all([this.keyFiles(), import('./keys.js')]).then(
      ([files, { signingKeyOf }]) => signingKeyOf(files, { alg: s.alg }),
    );
    return this.keyPromise;
  }

  /** The key's files, read once: the fingerprint and the parsed key come from the same bytes. */
  private keyFiles(): Promise<KeyFiles> {
    const s = this.options.settings;
    this.keyFilesPromise ??= readKeyFiles(requireSetting(s, 'key', 'to sign the client assertion'));
    return this.keyFilesPromise;
  }

  /** The token endpoint: the setting, else discovery (cached per FHIR base). */
  async tokenUrl(): Promise<string> {
    return (await this.findTokenUrl(false))!;
  }

  /**
   * The token endpoint, or with `offline` only when it is known without a request (the setting,
   * or a fresh cached discovery): undefined otherwise.
   */
  private async findTokenUrl(offline: boolean): Promise<string | undefined> {
    const s = this.options.settings;
    if (s.tokenUrl) return s.tokenUrl;
    if (!s.fhirUrl) {
      throw new SmartError('usage', 'no token URL and no FHIR base URL to discover it from', {
        code: 'missing_setting',
        hint: 'pass --base-url (or --fhir-url, or --token-url), or save one with `smart init`',
      });
    }
    const d = await cachedDiscovery(
      offline ? undefined : this.options.http,
      s.fhirUrl,
      s.paths.cacheDir,
      this.options.now(),
    );
    if (!d) return undefined;
    this.discovered = d.config;
    const url = reachable(d.config.token_endpoint, serverAlias(s));
    this.options.log?.(
      `token endpoint ${d.config.token_endpoint} (discovered from ${d.source}${d.fromCache ? ', cached' : ''})${url !== d.config.token_endpoint ? `, reached at ${url}` : ''}`,
    );
    return url;
  }

  /**
   * The assertion's aud for a token URL: the URL itself, or under the server's own name when
   * `serverUrl` says the server calls itself otherwise (Aidbox checks aud against its own name).
   */
  audience(tokenUrl: string): string {
    return ownName(tokenUrl, serverAlias(this.options.settings));
  }

  /**
   * Without a request, learn the configuration of the server at `tokenUrl` from the discovery
   * cache (when the token URL came from a flag or --aud, discovery did not run). Only a cached
   * document whose token_endpoint is that URL counts.
   */
  async useCachedDiscovery(tokenUrl: string): Promise<void> {
    const s = this.options.settings;
    if (this.discovered || !s.fhirUrl) return;
    const config = await readCachedDiscovery(s.fhirUrl, s.paths.cacheDir, this.options.now());
    const alias = serverAlias(s);
    if (config && [tokenUrl, ownName(tokenUrl, alias)].includes(config.token_endpoint))
      this.discovered = config;
  }

  /** The discovered SMART configuration, once tokenUrl() has run discovery (fresh or cached). */
  get discoveredConfiguration(): SmartConfiguration | undefined {
    return this.discovered;
  }

  /** The signing algorithms the server advertises, when discovery said. */
  get advertisedAlgs(): string[] | undefined {
    const algs = this.discovered?.token_endpoint_auth_signing_alg_values_supported;
    return Array.isArray(algs) && algs.length ? algs : undefined;
  }

  /** Refuse a key whose alg the server does not advertise (when it advertises any). */
  checkAlgAdvertised(key: SigningKey, tokenUrl: string): void {
    const advertised = this.advertisedAlgs;
    if (advertised && !advertised.includes(key.alg)) {
      throw new SmartError(
        'usage',
        `the key signs with ${key.alg}, but ${redactUrl(tokenUrl)} accepts only ${advertised.join(', ')}`,
        {
          code: 'unsupported_alg',
          hint: `make a key the server accepts: \`smart keygen --alg ${advertised[0]}\` (then register its JWKS)`,
        },
      );
    }
  }

  async getToken(request: TokenRequestOptions = {}): Promise<AccessToken> {
    const s = this.options.settings;
    const clientId = requireSetting(s, 'clientId', 'to get a token');
    const scope = (request.scope ?? s.scope).trim().split(/\s+/).join(' ');
    // A cached token is found by the key file's fingerprint; the key itself is parsed and
    // checked (node:crypto) only when a token is fetched, and before any request is made.
    const fingerprint = keyFingerprint(await this.keyFiles(), s.alg);
    const want = (tokenUrl: string): TokenKey => ({
      tokenUrl,
      clientId,
      scope,
      keyFingerprint: fingerprint,
    });
    const cached = async (tokenUrl: string) =>
      request.noCache || request.forceNew
        ? undefined
        : await this.cache.lookup(want(tokenUrl), this.options.now(), this.options.log);
    // The token URL when it is known without a request: the setting, or cached discovery.
    let tokenUrl = await this.findTokenUrl(true);
    const early = tokenUrl ? await cached(tokenUrl) : undefined;
    if (early) return early;
    const key = await this.signingKey();
    if (!tokenUrl) {
      tokenUrl = await this.tokenUrl();
      const hit = await cached(tokenUrl);
      if (hit) return hit;
    }
    const cacheKey = TokenCache.keyOf(want(tokenUrl));
    const existing = this.inflight.get(cacheKey);
    if (existing) return existing;
    const promise = this.fetchToken({
      tokenUrl,
      clientId,
      scope,
      key,
      keyFingerprint: fingerprint,
      store: !request.noCache,
    }).finally(() => this.inflight.delete(cacheKey));
    this.inflight.set(cacheKey, promise);
    return promise;
  }

  /** Forget a token the server rejected. */
  async invalidate(token: AccessToken): Promise<void> {
    await this.cache.forget(token);
  }

  /**
   * What the hint of a rejected token request can name, from what is known without another
   * request: the advertised algs and scopes (discovery, or its cache when the token URL came from a
   * flag) and the scope saved in the profile by `smart register-client`.
   */
  private async errorContext(
    res: HttpResponse,
    base: OAuthErrorContext,
  ): Promise<OAuthErrorContext> {
    const body = tryJsonObject(res.text);
    if (!body || typeof body.error !== 'string') return base;
    const { isAlgComplaint } = await import('./token-errors.js');
    const error = body.error;
    const description =
      typeof body.error_description === 'string' ? body.error_description : undefined;
    const s = this.options.settings;
    if (error === 'invalid_client' && !isAlgComplaint(error, description))
      return { ...base, ownNameAdvice: await this.ownNameAdvice() };
    const wanted = error === 'invalid_scope' || isAlgComplaint(error, description);
    if (!wanted) return base;
    const config =
      this.discovered ??
      (s.fhirUrl
        ? await readCachedDiscovery(s.fhirUrl, s.paths.cacheDir, this.options.now())
        : undefined);
    const algs = config?.token_endpoint_auth_signing_alg_values_supported;
    const c: OAuthErrorContext = {
      ...base,
      advertisedAlgs:
        base.advertisedAlgs ?? (Array.isArray(algs) && algs.length ? algs : undefined),
    };
    if (error === 'invalid_scope') {
      const scopes = config?.scopes_supported;
      if (Array.isArray(scopes) && scopes.length) c.supportedScopes = scopes;
      c.profile = s.profile;
      c.registeredScope = await this.profileScope();
    }
    return c;
  }

  /**
   * Without serverUrl, when discovery (fresh or cached) advertises the token endpoint on another
   * origin than the base URL's: the server may check aud against its own name.
   */
  private async ownNameAdvice(): Promise<string | undefined> {
    const s = this.options.settings;
    if (serverAlias(s) || !s.baseUrl) return undefined;
    const config =
      this.discovered ??
      (s.fhirUrl
        ? await readCachedDiscovery(s.fhirUrl, s.paths.cacheDir, this.options.now())
        : undefined);
    const advertised = config?.token_endpoint;
    if (!advertised) return undefined;
    try {
      if (new URL(advertised).origin === new URL(s.baseUrl).origin) return undefined;
    } catch {
      return undefined;
    }
    return serverUrlAdvice(advertised, s.baseUrl);
  }

  /** The scope saved in the active profile (register-client saves the registered one). */
  private async profileScope(): Promise<string | undefined> {
    const s = this.options.settings;
    if (!s.profileExists) return undefined;
    try {
      return (await loadConfig(s.paths.configFile)).profiles[s.profile]?.scope;
    } catch {
      // Only for a hint: a config that cannot be read here was reported when settings resolved.
      return undefined;
    }
  }

  private async fetchToken(p: {
    tokenUrl: string;
    clientId: string;
    scope: string;
    key: SigningKey;
    keyFingerprint: string;
    store: boolean;
  }): Promise<AccessToken> {
    const s = this.options.settings;
    const advertised = this.advertisedAlgs;
    this.checkAlgAdvertised(p.key, p.tokenUrl);
    const [http, { JWT_BEARER, signClientAssertion }, { parseJsonBody, snippet }, { oauthError }] =
      await Promise.all([
        this.options.http(),
        import('./assertion.js'),
        import('../http/index.js'),
        import('./token-errors.js'),
      ]);
    let res: HttpResponse | undefined;
    // POSTs are not retried by the HTTP layer: a retry here signs a new assertion (new jti).
    for (let attempt = 1; attempt <= 3; attempt++) {
      const assertion = await signClientAssertion({
        clientId: p.clientId,
        audience: this.audience(p.tokenUrl),
        key: p.key,
        now: Math.floor(this.options.now() / 1000),
      });
      this.options.onAssertion?.(assertion);
      const form = new URLSearchParams({
        grant_type: 'client_credentials',
        scope: p.scope,
        client_assertion_type: JWT_BEARER,
        client_assertion: assertion.jwt,
      });
      try {
        res = await http.request(p.tokenUrl, {
          method: 'POST',
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            accept: 'application/json',
          },
          body: form.toString(),
          sizeCap: 'small',
        });
      } catch (e) {
        if (
          e instanceof SmartError &&
          e.kind === 'network' &&
          (e.code === 'ECONNRESET' || e.code === 'UND_ERR_SOCKET') &&
          attempt < 3
        )
          continue;
        // A discovered endpoint on another origin that does not answer: the server's own name.
        if (!s.tokenUrl && s.baseUrl) throw unreachableOwnName(e, p.tokenUrl, s.baseUrl) ?? e;
        throw e;
      }
      if ((res.status === 503 || res.status === 429) && attempt < 3) {
        // As the HTTP layer waits: Retry-After (seconds, an HTTP date or an epoch time), capped
        // alike, else backoff; Ctrl-C ends the wait.
        const after = parseRetryAfter(res.headers.get('retry-after'), this.options.now());
        const delay = Math.min(
          after ?? backoffDelay(attempt - 1, { baseMs: 500 }),
          MAX_RETRY_AFTER_MS,
        );
        await (this.options.sleep ?? systemClock.sleep)(delay, this.options.signal);
        continue;
      }
      break;
    }
    if (!res) throw new SmartError('network', `no answer from ${redactUrl(p.tokenUrl)}`);
    if (!res.ok) {
      throw oauthError(
        res,
        await this.errorContext(res, {
          tokenUrl: p.tokenUrl,
          clientId: p.clientId,
          kid: p.key.kid,
          alg: p.key.alg,
          scope: p.scope,
          jwksUri: s.jwksUri,
          advertisedAlgs: advertised,
          now: this.options.now(),
        }),
      );
    }
    const body = parseJsonBody<TokenResponse>(res.text, res.contentType, p.tokenUrl, res.status);
    if (!body || typeof body.access_token !== 'string' || body.access_token === '') {
      throw new SmartError(
        'http',
        `the token response from ${redactUrl(p.tokenUrl)} has no access_token: ${snippet(res.text)}`,
        {
          code: 'bad_token_response',
        },
      );
    }
    if (typeof body.token_type !== 'string' || body.token_type.toLowerCase() !== 'bearer') {
      throw new SmartError(
        'http',
        `the token response from ${redactUrl(p.tokenUrl)} has token_type "${String(body.token_type)}", expected "bearer"`,
        {
          code: 'bad_token_response',
        },
      );
    }
    const now = this.options.now();
    const expiresAt = tokenExpiry(body, now);
    const token: AccessToken = {
      accessToken: body.access_token,
      tokenType: body.token_type,
      scope: typeof body.scope === 'string' ? body.scope : undefined,
      requestedScope: p.scope,
      expiresAt,
      obtainedAt: now,
      tokenUrl: p.tokenUrl,
      clientId: p.clientId,
      kid: p.key.kid,
      keyFingerprint: p.keyFingerprint,
      fromCache: false,
      response: body,
    };
    this.options.log?.(
      `got a token for ${shortId(p.clientId)}${expiresAt ? `, expires in ${Math.round((expiresAt - now) / 1000)}s` : ', no expiry given (not cached)'}`,
    );
    if (p.store) await this.cache.store(token, now);
    return token;
  }
}
