// The token request itself, loaded only when a token is fetched (token.ts finds a cached one
// without it): the signed assertion POSTed to the token endpoint, its retries, the answer
// checked, and a refused request as one line whose hint names the likely cause.
import { SmartError } from '../errors.js';
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
import {
  advertisedSigningAlgs,
  readCachedDiscovery,
  type SmartConfiguration,
} from '../discovery.js';
import type { SigningKey } from './keys.js';
import { tokenExpiry } from './token-cache.js';
import { loadConfig, type Settings } from '../settings.js';
import { redactUrl, shortId } from '../redact.js';
import { serverAlias, serverUrlAdvice, unreachableOwnName } from '../server-url.js';
import type { AccessToken, TokenResponse } from './token.js';

/** What an exchange needs from the TokenProvider that runs it. */
export interface TokenExchange {
  settings: Settings;
  http: HttpClient;
  now: () => number;
  sleep?: Clock['sleep'];
  signal?: AbortSignal;
  log?: (message: string) => void;
  onAssertion?: (assertion: SignedAssertion) => void;
  /** The assertion's aud: the token URL, or the server's own name for it. */
  audience: string;
  /** The discovered SMART configuration, when discovery ran (for the hint of a refusal). */
  discovered?: SmartConfiguration;
  /** The signing algs the server advertises, when discovery said. */
  advertisedAlgs?: string[];
}

/**
 * What the hint of a rejected token request can name, from what is known without another
 * request: the advertised algs and scopes (discovery, or its cache when the token URL came from a
 * flag) and the scope saved in the profile by `smart register-client`.
 */
async function errorContext(
  x: TokenExchange,
  res: HttpResponse,
  base: OAuthErrorContext,
): Promise<OAuthErrorContext> {
  const body = tryJsonObject(res.text);
  if (!body || typeof body.error !== 'string') return base;
  const { isAlgComplaint } = await import('./token-errors.js');
  const error = body.error;
  const description =
    typeof body.error_description === 'string' ? body.error_description : undefined;
  const s = x.settings;
  if (error === 'invalid_client' && !isAlgComplaint(error, description))
    return { ...base, ownNameAdvice: await ownNameAdvice(x) };
  const wanted = error === 'invalid_scope' || isAlgComplaint(error, description);
  if (!wanted) return base;
  const config = await knownConfiguration(x);
  const c: OAuthErrorContext = {
    ...base,
    advertisedAlgs: base.advertisedAlgs ?? advertisedSigningAlgs(config),
  };
  if (error === 'invalid_scope') {
    const scopes = config?.scopes_supported;
    if (Array.isArray(scopes) && scopes.length) c.supportedScopes = scopes;
    c.profile = s.profile;
    c.registeredScope = await profileScope(x);
  }
  return c;
}

/**
 * Without serverUrl, when discovery (fresh or cached) advertises the token endpoint on another
 * origin than the base URL's: the server may check aud against its own name.
 */
async function ownNameAdvice(x: TokenExchange): Promise<string | undefined> {
  const s = x.settings;
  if (serverAlias(s) || !s.baseUrl) return undefined;
  const advertised = (await knownConfiguration(x))?.token_endpoint;
  if (!advertised) return undefined;
  try {
    if (new URL(advertised).origin === new URL(s.baseUrl).origin) return undefined;
  } catch {
    return undefined;
  }
  return serverUrlAdvice(advertised, s.baseUrl);
}

/** The server's configuration as known without a request: discovered, else cached. */
async function knownConfiguration(x: TokenExchange): Promise<SmartConfiguration | undefined> {
  const s = x.settings;
  return (
    x.discovered ??
    (s.fhirUrl ? await readCachedDiscovery(s.fhirUrl, s.paths.cacheDir, x.now()) : undefined)
  );
}

/** The scope saved in the active profile (register-client saves the registered one). */
async function profileScope(x: TokenExchange): Promise<string | undefined> {
  const s = x.settings;
  if (!s.profileExists) return undefined;
  try {
    return (await loadConfig(s.paths.configFile)).profiles[s.profile]?.scope;
  } catch {
    // Only for a hint: a config that cannot be read here was reported when settings resolved.
    return undefined;
  }
}

/**
 * Sign an assertion for `p.key` and POST it to `p.tokenUrl` for a token: retried on a reset
 * connection, a 503 or a 429 (each retry signs a new assertion); a refusal is one SmartError
 * whose hint names the likely cause.
 */
export async function exchangeToken(
  x: TokenExchange,
  p: { tokenUrl: string; clientId: string; scope: string; key: SigningKey; keyFingerprint: string },
): Promise<AccessToken> {
  const s = x.settings;
  const http = x.http;
  const [{ JWT_BEARER, signClientAssertion }, { parseJsonBody, snippet }, { oauthError }] =
    await Promise.all([
      import('./assertion.js'),
      import('../http/index.js'),
      import('./token-errors.js'),
    ]);
  let res: HttpResponse | undefined;
  // POSTs are not retried by the HTTP layer: a retry here signs a new assertion (new jti).
  for (let attempt = 1; attempt <= 3; attempt++) {
    const assertion = await signClientAssertion({
      clientId: p.clientId,
      audience: x.audience,
      key: p.key,
      now: Math.floor(x.now() / 1000),
    });
    x.onAssertion?.(assertion);
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
      const after = parseRetryAfter(res.headers.get('retry-after'), x.now());
      const delay = Math.min(
        after ?? backoffDelay(attempt - 1, { baseMs: 500 }),
        MAX_RETRY_AFTER_MS,
      );
      await (x.sleep ?? systemClock.sleep)(delay, x.signal);
      continue;
    }
    break;
  }
  if (!res) throw new SmartError('network', `no answer from ${redactUrl(p.tokenUrl)}`);
  if (!res.ok) {
    throw oauthError(
      res,
      await errorContext(x, res, {
        tokenUrl: p.tokenUrl,
        clientId: p.clientId,
        kid: p.key.kid,
        alg: p.key.alg,
        scope: p.scope,
        jwksUri: s.jwksUri,
        advertisedAlgs: x.advertisedAlgs,
        now: x.now(),
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
  const now = x.now();
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
  x.log?.(
    `got a token for ${shortId(p.clientId)}${expiresAt ? `, expires in ${Math.round((expiresAt - now) / 1000)}s` : ', no expiry given (not cached)'}`,
  );
  return token;
}
