import { SmartError, serverCode } from '../errors.js';
import { describeErrorBody, snippet, type HttpResponse } from '../http/index.js';
import { tryJsonObject } from '../json.js';
import { redactUrl, shortId } from '../redact.js';

/**
 * A refused token request as one line and a hint that names the likely cause (the key and its
 * kid, the registered scope, the clock, the server's own name): the texts, apart from the
 * provider that gathers what they need (token.ts).
 */

export interface OAuthErrorContext {
  tokenUrl: string;
  clientId: string;
  kid: string;
  alg: string;
  scope: string;
  jwksUri?: string;
  advertisedAlgs?: string[];
  /** The profile's scope (what `smart register-client` registered), when known. */
  registeredScope?: string;
  /** The profile it comes from, for the hint. */
  profile?: string;
  /** The server's scopes_supported, when discovery said. */
  supportedScopes?: string[];
  /** This machine's clock (epoch ms) when the answer came, to compare with its Date header. */
  now?: number;
  /** When the server advertises itself under another name than the base URL: what to set. */
  ownNameAdvice?: string;
}

/** Clocks further apart than this are worth a word in the hint of a failed token request. */
export const CLOCK_SKEW_WARN_SECONDS = 30;

/**
 * When the server's Date header and this machine's clock are more than 30 s apart: a sentence
 * naming both times (the server judges the assertion's iat and exp by its own clock).
 */
export function clockSkewNote(res: HttpResponse, now: number | undefined): string | undefined {
  const header = res.headers.get('date');
  if (now === undefined || !header) return undefined;
  const server = Date.parse(header);
  if (!Number.isFinite(server)) return undefined;
  const apart = Math.round((now - server) / 1000);
  if (Math.abs(apart) <= CLOCK_SKEW_WARN_SECONDS) return undefined;
  const iso = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString();
  return `this machine's clock says ${iso(now)} but the server's says ${iso(server)} (${Math.abs(apart)} s ${apart > 0 ? 'ahead' : 'behind'}): the server judges the assertion's iat and exp by its own clock, so set this clock right (NTP), or shorten the assertion's lifetime`;
}

function withSkew(hint: string | undefined, skew: string | undefined): string | undefined {
  if (!skew) return hint;
  return hint ? `${skew}; ${hint}` : skew;
}

/** Whether an OAuth error is about the signing algorithm. */
export function isAlgComplaint(error: string, description: string | undefined): boolean {
  return error === 'unsupported_algorithm' || /\balg(orithm)?s?\b/i.test(description ?? '');
}

function invalidScopeHint(c: OAuthErrorContext): string {
  const requested = c.scope.split(/\s+/).filter(Boolean);
  const parts = [`requested "${c.scope}"`];
  if (c.registeredScope !== undefined) {
    const where = `profile "${c.profile ?? 'default'}"`;
    parts.push(
      c.registeredScope.trim().split(/\s+/).join(' ') === requested.join(' ')
        ? `that is the registered scope saved in ${where}, so the server's Client.scope differs: register again (smart register-client ${shortId(c.clientId)} --scope ...)`
        : `registered (saved in ${where}): "${c.registeredScope}": ask for scopes within it (--scope), or register again with more (smart register-client ${shortId(c.clientId)} --scope ...)`,
    );
  } else {
    parts.push(
      'the client must be registered with scopes that cover it (smart register-client --scope ...), or ask for less with --scope',
    );
  }
  const notSystem = requested.filter((r) => !r.startsWith('system/'));
  if (notSystem.length) {
    parts.push(`backend services take system/ scopes only, not ${notSystem.join(' ')}`);
  }
  if (c.supportedScopes?.length) {
    const shown = c.supportedScopes.slice(0, 8).join(' ');
    parts.push(
      `the server advertises ${shown}${c.supportedScopes.length > 8 ? ` … (${c.supportedScopes.length} in all)` : ''}`,
    );
  }
  return parts.join('; ');
}

/** Turn a failed token response into one line with the usual causes as a hint. */
export function oauthError(res: HttpResponse, c: OAuthErrorContext): SmartError {
  const body = tryJsonObject(res.text);
  const url = redactUrl(c.tokenUrl);
  const skew = clockSkewNote(res, c.now);
  if (!body || typeof body.error !== 'string') {
    const kind = res.status === 401 || res.status === 403 ? 'auth' : 'http';
    return new SmartError(
      kind,
      `token request to ${url} failed with HTTP ${res.status}: ${describeErrorBody(res)}`,
      {
        status: res.status,
        hint: withSkew(
          body
            ? undefined
            : "is this the token endpoint? check --token-url or the server's .well-known/smart-configuration",
          skew,
        ),
      },
    );
  }
  // The server's words on one line, without anything token-shaped (snippet redacts).
  const error = snippet(body.error, 80);
  const description =
    typeof body.error_description === 'string' && body.error_description.trim() !== ''
      ? // A server that quotes a long client id: shortened like everywhere else.
        snippet(
          c.clientId
            ? body.error_description.split(c.clientId).join(shortId(c.clientId))
            : body.error_description,
          300,
        )
      : undefined;
  let hint: string;
  if (isAlgComplaint(error, description)) {
    hint = c.advertisedAlgs?.length
      ? `the key signs with ${c.alg}; the server advertises ${c.advertisedAlgs.join(', ')}: make a key with \`smart keygen --alg ${c.advertisedAlgs[0]}\``
      : `the key signs with ${c.alg}; check which algorithms the server accepts (\`smart discover\`)`;
  } else if (error === 'invalid_client' && c.ownNameAdvice) {
    hint = `${c.ownNameAdvice}; the server checks the assertion's aud against its own name`;
  } else if (
    error === 'invalid_client' ||
    // Some servers say invalid_grant for a key problem ("No public keys found in the JWKS with kid").
    (error === 'invalid_grant' &&
      /\bkid\b|\bjwks?\b|public keys?|signature/i.test(description ?? ''))
  ) {
    hint = `the server could not verify the assertion: does ${c.jwksUri ?? 'the registered JWKS'} serve kid ${c.kid}, and can the server reach it? is client id "${shortId(c.clientId)}" registered? is the clock right?`;
  } else if (error === 'invalid_scope') {
    hint = invalidScopeHint(c);
  } else if (error === 'unauthorized_client') {
    hint = `client "${shortId(c.clientId)}" is not allowed the client_credentials grant; register it with grant_types [client_credentials]`;
  } else if (error === 'unsupported_grant_type') {
    hint = `the server does not offer the client_credentials grant at ${url}: check the token endpoint (\`smart discover\`, grant_types_supported)`;
  } else if (error === 'invalid_grant' || error === 'invalid_request') {
    hint =
      'the server rejected the request itself; run with --verbose and check the token endpoint URL';
  } else {
    hint = "see the server's description above";
  }
  return new SmartError(
    'auth',
    `token request rejected by ${url}: ${error}${description ? `: ${description}` : ''}`,
    {
      status: res.status,
      code: serverCode(error),
      hint: withSkew(hint, skew),
      details: { error, error_description: description },
    },
  );
}
