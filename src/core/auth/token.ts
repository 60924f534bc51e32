import { SmartError } from '../errors.js';
// The exchange (token-exchange.ts: the HTTP stack, the signer, the error texts) and the key's
// parser (keys.ts, node:crypto) are loaded only when a token is fetched: a cached token
// (`$(smart token)` in scripts) needs none of them (bench/startup.mjs).
import type { HttpClient } from '../http/index.js';
import type { SignedAssertion } from './assertion.js';
import type { Clock } from '../clock.js';
import {
  advertisedSigningAlgs,
  cachedDiscovery,
  fetchDiscovery,
  readCachedDiscovery,
  type SmartConfiguration,
} from '../discovery.js';
import type { SigningKey } from './keys.js';
import { keyFingerprint, readKeyFiles, type KeyFiles } from './key-file.js';
import { TokenCache, type TokenKey } from './token-cache.js';
import { requireSetting, type Settings } from '../settings.js';
import { redactUrl } from '../redact.js';
import { ownName, reachable, serverAlias } from '../server-url.js';

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
    return (await this.findTokenUrl('cache-then-fetch'))!;
  }

  /**
   * The token endpoint: the setting, else discovery. `offline`: from the cache only (undefined
   * when it has nothing fresh); `fetch`: by request, after an `offline` look found nothing (the
   * cache is not read again); `cache-then-fetch`: both.
   */
  private async findTokenUrl(
    mode: 'offline' | 'fetch' | 'cache-then-fetch',
  ): Promise<string | undefined> {
    const s = this.options.settings;
    if (s.tokenUrl) return s.tokenUrl;
    if (!s.fhirUrl) {
      throw new SmartError('usage', 'no token URL and no FHIR base URL to discover it from', {
        code: 'missing_setting',
        hint: 'pass --base-url (or --fhir-url, or --token-url), or save one with `smart init`',
      });
    }
    const d =
      mode === 'fetch'
        ? await fetchDiscovery(this.options.http, s.fhirUrl, s.paths.cacheDir, this.options.now())
        : await cachedDiscovery(
            mode === 'offline' ? undefined : this.options.http,
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
    return advertisedSigningAlgs(this.discovered);
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
    let tokenUrl = await this.findTokenUrl('offline');
    const early = tokenUrl ? await cached(tokenUrl) : undefined;
    if (early) return early;
    const key = await this.signingKey();
    if (!tokenUrl) {
      // Nothing fresh in the discovery cache a moment ago: discovery by request.
      tokenUrl = (await this.findTokenUrl('fetch'))!;
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

  /** POST a signed assertion for a token (token-exchange.ts), and keep it unless told not to. */
  private async fetchToken(p: {
    tokenUrl: string;
    clientId: string;
    scope: string;
    key: SigningKey;
    keyFingerprint: string;
    store: boolean;
  }): Promise<AccessToken> {
    this.checkAlgAdvertised(p.key, p.tokenUrl);
    const [http, { exchangeToken }] = await Promise.all([
      this.options.http(),
      import('./token-exchange.js'),
    ]);
    const token = await exchangeToken(
      {
        ...this.options,
        http,
        audience: this.audience(p.tokenUrl),
        discovered: this.discovered,
        advertisedAlgs: this.advertisedAlgs,
      },
      p,
    );
    if (p.store) await this.cache.store(token, token.obtainedAt);
    return token;
  }
}
