import { SignJWT } from 'jose';
import { type AccessPolicy, type Client, type Jwk, JWT_BEARER, type Registry } from './admin.js';
import type { ServerKey } from './auth.js';
import { type Exchange, HttpError, fhirError, mediaType, outcome, readBody, send } from './http.js';

/**
 * Behaviours of real SMART / Bulk Data servers that differ from the sandbox's strict defaults,
 * switched on one by one (`smart sandbox --quirks a,b` or `startSandbox({ quirks })`), so that
 * the client's handling of each can be tested end to end:
 *
 * - `no-grant-types`: discovery omits grant_types_supported;
 * - `no-signing-algs`: discovery omits token_endpoint_auth_signing_alg_values_supported;
 * - `lowercase-bearer`: the token response says `token_type: "bearer"`;
 * - `kickoff-429`: the first two $export kick-offs answer 429 with an absolute epoch
 *   Retry-After (seconds the first time, milliseconds the second);
 * - `invalid-grant`: an assertion whose kid is not in the client's JWKS gets `invalid_grant`
 *   ("No public keys found in the JWKS with kid ..."), not `invalid_client`;
 * - `error-counts`: every export has an error[] file whose manifest count is the number of
 *   output resources, not its own line count;
 * - `reference-registration`: `POST /auth/register` as the SMART reference servers have it
 *   (form field `jwks` or `jwks_url`; the answer is the new client id as plain text, a JWT).
 */
export const QUIRKS = [
  'no-grant-types',
  'no-signing-algs',
  'lowercase-bearer',
  'kickoff-429',
  'invalid-grant',
  'error-counts',
  'reference-registration',
] as const;
export type Quirk = (typeof QUIRKS)[number];

/** `a,b` or a list of names; an unknown name throws an Error that lists the known ones. */
export function parseQuirks(spec: string | readonly string[]): Quirk[] {
  const names = (typeof spec === 'string' ? [spec] : spec)
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter(Boolean);
  for (const n of names) {
    if (!(QUIRKS as readonly string[]).includes(n)) {
      throw new Error(`unknown quirk '${n}' (known: ${QUIRKS.join(', ')})`);
    }
  }
  return [...new Set(names)] as Quirk[];
}

/** How many times `kickoff-429` refuses a kick-off before letting it through. */
export const KICKOFF_429_TIMES = 2;

export class Quirks {
  private kickoffs = 0;
  readonly list: readonly Quirk[];

  constructor(
    list: readonly string[] = [],
    private readonly now: () => number = Date.now,
  ) {
    this.list = parseQuirks(list);
  }

  has(q: Quirk): boolean {
    return this.list.includes(q);
  }

  /** The discovery document as this server advertises it. */
  discovery<T extends Record<string, unknown>>(config: T): T {
    const out: Record<string, unknown> = { ...config };
    if (this.has('no-grant-types')) delete out.grant_types_supported;
    if (this.has('no-signing-algs')) delete out.token_endpoint_auth_signing_alg_values_supported;
    return out as T;
  }

  tokenType(): string {
    return this.has('lowercase-bearer') ? 'bearer' : 'Bearer';
  }

  /** With `invalid-grant`: the error a kid missing from the client's JWKS gets. */
  unknownKid(kid: string): { error: string; description: string } | undefined {
    if (!this.has('invalid-grant')) return undefined;
    return {
      error: 'invalid_grant',
      description: `No public keys found in the JWKS with kid "${kid}"`,
    };
  }

  /** With `kickoff-429`: throws the 429 for the first kick-offs (epoch s, then epoch ms). */
  kickoff(): void {
    if (!this.has('kickoff-429') || this.kickoffs >= KICKOFF_429_TIMES) return;
    this.kickoffs++;
    const at = this.now() + 1000;
    const retryAfter =
      this.kickoffs === 1 ? String(Math.ceil(at / 1000)) : String(Math.ceil(at / 1000) * 1000);
    throw new HttpError(
      429,
      outcome('throttled', `Too many requests: kick-off ${this.kickoffs} refused, come back later`),
      { 'Retry-After': retryAfter },
    );
  }

  /** With `error-counts`: the error[] entry of an export, its count being the output's. */
  errorFile(outputResources: number): { lines: string[]; count: number } | undefined {
    if (!this.has('error-counts')) return undefined;
    return {
      lines: [
        JSON.stringify(
          outcome('processing', 'some resources could not be exported (see the server log)'),
        ),
      ],
      count: outputResources,
    };
  }

  /**
   * `POST /auth/register` of the SMART reference servers: a form with `jwks` (a JWKS as a JSON
   * string) or `jwks_url`; the answer is the new client id, a signed JWT, as text/plain. The
   * client may use system/*.read and system/*.rs (an allow AccessPolicy is linked to it).
   */
  async register(ex: Exchange, registry: Registry, key: ServerKey, issuer: string): Promise<void> {
    if (ex.method !== 'POST') throw fhirError(405, 'not-supported', 'use POST /auth/register');
    const body = await readBody(ex);
    if (mediaType(ex.req.headers['content-type']) !== 'application/x-www-form-urlencoded') {
      throw new HttpError(
        400,
        'the registration must be application/x-www-form-urlencoded',
        {},
        'text/plain',
      );
    }
    const form = new URLSearchParams(body);
    const jwksUrl = form.get('jwks_url') ?? undefined;
    const jwksText = form.get('jwks') ?? undefined;
    if (!jwksUrl === !jwksText) {
      throw new HttpError(400, 'give either jwks or jwks_url', {}, 'text/plain');
    }
    let jwks: Jwk[] | undefined;
    if (jwksText) {
      try {
        const parsed = JSON.parse(jwksText) as { keys?: unknown };
        if (!Array.isArray(parsed.keys)) throw new Error('no keys array');
        jwks = parsed.keys as Jwk[];
      } catch (e) {
        throw new HttpError(400, `jwks is not a JWKS: ${(e as Error).message}`, {}, 'text/plain');
      }
      if (jwks.some((k) => 'd' in k)) {
        throw new HttpError(400, 'jwks holds private key material', {}, 'text/plain');
      }
    } else {
      try {
        const u = new URL(jwksUrl!);
        if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
      } catch {
        throw new HttpError(400, 'jwks_url is not an http(s) URL', {}, 'text/plain');
      }
    }
    const clientId = await new SignJWT({
      ...(jwks ? { jwks: { keys: jwks } } : { jwks_url: jwksUrl }),
      accessTokensExpireIn: 5,
    })
      .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'JWT' })
      .setIssuer(issuer)
      .setIssuedAt(Math.floor(this.now() / 1000))
      .sign(key.privateKey);
    const client: Client = {
      resourceType: 'Client',
      id: clientId,
      active: true,
      grant_types: ['client_credentials'],
      auth: {
        client_credentials: {
          client_assertion_types: [JWT_BEARER],
          access_token_expiration: 300,
          token_format: 'jwt',
        },
      },
      scope: ['system/*.read', 'system/*.rs'],
      ...(jwks ? { jwks } : { jwks_uri: jwksUrl }),
    };
    registry.clients.set(clientId, client);
    const policyId = `reference-${registry.clients.size}`;
    const policy: AccessPolicy = {
      resourceType: 'AccessPolicy',
      id: policyId,
      engine: 'allow',
      link: [{ resourceType: 'Client', id: clientId }],
    };
    registry.policies.set(policyId, policy);
    send(ex, 200, clientId, 'text/plain; charset=utf-8');
  }
}
