import { timingSafeEqual } from 'node:crypto';
import { parseScope } from './scopes.js';
import { R4_RESOURCE_TYPES } from './resource-types.js';
import { type Exchange, HttpError, JSON_TYPE, fhirError, outcome, readBody, send } from './http.js';

export const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const GRANT_TYPES = [
  'client_credentials',
  'basic',
  'authorization_code',
  'password',
  'implicit',
  'refresh_token',
  'code',
];
const ENGINES = ['allow', 'matcho', 'json-schema', 'sql', 'complex', 'signed-rpc', 'allow-rpc'];

export interface Jwk {
  kty: string;
  kid?: string;
  alg?: string;
  crv?: string;
  [k: string]: unknown;
}

export interface Client {
  resourceType: 'Client';
  id: string;
  type?: string;
  active?: boolean;
  grant_types: string[];
  /** Required with the client_credentials grant; a client of other grants may have none. */
  auth?: {
    client_credentials?: {
      /** Absent or empty: a secret-based client, which cannot sign assertions. */
      client_assertion_types?: string[];
      access_token_expiration?: number;
      token_format?: 'jwt';
    };
  };
  /** Required with the client_credentials grant. */
  scope?: string[];
  jwks_uri?: string;
  jwks?: Jwk[];
  [k: string]: unknown;
}

export interface AccessPolicy {
  resourceType: 'AccessPolicy';
  id: string;
  engine: string;
  link?: { resourceType?: string; id?: string; reference?: string }[];
  [k: string]: unknown;
}

type Problems = string[];

/**
 * Field problems of a Client body; empty when valid. As in Aidbox, a Client may have other
 * grants than client_credentials (root has `basic`) and a client_credentials Client may have no
 * client_assertion_types (it would use a secret): such Clients are stored, and the token
 * endpoint refuses their assertions. What a backend-services Client needs is checked here.
 */
export function validateClient(
  body: Record<string, unknown>,
  /** Key types an inline jwks may hold: RSA only, as Aidbox, unless EC algs are accepted. */
  inlineKeyTypes: readonly string[] = ['RSA', 'EC'],
): Problems {
  const p: Problems = [];
  if (body.type !== undefined && typeof body.type !== 'string') p.push('type: must be a string');
  if (body.active !== undefined && typeof body.active !== 'boolean') {
    p.push('active: must be true or false');
  }
  const grants = body.grant_types;
  let clientCredentials = false;
  if (!Array.isArray(grants) || grants.some((g) => typeof g !== 'string')) {
    p.push('grant_types: required, a list of grant types such as client_credentials');
  } else {
    for (const g of grants) {
      if (!GRANT_TYPES.includes(g)) p.push(`grant_types: unknown grant type '${g}'`);
    }
    clientCredentials = grants.includes('client_credentials');
  }
  const auth = body.auth;
  if (auth !== undefined && (typeof auth !== 'object' || auth === null || Array.isArray(auth))) {
    p.push('auth: must be an object');
  }
  const cc = (auth as { client_credentials?: unknown } | undefined)?.client_credentials;
  let jwtBearer = false;
  if (cc === undefined) {
    if (clientCredentials) {
      p.push('auth.client_credentials: required for the client_credentials grant');
    }
  } else if (typeof cc !== 'object' || cc === null || Array.isArray(cc)) {
    p.push('auth.client_credentials: must be an object');
  } else {
    const c = cc as Record<string, unknown>;
    const types = c.client_assertion_types;
    if (types !== undefined && !Array.isArray(types)) {
      p.push(`auth.client_credentials.client_assertion_types: must be a list, ['${JWT_BEARER}']`);
    } else if (Array.isArray(types)) {
      for (const t of types) {
        if (t !== JWT_BEARER) {
          p.push(
            `auth.client_credentials.client_assertion_types: '${String(t)}' is not supported; the only allowed value is '${JWT_BEARER}'`,
          );
        }
      }
      jwtBearer = types.includes(JWT_BEARER);
    }
    const exp = c.access_token_expiration;
    if (exp !== undefined && (!Number.isInteger(exp) || (exp as number) < 1)) {
      p.push('auth.client_credentials.access_token_expiration: must be a positive integer');
    }
    // Optional, as on Aidbox: 'jwt', or absent for an opaque token without expires_in.
    if (c.token_format !== undefined && c.token_format !== 'jwt') {
      p.push(
        `auth.client_credentials.token_format: must be 'jwt' or absent (got ${JSON.stringify(c.token_format)})`,
      );
    }
  }
  const scope = body.scope;
  // Optional, as on Aidbox: without it the scopes asked for are granted (the AccessPolicy rules).
  if (scope === undefined) {
    // nothing to check
  } else if (!Array.isArray(scope) || scope.length === 0) {
    p.push('scope: must be a non-empty list of system scopes such as system/*.read');
  } else {
    for (const s of scope) {
      const parsed = parseScope(String(s));
      if (typeof parsed === 'string') p.push(`scope: ${parsed}`);
      else if (parsed.context !== 'system') {
        p.push(`scope: '${s}': client_credentials clients take only system/ scopes`);
      } else if (parsed.type !== '*' && !R4_RESOURCE_TYPES.has(parsed.type)) {
        p.push(`scope: '${s}': '${parsed.type}' is not a FHIR R4 resource type`);
      }
    }
  }
  if (jwtBearer && body.jwks_uri === undefined && body.jwks === undefined) {
    p.push('jwks_uri: required (or an inline jwks) to verify client assertions');
  }
  if (body.jwks_uri !== undefined) {
    let ok = false;
    try {
      const u = new URL(String(body.jwks_uri));
      ok = typeof body.jwks_uri === 'string' && (u.protocol === 'http:' || u.protocol === 'https:');
    } catch {
      ok = false;
    }
    if (!ok) p.push('jwks_uri: must be an http(s) URL');
  }
  if (body.jwks !== undefined) {
    if (!Array.isArray(body.jwks) || body.jwks.length === 0) {
      p.push('jwks: must be a non-empty list of public JWKs');
    } else {
      body.jwks.forEach((k: Record<string, unknown>, i: number) => {
        if (typeof k !== 'object' || k === null) return void p.push(`jwks[${i}]: not an object`);
        if (!inlineKeyTypes.includes(String(k.kty)))
          p.push(`jwks[${i}].kty: must be ${inlineKeyTypes.join(' or ')}`);
        if (typeof k.kid !== 'string' || !k.kid) p.push(`jwks[${i}].kid: required`);
        for (const priv of ['d', 'p', 'q', 'dp', 'dq', 'qi']) {
          if (k[priv] !== undefined) p.push(`jwks[${i}].${priv}: private key material`);
        }
      });
    }
  }
  return p;
}

export function validateAccessPolicy(body: Record<string, unknown>): Problems {
  const p: Problems = [];
  if (typeof body.engine !== 'string') p.push(`engine: required, one of ${ENGINES.join(', ')}`);
  else if (!ENGINES.includes(body.engine)) {
    p.push(`engine: unknown engine '${body.engine}' (one of ${ENGINES.join(', ')})`);
  }
  if (body.link !== undefined) {
    if (!Array.isArray(body.link)) p.push('link: must be a list of references');
    else {
      body.link.forEach((l: Record<string, unknown>, i: number) => {
        const ok =
          typeof l === 'object' &&
          l !== null &&
          ((typeof l.resourceType === 'string' && typeof l.id === 'string') ||
            (typeof l.reference === 'string' && l.reference.includes('/')));
        if (!ok) p.push(`link[${i}]: expected {resourceType, id} or {reference: 'Client/<id>'}`);
      });
    }
  }
  return p;
}

/** Clients and AccessPolicies, as PUT through the admin API. */
export class Registry {
  readonly clients = new Map<string, Client>();
  readonly policies = new Map<string, AccessPolicy>();
  private version = 0;

  /** True when some AccessPolicy with engine `allow` applies to the client. */
  allows(clientId: string): boolean {
    for (const p of this.policies.values()) {
      if (p.engine !== 'allow') continue;
      // Like Aidbox: a policy without link is global.
      if (!p.link || p.link.length === 0) return true;
      for (const l of p.link) {
        if (l.resourceType === 'Client' && l.id === clientId) return true;
        if (l.reference === `Client/${clientId}`) return true;
      }
    }
    return false;
  }

  nextVersion(): string {
    return String(++this.version);
  }
}

const ID = /^[A-Za-z0-9\-_.]{1,64}$/;

/** Checks HTTP Basic `root:<secret>`; true when it is the admin. */
export function isAdmin(header: string | undefined, secret: string): boolean {
  if (!header || !/^basic /i.test(header)) return false;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return false;
  const user = decoded.slice(0, colon);
  const a = Buffer.from(decoded.slice(colon + 1));
  const b = Buffer.from(secret);
  return user === 'root' && a.length === b.length && timingSafeEqual(a, b);
}

export function requireAdmin(ex: Exchange, secret: string): void {
  if (!isAdmin(ex.req.headers.authorization, secret)) {
    throw new HttpError(
      401,
      outcome('login', 'admin credentials required: HTTP Basic as the root client'),
      { 'WWW-Authenticate': 'Basic realm="sandbox admin"' },
    );
  }
  ex.clientId = 'root';
}

/** PUT/GET/DELETE /Client/<id> and /AccessPolicy/<id>, GET /Client and /AccessPolicy. */
export async function handleAdmin(
  ex: Exchange,
  registry: Registry,
  kind: 'Client' | 'AccessPolicy',
  id: string | undefined,
  inlineKeyTypes?: readonly string[],
): Promise<void> {
  const store: Map<string, Client | AccessPolicy> =
    kind === 'Client' ? registry.clients : registry.policies;
  if (id === undefined) {
    if (ex.method !== 'GET') throw fhirError(405, 'not-supported', `${ex.method} /${kind}`);
    const entry = [...store.values()].map((resource) => ({ resource }));
    send(
      ex,
      200,
      { resourceType: 'Bundle', type: 'searchset', total: entry.length, entry },
      JSON_TYPE,
    );
    return;
  }
  if (!ID.test(id)) throw fhirError(400, 'invalid', `invalid id '${id}'`);
  const existing = store.get(id);
  if (ex.method === 'GET') {
    if (!existing) throw fhirError(404, 'not-found', `${kind}/${id} not found`);
    send(ex, 200, existing, JSON_TYPE);
    return;
  }
  if (ex.method === 'DELETE') {
    // Aidbox answers 204 to the DELETE of a resource that is not there.
    if (!existing) {
      send(ex, 204, undefined);
      return;
    }
    store.delete(id);
    send(ex, 200, existing, JSON_TYPE);
    return;
  }
  if (ex.method !== 'PUT') throw fhirError(405, 'not-supported', `${ex.method} /${kind}/${id}`);
  const text = await readBody(ex);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw fhirError(422, 'structure', 'the request body is not valid JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw fhirError(422, 'structure', `the request body must be a ${kind} JSON object`);
  }
  const b = body as Record<string, unknown>;
  const problems: Problems = [];
  if (b.resourceType !== undefined && b.resourceType !== kind) {
    problems.push(`resourceType: expected '${kind}', got '${String(b.resourceType)}'`);
  }
  // A body id other than the URL's is ignored, as Aidbox does: the URL names the resource.
  problems.push(
    ...(kind === 'Client' ? validateClient(b, inlineKeyTypes) : validateAccessPolicy(b)),
  );
  if (problems.length > 0) {
    send(
      ex,
      422,
      {
        resourceType: 'OperationOutcome',
        issue: problems.map((d) => ({
          severity: 'error',
          code: 'invalid',
          diagnostics: d,
          expression: [d.split(':')[0]],
        })),
      },
      JSON_TYPE,
    );
    return;
  }
  const saved = {
    ...b,
    resourceType: kind,
    id,
    meta: { lastUpdated: new Date().toISOString(), versionId: registry.nextVersion() },
  };
  store.set(id, saved as Client & AccessPolicy);
  send(ex, existing ? 200 : 201, saved, JSON_TYPE);
}
