import { SmartError } from '../errors.js';
import { describeErrorBody } from '../http/index.js';
import { redactUrl, shortId } from '../redact.js';
import { publicJwks } from './rfc7591.js';
import type { PlannedCall, Registrar } from './types.js';

/** A client id longer than this is not one (the reference servers' JWT ids are ~1-2 kB). */
const MAX_CLIENT_ID = 16 * 1024;

function unsupported(clientId: string): SmartError {
  return new SmartError(
    'runtime',
    `the SMART reference servers have no way to delete a registration (client "${shortId(clientId)}")`,
    {
      code: 'no_registration_management',
      hint: 'the client id carries its keys; stop using it, and `smart config unset clientId` forgets it here',
    },
  );
}

/**
 * The SMART reference servers' registration: `POST <base-url>/auth/register`, form-encoded,
 * `jwks` (the public JWKS as a JSON string) or `jwks_url`; the answer is the client id as plain
 * text (a long JWT-like string).
 */
export const smartReferenceRegistrar: Registrar = {
  kind: 'smart-reference',
  needsAdmin: false,

  async plan(input) {
    const url = input.registrationUrl ?? `${input.baseUrl.replace(/\/+$/, '')}/auth/register`;
    const form = new URLSearchParams(
      input.jwksUri ? { jwks_url: input.jwksUri } : { jwks: JSON.stringify(publicJwks(input)) },
    );
    const call: PlannedCall = {
      what: 'registration',
      method: 'POST',
      url,
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'text/plain',
      },
      body: form.toString(),
    };
    return { kind: 'smart-reference', input, calls: [call], warnings: [] };
  },

  async apply(plan, deps) {
    const call = plan.calls[0]!;
    const res = await deps.http.request(call.url, {
      method: 'POST',
      headers: call.headers,
      body: call.body as string,
    });
    if (!res.ok) {
      throw new SmartError(
        res.status === 401 || res.status === 403 ? 'auth' : 'http',
        `registration at ${redactUrl(call.url)} failed (${res.status}): ${describeErrorBody(res)}`,
        {
          status: res.status,
          code: 'registration_failed',
          hint:
            res.status === 404 || res.status === 405
              ? 'no reference-style /auth/register there: check --base-url or --registration-url, or try --server rfc7591'
              : undefined,
        },
      );
    }
    const clientId = res.text.trim();
    if (
      !clientId ||
      clientId.length > MAX_CLIENT_ID ||
      [...clientId].some((c) => c <= ' ' || c === '\u007f')
    ) {
      throw new SmartError(
        'http',
        `the registration answer of ${redactUrl(call.url)} is not a client id (expected one line of text, got ${clientId.length} characters${/\s/.test(clientId) ? ' with spaces' : ''})`,
        { status: res.status, code: 'bad_registration_response' },
      );
    }
    return {
      kind: 'smart-reference',
      clientId,
      rows: [
        {
          what: 'registration',
          id: clientId,
          url: call.url,
          status: res.status,
          result: 'registered',
        },
      ],
    };
  },

  async planRemoval(input) {
    throw unsupported(input.clientId);
  },

  async remove(input) {
    throw unsupported(input.clientId);
  },
};
