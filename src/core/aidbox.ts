import { JWT_BEARER } from './auth/assertion.js';
import { SmartError, usageError } from './errors.js';
import {
  describeErrorBody,
  isLoopbackHost,
  oneLine,
  statusError,
  summarizeOperationOutcome,
  type HttpClient,
  type HttpResponse,
} from './http/index.js';
import { parseJwks, privateMembers, type Jwks, type PublicJwk } from './auth/keys.js';
import { tryJson } from './json.js';
import { maskExact, redactText, redactUrl } from './redact.js';

export const DEFAULT_CLIENT_TYPE = 'bulk-api-client';
export const DEFAULT_TOKEN_EXPIRATION = 300;
export const DEFAULT_ADMIN_CLIENT = 'root';

/** The only members Aidbox's inline `Client.jwks` schema takes. */
export const INLINE_JWK_MEMBERS = ['kid', 'kty', 'alg', 'use', 'n', 'e'] as const;
export type InlineJwk = Partial<Record<(typeof INLINE_JWK_MEMBERS)[number], string>>;

/** An Aidbox Client for SMART Backend Services, exactly the shape of the Aidbox walkthrough. */
export interface AidboxClient {
  type: string;
  active: true;
  auth: {
    client_credentials: {
      client_assertion_types: [typeof JWT_BEARER];
      access_token_expiration: number;
      token_format: 'jwt';
    };
  };
  scope: string[];
  jwks_uri?: string;
  jwks?: InlineJwk[];
  grant_types: ['client_credentials'];
}

export interface AidboxAccessPolicy {
  engine: 'allow';
  link: [{ id: string; resourceType: 'Client' }];
}

export interface ClientBodyOptions {
  scope: string | string[];
  jwksUri?: string;
  jwks?: InlineJwk[];
  tokenExpiration?: number;
  type?: string;
}

const ID = /^[A-Za-z0-9\-_.]{1,64}$/;

/** Aidbox ids: letters, digits, `-`, `_`, `.`; at most 64 characters. */
export function checkClientId(id: string): string {
  if (!ID.test(id)) {
    throw usageError(
      `client id "${id}" is not a valid Aidbox id`,
      'use letters, digits, "-", "_" and "." only, at most 64 characters',
      { code: 'bad_client_id' },
    );
  }
  return id;
}

export function splitScope(scope: string | string[]): string[] {
  const list = Array.isArray(scope) ? scope : scope.split(/\s+/);
  return list.map((s) => s.trim()).filter(Boolean);
}

export function clientBody(o: ClientBodyOptions): AidboxClient {
  const scope = splitScope(o.scope);
  if (scope.length === 0) throw usageError('--scope is empty', 'e.g. --scope "system/*.read"');
  if ((o.jwksUri === undefined) === (o.jwks === undefined)) {
    throw usageError(
      'give exactly one of --jwks-uri and --jwks-file',
      'a JWKS URL is preferred (SMART: "strongly preferred"); --jwks-file registers the keys inline',
      { code: 'jwks_source' },
    );
  }
  const expiration = o.tokenExpiration ?? DEFAULT_TOKEN_EXPIRATION;
  if (!Number.isInteger(expiration) || expiration <= 0) {
    throw usageError(
      `--token-expiration ${expiration} is not a positive whole number of seconds`,
      'SMART recommends 300',
    );
  }
  // The key order of the Aidbox walkthrough, so that --dry-run reads like the docs.
  const body: AidboxClient = {
    type: o.type ?? DEFAULT_CLIENT_TYPE,
    active: true,
    auth: {
      client_credentials: {
        client_assertion_types: [JWT_BEARER],
        access_token_expiration: expiration,
        token_format: 'jwt',
      },
    },
    scope,
    ...(o.jwksUri !== undefined ? { jwks_uri: o.jwksUri } : {}),
    ...(o.jwks !== undefined ? { jwks: o.jwks } : {}),
    grant_types: ['client_credentials'],
  };
  return body;
}

export function accessPolicyBody(clientId: string): AidboxAccessPolicy {
  return { engine: 'allow', link: [{ id: clientId, resourceType: 'Client' }] };
}

/**
 * The public keys of a JWKS in the form Aidbox's inline `Client.jwks` accepts: only
 * kid/kty/alg/use/n/e (key_ops, ext and the like are dropped). Private members are refused.
 */
export function inlineJwks(jwks: Jwks, source: string): { keys: InlineJwk[]; warnings: string[] } {
  const leaks = privateMembers(jwks);
  if (leaks.length) {
    throw usageError(
      `${source} holds private key material: ${leaks.join('; ')}`,
      'register public keys only: the jwks.json written by `smart keygen` is public',
      { code: 'private_members' },
    );
  }
  if (jwks.keys.length === 0)
    throw usageError(`${source} holds no keys`, undefined, { code: 'not_jwks' });
  const warnings: string[] = [];
  const keys = jwks.keys.map((k, i) => {
    const where = `keys[${i}]${k.kid ? ` (kid ${k.kid})` : ''}`;
    if (!k.kid) {
      throw usageError(`${source}: ${where} has no kid`, 'every registered key needs a kid', {
        code: 'not_jwks',
      });
    }
    if (k.kty !== 'RSA') {
      warnings.push(
        `${where} is ${k.kty}${k.crv ? ` ${k.crv}` : ''}: Aidbox's inline jwks schema takes RSA keys only (use --jwks-uri for EC keys)`,
      );
    }
    const dropped = Object.keys(k).filter(
      (m) =>
        !(INLINE_JWK_MEMBERS as readonly string[]).includes(m) && !['crv', 'x', 'y'].includes(m),
    );
    if (dropped.length)
      warnings.push(
        `${where}: left out ${dropped.join(', ')} (not in Aidbox's Client.jwks schema)`,
      );
    const out: Record<string, unknown> = {};
    for (const m of INLINE_JWK_MEMBERS) if (typeof k[m] === 'string') out[m] = k[m];
    // EC members are kept so that servers that take EC keys inline still can; Aidbox will say no.
    for (const m of ['crv', 'x', 'y']) if (typeof k[m] === 'string') out[m] = k[m];
    return out as InlineJwk;
  });
  return { keys, warnings };
}

export type Verb = 'PUT' | 'DELETE';

export interface AdminRequest {
  method: Verb;
  resourceType: 'Client' | 'AccessPolicy';
  id: string;
  url: string;
  body?: unknown;
}

/** The requests that register a client: the Client first, then its AccessPolicy. */
export function registrationRequests(
  baseUrl: string,
  clientId: string,
  client: AidboxClient,
  options: { accessPolicy?: boolean } = {},
): AdminRequest[] {
  const base = baseUrl.replace(/\/+$/, '');
  const reqs: AdminRequest[] = [
    {
      method: 'PUT',
      resourceType: 'Client',
      id: clientId,
      url: `${base}/Client/${encodeURIComponent(clientId)}`,
      body: client,
    },
  ];
  if (options.accessPolicy !== false) {
    reqs.push({
      method: 'PUT',
      resourceType: 'AccessPolicy',
      id: clientId,
      url: `${base}/AccessPolicy/${encodeURIComponent(clientId)}`,
      body: accessPolicyBody(clientId),
    });
  }
  return reqs;
}

/** Unregistering goes the other way: the AccessPolicy first, then the Client. */
export function unregistrationRequests(
  baseUrl: string,
  clientId: string,
  options: { accessPolicy?: boolean } = {},
): AdminRequest[] {
  const base = baseUrl.replace(/\/+$/, '');
  const reqs: AdminRequest[] = [];
  if (options.accessPolicy !== false) {
    reqs.push({
      method: 'DELETE',
      resourceType: 'AccessPolicy',
      id: clientId,
      url: `${base}/AccessPolicy/${encodeURIComponent(clientId)}`,
    });
  }
  reqs.push({
    method: 'DELETE',
    resourceType: 'Client',
    id: clientId,
    url: `${base}/Client/${encodeURIComponent(clientId)}`,
  });
  return reqs;
}

export interface AdminCredentials {
  clientId: string;
  secret: string;
}

export type AdminResult = 'created' | 'updated' | 'deleted' | 'absent';

export interface AdminOutcome {
  resourceType: 'Client' | 'AccessPolicy';
  id: string;
  url: string;
  status: number;
  result: AdminResult;
  /** What the server answered (the stored resource), when it was JSON. */
  resource?: Record<string, unknown>;
}

function basicAuth(c: AdminCredentials): string {
  return `Basic ${Buffer.from(`${c.clientId}:${c.secret}`, 'utf8').toString('base64')}`;
}

/**
 * A server's text for an error line: one line, no token-shaped strings, and never the admin
 * secret (a server may echo the request it refused).
 */
function scrub(text: string, admin: AdminCredentials): string {
  let t = redactText(text);
  const basic = Buffer.from(`${admin.clientId}:${admin.secret}`, 'utf8').toString('base64');
  for (const s of [admin.secret, basic]) t = maskExact(t, s);
  return oneLine(t);
}

/** A failed admin answer as a SmartError that names the URL and, for a 422, the fields. */
export function adminError(
  res: HttpResponse,
  req: AdminRequest,
  admin: AdminCredentials,
): SmartError {
  const url = redactUrl(req.url);
  const origin = new URL(req.url).origin;
  if (res.status === 401 || res.status === 403) {
    return new SmartError(
      'auth',
      `admin credentials rejected by ${origin} (${req.method} ${url} answered ${res.status})`,
      {
        status: res.status,
        code: 'admin_rejected',
        hint: `check SMART_ADMIN_SECRET (or BOX_ROOT_CLIENT_SECRET) and --admin-client (now "${admin.clientId}"); the admin client needs grant_types [basic] and an allow AccessPolicy`,
      },
    );
  }
  const body = tryJson(res.text);
  const summary = summarizeOperationOutcome(body);
  const outcome = summary === undefined ? undefined : scrub(summary, admin);
  const described = scrub(describeErrorBody(res), admin);
  if (res.status === 422 || (res.status === 400 && outcome)) {
    return new SmartError(
      'fhir',
      `${req.method} ${url} was rejected (${res.status}): ${outcome ?? described}`,
      {
        status: res.status,
        code: 'invalid_resource',
        hint: `the server's schema refused the ${req.resourceType} body; --dry-run prints it`,
        details: { outcome: body },
      },
    );
  }
  if (res.status === 404 || res.status === 405) {
    return statusError(req.method, req.url, res, {
      said: described,
      hint: `--base-url must be the server origin (e.g. https://aidbox.example.com), not the FHIR base: ${req.resourceType} is an Aidbox native resource at /${req.resourceType}/<id>`,
    });
  }
  return statusError(req.method, req.url, res, { said: described, details: { body } });
}

/**
 * Send one admin request with HTTP Basic; 201 = created, 200 = updated. A DELETE first GETs the
 * resource: 404 there is absent (Aidbox's DELETE answers 204 either way).
 */
export async function sendAdminRequest(
  http: HttpClient,
  req: AdminRequest,
  admin: AdminCredentials,
): Promise<AdminOutcome> {
  const headers: Record<string, string> = {
    accept: 'application/json',
    authorization: basicAuth(admin),
  };
  if (req.body !== undefined) headers['content-type'] = 'application/json';
  if (req.method === 'DELETE') {
    // Aidbox answers 204 to a DELETE whether or not the resource was there: ask first.
    const probe = await http.request(req.url, { method: 'GET', headers });
    if (probe.status === 404 || probe.status === 410) {
      return {
        resourceType: req.resourceType,
        id: req.id,
        url: req.url,
        status: probe.status,
        result: 'absent',
      };
    }
    if (!probe.ok) throw adminError(probe, { ...req, method: 'DELETE' }, admin);
  }
  const res = await http.request(req.url, {
    method: req.method,
    headers,
    body: req.body === undefined ? undefined : JSON.stringify(req.body),
  });
  const base = { resourceType: req.resourceType, id: req.id, url: req.url, status: res.status };
  const resource = tryJson(res.text);
  const asResource =
    resource && typeof resource === 'object' && !Array.isArray(resource)
      ? (resource as Record<string, unknown>)
      : undefined;
  if (req.method === 'DELETE') {
    if (res.status === 404 || res.status === 410) return { ...base, result: 'absent' };
    if (res.ok) return { ...base, result: 'deleted', resource: asResource };
    throw adminError(res, req, admin);
  }
  if (!res.ok) throw adminError(res, req, admin);
  return { ...base, result: res.status === 201 ? 'created' : 'updated', resource: asResource };
}

/** Send the requests in order; the first failure stops the rest. */
export async function sendAdminRequests(
  http: HttpClient,
  reqs: AdminRequest[],
  admin: AdminCredentials,
): Promise<AdminOutcome[]> {
  const out: AdminOutcome[] = [];
  for (const req of reqs) out.push(await sendAdminRequest(http, req, admin));
  return out;
}

/** True for localhost, 127.0.0.0/8, ::1 and 0.0.0.0: addresses that mean "this machine" to whoever resolves them. */
export function isLoopbackUrl(url: string): boolean {
  try {
    return isLoopbackHost(new URL(url).hostname);
  } catch {
    return false;
  }
}

export function loopbackWarning(jwksUri: string): string {
  return (
    `jwks_uri ${jwksUri} is a loopback address: the FHIR server fetches it itself, so it must be able to reach it. ` +
    "Aidbox in Docker cannot reach the host's localhost: use a name on the Docker network or host.docker.internal, or register the keys inline with --jwks-file"
  );
}

export interface JwksCheck {
  /** The kids the JWKS holds. */
  kids: string[];
  /** Whether the profile's key kid is among them (undefined when no kid was given). */
  hasKid?: boolean;
}

/**
 * GET a jwks_uri the way the FHIR server will (Accept: application/json) and check it is a JWKS,
 * public only, holding `kid` when given. Errors name the URL; a network failure propagates (the
 * caller decides whether not reaching it from here matters).
 */
export async function checkJwksUri(
  http: HttpClient,
  jwksUri: string,
  kid?: string,
): Promise<JwksCheck> {
  const res = await http.request(jwksUri, { headers: { accept: 'application/json' } });
  if (!res.ok) {
    throw statusError(undefined, jwksUri, res, {
      prefix: 'jwks_uri',
      code: 'jwks_unavailable',
      hint: 'the server will fetch this URL to verify assertions: publish the JWKS there (`smart jwks serve`), or pass --no-check',
    });
  }
  let jwks: Jwks;
  try {
    jwks = parseJwks(res.text, `jwks_uri ${redactUrl(jwksUri)}`);
  } catch (e) {
    const type = res.contentType.split(';')[0] || 'no content type';
    throw new SmartError(
      'http',
      `jwks_uri ${redactUrl(jwksUri)} did not answer with a JWKS (${type}): ${(e as Error).message}`,
      {
        cause: e,
        code: 'not_jwks',
        hint: 'the URL must serve {"keys": [...]} as application/json; pass --no-check to register it anyway',
      },
    );
  }
  return checkJwks(jwks, `jwks_uri ${redactUrl(jwksUri)}`, kid);
}

/** Check a JWKS (fetched or from a file): public only, and holding `kid` when given. */
export function checkJwks(jwks: Jwks, source: string, kid?: string): JwksCheck {
  const leaks = privateMembers(jwks);
  if (leaks.length) {
    throw new SmartError('usage', `${source} publishes private key material: ${leaks.join('; ')}`, {
      code: 'private_members',
      hint: 'remove d, p, q, dp, dq, qi from the published JWKS at once, and make a new key (this one is compromised)',
    });
  }
  const kids = jwks.keys
    .map((k: PublicJwk) => k.kid)
    .filter((k): k is string => typeof k === 'string');
  if (kid === undefined) return { kids };
  if (!kids.includes(kid)) {
    throw new SmartError(
      'usage',
      `${source} does not hold the key with kid ${kid} (it has ${kids.length ? kids.join(', ') : 'no kids'})`,
      {
        code: 'kid_not_in_jwks',
        hint: "publish the public key of the profile's --key there (`smart jwks show`), point --key at the right key, or pass --no-check",
      },
    );
  }
  return { kids, hasKid: true };
}
