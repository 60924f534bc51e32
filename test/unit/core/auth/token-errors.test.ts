import { describe, expect, it } from 'vitest';
import {
  CLOCK_SKEW_WARN_SECONDS,
  clockSkewNote,
  isAlgComplaint,
  oauthError,
  type OAuthErrorContext,
} from '../../../../src/core/auth/token-errors.js';
import { fakeHttp, type FakeAnswer } from '../../../helpers/fake-http.js';

const TOKEN = 'https://auth.example.org/token';
const CTX: OAuthErrorContext = {
  tokenUrl: TOKEN,
  clientId: 'my-client',
  kid: 'kid-1',
  alg: 'RS384',
  scope: 'system/*.read',
};

const answer = (a: FakeAnswer) => fakeHttp(() => a).request(TOKEN, { method: 'POST' });
const refused = async (error: string, description?: string, c: Partial<OAuthErrorContext> = {}) =>
  oauthError(
    await answer({
      status: 400,
      body: { error, ...(description === undefined ? {} : { error_description: description }) },
    }),
    { ...CTX, ...c },
  );

describe('oauthError: each OAuth error -> one line and its hint (exit 3)', () => {
  it('invalid_client: the key, its kid, the JWKS, the client id and the clock', async () => {
    const e = await refused('invalid_client', 'assertion\nverification failed', {
      jwksUri: 'https://keys.example/jwks.json',
    });
    expect(e.message).toBe(
      `token request rejected by ${TOKEN}: invalid_client: assertion verification failed`,
    );
    expect([e.kind, e.exitCode, e.status, e.code]).toEqual(['auth', 3, 400, 'invalid_client']);
    expect(e.hint).toBe(
      'the server could not verify the assertion: does https://keys.example/jwks.json serve kid kid-1, and can the server reach it? is client id "my-client" registered? is the clock right?',
    );
    expect(e.details).toEqual({
      error: 'invalid_client',
      error_description: 'assertion verification failed',
    });
    expect((await refused('invalid_client')).hint).toContain('does the registered JWKS serve');
  });

  it('invalid_client when the server names itself otherwise: what to set', async () => {
    const e = await refused('invalid_client', undefined, {
      ownNameAdvice: 'set --server-url http://aidbox:8080',
    });
    expect(e.hint).toBe(
      "set --server-url http://aidbox:8080; the server checks the assertion's aud against its own name",
    );
  });

  it('invalid_grant about the key is treated as invalid_client; otherwise the request itself', async () => {
    const key = await refused('invalid_grant', 'No public keys found in the JWKS with kid kid-1');
    expect(key.hint).toMatch(/^the server could not verify the assertion/);
    const other = await refused('invalid_grant', 'grant expired');
    expect(other.hint).toBe(
      'the server rejected the request itself; run with --verbose and check the token endpoint URL',
    );
    expect((await refused('invalid_request')).hint).toBe(other.hint);
  });

  it('an algorithm complaint names the key alg and the advertised ones', async () => {
    const e = await refused('invalid_client', 'unsupported alg RS384', {
      advertisedAlgs: ['ES384', 'RS256'],
    });
    expect(e.hint).toBe(
      'the key signs with RS384; the server advertises ES384, RS256: make a key with `smart keygen --alg ES384`',
    );
    expect((await refused('unsupported_algorithm')).hint).toBe(
      'the key signs with RS384; check which algorithms the server accepts (`smart discover`)',
    );
  });

  it('invalid_scope without a profile: register with scopes that cover it; system/ only', async () => {
    const e = await refused('invalid_scope', undefined, {
      scope: 'system/Patient.read user/Observation.read',
      supportedScopes: ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'],
    });
    expect(e.message).toBe(`token request rejected by ${TOKEN}: invalid_scope`);
    expect(e.hint).toBe(
      'requested "system/Patient.read user/Observation.read"; the client must be registered with scopes that cover it (smart register-client --scope ...), or ask for less with --scope; backend services take system/ scopes only, not user/Observation.read; the server advertises a b c d e f g h … (10 in all)',
    );
  });

  it("invalid_scope with the profile's registered scope: the same one, or another", async () => {
    const same = await refused('invalid_scope', undefined, {
      registeredScope: ' system/*.read ',
      profile: 'prod',
      supportedScopes: ['system/*.read'],
    });
    expect(same.hint).toBe(
      'requested "system/*.read"; that is the registered scope saved in profile "prod", so the server\'s Client.scope differs: register again (smart register-client my-client --scope ...); the server advertises system/*.read',
    );
    const other = await refused('invalid_scope', undefined, {
      registeredScope: 'system/Patient.read',
    });
    expect(other.hint).toBe(
      'requested "system/*.read"; registered (saved in profile "default"): "system/Patient.read": ask for scopes within it (--scope), or register again with more (smart register-client my-client --scope ...)',
    );
  });

  it('unauthorized_client, unsupported_grant_type, and an error of its own', async () => {
    expect((await refused('unauthorized_client')).hint).toBe(
      'client "my-client" is not allowed the client_credentials grant; register it with grant_types [client_credentials]',
    );
    expect((await refused('unsupported_grant_type')).hint).toBe(
      `the server does not offer the client_credentials grant at ${TOKEN}: check the token endpoint (\`smart discover\`, grant_types_supported)`,
    );
    const own = await refused('slow_down', 'try later');
    expect([own.message, own.hint, own.code]).toEqual([
      `token request rejected by ${TOKEN}: slow_down: try later`,
      "see the server's description above",
      'slow_down',
    ]);
  });

  it('shortens a long client id the server quotes, and never prints a token-shaped string', async () => {
    const long = `c-${'x'.repeat(300)}`;
    const jwt = 'eyJhbGciOiJSUzM4NCJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlc2lnbmF0dXJl';
    const e = await refused('invalid_client', `unknown client ${long}, assertion ${jwt}`, {
      clientId: long,
    });
    expect(e.message).not.toContain(long);
    expect(e.message).not.toContain(jwt);
    expect(e.hint).not.toContain(long);
  });

  it('not an OAuth error body: the status and the body; a hint when it is not JSON at all', async () => {
    const html = oauthError(
      await answer({ status: 404, body: '<html>no</html>', contentType: 'text/html' }),
      CTX,
    );
    expect(html.message).toBe(
      `token request to ${TOKEN} failed with HTTP 404: text/html: <html>no</html>`,
    );
    expect([html.kind, html.status]).toEqual(['http', 404]);
    expect(html.hint).toBe(
      "is this the token endpoint? check --token-url or the server's .well-known/smart-configuration",
    );
    const json = oauthError(await answer({ status: 401, body: { message: 'go away' } }), CTX);
    expect(json.message).toBe(`token request to ${TOKEN} failed with HTTP 401: go away`);
    expect([json.kind, json.exitCode, json.hint]).toEqual(['auth', 3, undefined]);
    expect(oauthError(await answer({ status: 403, body: { error: 1 } }), CTX).kind).toBe('auth');
  });
});

describe('clockSkewNote', () => {
  const at = (date: string | undefined) =>
    answer({ status: 400, body: {}, headers: date ? { date } : {} });
  const NOW = Date.parse('2026-01-01T12:00:00.000Z');

  it(`says nothing within ${CLOCK_SKEW_WARN_SECONDS} s, without a Date header, a clock or a date`, async () => {
    expect(
      await at('Thu, 01 Jan 2026 12:00:30 GMT').then((r) => clockSkewNote(r, NOW)),
    ).toBeUndefined();
    expect(clockSkewNote(await at(undefined), NOW)).toBeUndefined();
    expect(clockSkewNote(await at('Thu, 01 Jan 2026 10:00:00 GMT'), undefined)).toBeUndefined();
    expect(clockSkewNote(await at('yesterday'), NOW)).toBeUndefined();
  });

  it('names both times and which one is ahead', async () => {
    expect(clockSkewNote(await at('Thu, 01 Jan 2026 11:58:00 GMT'), NOW)).toBe(
      "this machine's clock says 2026-01-01T12:00:00.000Z but the server's says 2026-01-01T11:58:00.000Z (120 s ahead): the server judges the assertion's iat and exp by its own clock, so set this clock right (NTP), or shorten the assertion's lifetime",
    );
    expect(clockSkewNote(await at('Thu, 01 Jan 2026 12:01:01 GMT'), NOW)).toMatch(
      /\(61 s behind\)/,
    );
  });

  it('comes first in the hint of a refused token request', async () => {
    const res = await answer({
      status: 400,
      body: { error: 'invalid_grant', error_description: 'assertion expired' },
      headers: { date: 'Thu, 01 Jan 2026 13:00:00 GMT' },
    });
    const e = oauthError(res, { ...CTX, now: NOW });
    expect(e.hint).toMatch(
      /^this machine's clock says .* \(3600 s behind\): .*; the server rejected the request itself/,
    );
    const bare = await answer({
      status: 500,
      body: { x: 1 },
      headers: { date: 'Thu, 01 Jan 2026 13:00:00 GMT' },
    });
    expect(oauthError(bare, { ...CTX, now: NOW }).hint).toMatch(
      /^this machine's clock says .*lifetime$/,
    );
  });
});

describe('isAlgComplaint', () => {
  it('unsupported_algorithm, or a description that speaks of alg(s) or algorithm(s)', () => {
    expect(isAlgComplaint('unsupported_algorithm', undefined)).toBe(true);
    expect(isAlgComplaint('invalid_client', 'Unsupported ALG RS384')).toBe(true);
    expect(isAlgComplaint('invalid_client', 'allowed algorithms: ES384')).toBe(true);
    expect(isAlgComplaint('invalid_client', 'algs')).toBe(true);
    expect(isAlgComplaint('invalid_client', 'bad signature')).toBe(false);
    expect(isAlgComplaint('invalid_client', 'algebra')).toBe(false);
    expect(isAlgComplaint('invalid_client', undefined)).toBe(false);
  });
});
