import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type CryptoKey,
  type JWK,
  SignJWT,
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
} from 'jose';
import type { SandboxHandle } from '../../../src/sandbox/index.js';

export const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

export interface TestKey {
  alg: string;
  kid: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

export async function makeKey(alg: 'RS384' | 'ES384' | 'ES256' | 'RS256'): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk);
  return { alg, kid, privateKey, publicJwk: { ...jwk, kid, alg, key_ops: ['verify'] } };
}

/** A tiny JWKS host, like `smart jwks serve` or any web server a client would use. */
export async function serveJwks(initial: JWK[], cacheControl?: string) {
  let keys = initial;
  let hits = 0;
  const server = createServer((_req, res) => {
    hits++;
    const headers: Record<string, string> = { 'Content-Type': 'application/json' };
    if (cacheControl) headers['Cache-Control'] = cacheControl;
    res.writeHead(200, headers);
    res.end(JSON.stringify({ keys }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    setKeys: (k: JWK[]) => {
      keys = k;
    },
    hits: () => hits,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

export interface AssertionOptions {
  key: TestKey;
  clientId: string;
  aud: string | string[];
  iss?: string;
  sub?: string;
  kid?: string | null;
  typ?: string | null;
  alg?: string;
  jku?: string;
  jti?: string | null;
  exp?: number | null;
  iat?: number;
}

export function signAssertion(o: AssertionOptions): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const header: Record<string, unknown> = { alg: o.alg ?? o.key.alg };
  if (o.kid !== null) header.kid = o.kid ?? o.key.kid;
  if (o.typ !== null) header.typ = o.typ ?? 'JWT';
  if (o.jku) header.jku = o.jku;
  const claims: Record<string, unknown> = {
    iss: o.iss ?? o.clientId,
    sub: o.sub ?? o.clientId,
    aud: o.aud,
    iat: o.iat ?? now,
  };
  if (o.jti !== null) claims.jti = o.jti ?? randomUUID();
  if (o.exp !== null) claims.exp = o.exp ?? now + 240;
  return new SignJWT(claims).setProtectedHeader(header as { alg: string }).sign(o.key.privateKey);
}

export function basic(sb: SandboxHandle, secret = sb.adminSecret): string {
  return 'Basic ' + Buffer.from(`root:${secret}`).toString('base64');
}

export function clientBody(jwksUri: string, extra: Record<string, unknown> = {}) {
  return {
    type: 'bulk-api-client',
    active: true,
    auth: {
      client_credentials: {
        client_assertion_types: [JWT_BEARER],
        access_token_expiration: 300,
        token_format: 'jwt',
      },
    },
    scope: ['system/*.read'],
    jwks_uri: jwksUri,
    grant_types: ['client_credentials'],
    ...extra,
  };
}

// Test code reads JSON bodies loosely; the assertions check their shape.
export type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
export async function json(res: Response): Promise<Json> {
  return (await res.json()) as Json;
}

export async function adminPut(sb: SandboxHandle, path: string, body: unknown, auth = basic(sb)) {
  const res = await fetch(`${sb.url}${path}`, {
    method: 'PUT',
    headers: {
      authorization: auth,
      'content-type': 'application/json',
      accept: 'application/json',
    },
    body: JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, body: await json(res) };
}

/** Registers a client with an allow policy; returns nothing, throws when the sandbox refuses. */
export async function register(
  sb: SandboxHandle,
  id: string,
  jwksUri: string,
  extra: Record<string, unknown> = {},
  policy = true,
) {
  const c = await adminPut(sb, `/Client/${id}`, clientBody(jwksUri, extra));
  if (c.status !== 201 && c.status !== 200) throw new Error(JSON.stringify(c.body));
  if (policy) {
    const p = await adminPut(sb, `/AccessPolicy/${id}`, {
      engine: 'allow',
      link: [{ id, resourceType: 'Client' }],
    });
    if (p.status !== 201 && p.status !== 200) throw new Error(JSON.stringify(p.body));
  }
}

export async function requestToken(sb: SandboxHandle, form: Record<string, string>) {
  const res = await fetch(sb.tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** The form of a well-formed token request with this assertion. */
/** A token request form; the scope is required by SMART, `null` leaves it out. */
export function tokenForm(
  assertion: string,
  scope: string | null = 'system/*.read',
): Record<string, string> {
  const form: Record<string, string> = {
    grant_type: 'client_credentials',
    client_assertion_type: JWT_BEARER,
    client_assertion: assertion,
  };
  if (scope !== null) form.scope = scope;
  return form;
}

export async function getToken(
  sb: SandboxHandle,
  key: TestKey,
  clientId: string,
  scope = 'system/*.read',
): Promise<string> {
  const assertion = await signAssertion({ key, clientId, aud: sb.tokenUrl });
  const r = await requestToken(sb, tokenForm(assertion, scope));
  if (r.status !== 200) throw new Error(JSON.stringify(r.body));
  return r.body.access_token as string;
}

export async function fhirGet(sb: SandboxHandle, pathOrUrl: string, token?: string) {
  const url = pathOrUrl.startsWith('http') ? pathOrUrl : `${sb.fhirUrl}/${pathOrUrl}`;
  const res = await fetch(url, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    body: text ? (JSON.parse(text) as Json) : undefined,
  };
}

/** A clock for the sandbox's `now` option that tests move forward instead of waiting. */
export function movableClock() {
  let offset = 0;
  return {
    now: () => Date.now() + offset,
    advance(ms: number) {
      offset += ms;
    },
  };
}
