import { SmartError, serverCode, usageError } from '../errors.js';
import { describeErrorBody, snippet, type HttpResponse } from '../http/index.js';
import { tryJsonObject } from '../json.js';
import { privateMembers, type PublicJwk } from '../auth/keys.js';
import { redactUrl, shortId } from '../redact.js';
import { deleteManagement, loadManagement } from './store.js';
import type {
  ManagementCredentials,
  PlannedCall,
  RegistrationDeps,
  RegistrationInput,
  Registrar,
  RegistrationRow,
} from './types.js';

/** Members a registered JWK may carry: the public ones only. */
const PUBLIC_MEMBERS = ['kty', 'kid', 'alg', 'use', 'key_ops', 'n', 'e', 'crv', 'x', 'y'];

/** The public members of each key; a JWKS with private members is refused. */
export function publicJwks(input: RegistrationInput): { keys: PublicJwk[] } {
  const jwks = input.jwks!;
  const leaks = privateMembers(jwks);
  if (leaks.length) {
    throw usageError(
      `${input.jwksSource ?? 'the JWKS'} holds private key material: ${leaks.join('; ')}`,
      'register public keys only: the jwks.json written by `smart keygen` is public',
      { code: 'private_members' },
    );
  }
  return {
    keys: jwks.keys.map((k) => {
      const out: PublicJwk = { kty: k.kty };
      for (const m of PUBLIC_MEMBERS) if (k[m] !== undefined) out[m] = k[m];
      return out;
    }),
  };
}

async function registrationEndpoint(
  input: RegistrationInput,
  deps: Pick<RegistrationDeps, 'discover'>,
): Promise<string> {
  if (input.registrationUrl) return input.registrationUrl;
  let discovered: unknown;
  try {
    discovered = (await deps.discover?.())?.registration_endpoint;
  } catch (e) {
    throw new SmartError(
      'usage',
      `no registration endpoint: discovery failed (${(e as Error).message})`,
      {
        code: 'no_registration_endpoint',
        cause: e,
        hint: 'pass --registration-url (or set SMART_REGISTRATION_URL)',
      },
    );
  }
  if (typeof discovered === 'string' && discovered) return discovered;
  throw new SmartError(
    'usage',
    "no registration endpoint: the server's SMART configuration has no registration_endpoint",
    {
      code: 'no_registration_endpoint',
      hint: 'pass --registration-url (or set SMART_REGISTRATION_URL), or register out of band and `smart config set clientId <id>`',
    },
  );
}

function registrationError(res: HttpResponse, url: string, hadToken: boolean): SmartError {
  const body = tryJsonObject(res.text);
  const error = typeof body?.error === 'string' ? snippet(body.error, 80) : undefined;
  const description =
    typeof body?.error_description === 'string' ? snippet(body.error_description, 300) : undefined;
  const said = error ? `${error}${description ? `: ${description}` : ''}` : describeErrorBody(res);
  if (res.status === 401 || res.status === 403) {
    return new SmartError(
      'auth',
      `registration refused by ${redactUrl(url)} (${res.status}): ${said}`,
      {
        status: res.status,
        code: error ? serverCode(error) : 'registration_refused',
        hint: hadToken
          ? 'the initial access token in SMART_REGISTRATION_TOKEN was not accepted: get a new one from the server operator'
          : 'the server wants an initial access token: set SMART_REGISTRATION_TOKEN (never a flag)',
      },
    );
  }
  return new SmartError(
    'http',
    `registration at ${redactUrl(url)} failed (${res.status}): ${said}`,
    {
      status: res.status,
      code: error ? serverCode(error) : 'registration_failed',
      hint:
        error === 'invalid_client_metadata' || error === 'invalid_redirect_uri'
          ? 'the server refused the client metadata; --dry-run prints what was sent'
          : undefined,
    },
  );
}

function noManagement(clientId: string): SmartError {
  return new SmartError(
    'runtime',
    `no registration_client_uri and registration_access_token saved for client "${shortId(clientId)}": the server gave none when it was registered (or it was registered elsewhere), so it cannot be deleted through RFC 7592`,
    {
      code: 'no_registration_management',
      hint: "ask the server's operator to remove the client; `smart config unset clientId` forgets it here",
    },
  );
}

export const rfc7591Registrar: Registrar = {
  kind: 'rfc7591',
  needsAdmin: false,

  async plan(input, deps) {
    const url = await registrationEndpoint(input, deps);
    const body: Record<string, unknown> = {
      client_name: input.name,
      grant_types: ['client_credentials'],
      response_types: [],
      token_endpoint_auth_method: 'private_key_jwt',
      ...(input.alg ? { token_endpoint_auth_signing_alg: input.alg } : {}),
      ...(input.jwksUri ? { jwks_uri: input.jwksUri } : { jwks: publicJwks(input) }),
      scope: input.scope.trim().split(/\s+/).join(' '),
    };
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/json',
    };
    if (input.registrationToken) headers.authorization = `Bearer ${input.registrationToken}`;
    const call: PlannedCall = {
      what: 'registration',
      method: 'POST',
      url,
      headers,
      body,
      secretHeaders: ['authorization'],
    };
    return { kind: 'rfc7591', input, calls: [call], warnings: [] };
  },

  async apply(plan, deps) {
    const call = plan.calls[0]!;
    const res = await deps.http.request(call.url, {
      method: 'POST',
      headers: call.headers,
      body: JSON.stringify(call.body),
    });
    if (!res.ok) throw registrationError(res, call.url, Boolean(call.headers.authorization));
    const body = tryJsonObject(res.text);
    const clientId = body?.client_id;
    if (typeof clientId !== 'string' || clientId === '') {
      throw new SmartError(
        'http',
        `the registration answer of ${redactUrl(call.url)} has no client_id: ${snippet(res.text)}`,
        { status: res.status, code: 'bad_registration_response' },
      );
    }
    let management: ManagementCredentials | undefined;
    if (
      typeof body!.registration_client_uri === 'string' &&
      typeof body!.registration_access_token === 'string'
    ) {
      management = {
        clientId,
        registrationClientUri: body!.registration_client_uri,
        registrationAccessToken: body!.registration_access_token,
      };
    }
    const { registration_access_token: _t, client_secret: _s, ...shown } = body!;
    const row: RegistrationRow = {
      what: 'registration',
      id: clientId,
      url: call.url,
      status: res.status,
      result: 'registered',
      resource: shown,
    };
    return { kind: 'rfc7591', clientId, rows: [row], management };
  },

  async planRemoval(input, deps) {
    const m = deps.configDir ? await loadManagement(deps.configDir, input.clientId) : undefined;
    if (!m) throw noManagement(input.clientId);
    return [
      {
        what: 'registration',
        id: input.clientId,
        method: 'DELETE',
        url: m.registrationClientUri,
        headers: { authorization: `Bearer ${m.registrationAccessToken}` },
        secretHeaders: ['authorization'],
      },
    ];
  },

  async remove(input, deps) {
    const [call] = await this.planRemoval(input, deps);
    const res = await deps.http.request(call!.url, { method: 'DELETE', headers: call!.headers });
    let result: RegistrationRow['result'];
    if (res.status === 404 || res.status === 410) result = 'absent';
    else if (res.ok) result = 'deleted';
    else if (res.status === 401 || res.status === 403) {
      throw new SmartError(
        'auth',
        `${redactUrl(call!.url)} refused the registration access token (${res.status}): ${describeErrorBody(res)}`,
        {
          status: res.status,
          code: 'registration_token_rejected',
          hint: 'the registration may be gone already, or the server rotated the token; ask its operator',
        },
      );
    } else throw registrationError(res, call!.url, true);
    await deleteManagement(deps.configDir!, input.clientId);
    return [
      { what: 'registration', id: input.clientId, url: call!.url, status: res.status, result },
    ];
  },
};
