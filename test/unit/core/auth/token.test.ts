import { describe, expect, test } from 'vitest';
import { statSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { decodeJwt } from 'jose';
import { SmartError } from '../../../../src/core/errors.js';
import { generateSigningKey, type SigningAlg } from '../../../../src/core/auth/keys.js';
import { CACHE_MARGIN_MS, TokenProvider, jwtExpiry } from '../../../../src/core/auth/token.js';
import type { Settings } from '../../../../src/core/settings.js';
import { saveDiscovery } from '../../../../src/core/discovery.js';
import { fakeHttp, formOf, testSettings, type FakeHandler } from '../../../helpers/fake-http.js';
import { tempDir } from '../../../helpers/tmp.js';

const TOKEN_URL = 'https://auth.example.org/auth/token';
const T0 = 1_800_000_000_000;

async function newKeyFile(alg: SigningAlg = 'RS384'): Promise<{ file: string; kid: string }> {
  const g = await generateSigningKey(alg);
  const dir = tempDir('token-test-');
  const file = join(dir, 'key.pem');
  writeFileSync(file, g.privateKeyPem, { mode: 0o600 });
  return { file, kid: g.kid };
}

// One key per alg for the file (generating an RSA key costs more than a test): tests that need a
// second key call newKeyFile.
const keys = new Map<SigningAlg, Promise<{ file: string; kid: string }>>();
function keyFile(alg: SigningAlg = 'RS384'): Promise<{ file: string; kid: string }> {
  if (!keys.has(alg)) keys.set(alg, newKeyFile(alg));
  return keys.get(alg)!;
}

function okToken(n: number, extra: Record<string, unknown> = {}) {
  return {
    body: {
      access_token: `tok-${n}`,
      token_type: 'Bearer',
      expires_in: 300,
      scope: 'system/*.read',
      ...extra,
    },
  };
}

async function setup(handler: FakeHandler, over: Partial<Settings> = {}, signal?: AbortSignal) {
  const k = await keyFile();
  const settings = testSettings({ clientId: 'c1', key: k.file, tokenUrl: TOKEN_URL, ...over });
  const http = fakeHttp(handler);
  let now = T0;
  const log: string[] = [];
  // The provider's waits: recorded, and the clock moved by them instead of the test waiting.
  const sleeps: number[] = [];
  const provider = new TokenProvider({
    settings,
    http: async () => http,
    now: () => now,
    sleep: async (ms, s) => {
      s?.throwIfAborted();
      sleeps.push(ms);
      now += ms;
    },
    signal,
    log: (m) => log.push(m),
  });
  return { provider, http, settings, kid: k.kid, log, sleeps, setNow: (t: number) => (now = t) };
}

describe('TokenProvider: the request', () => {
  test('POSTs the four form parameters, no client_id; the assertion is fresh and aimed at the token URL', async () => {
    const { provider, http, kid } = await setup(() => okToken(1));
    const t = await provider.getToken();
    expect(t.accessToken).toBe('tok-1');
    expect(http.calls).toHaveLength(1);
    const call = http.calls[0]!;
    expect(call.method).toBe('POST');
    expect(call.url).toBe(TOKEN_URL);
    expect(call.headers['content-type']).toBe('application/x-www-form-urlencoded');
    const form = formOf(call);
    expect(Object.keys(form).sort()).toEqual([
      'client_assertion',
      'client_assertion_type',
      'grant_type',
      'scope',
    ]);
    expect(form.grant_type).toBe('client_credentials');
    expect(form.scope).toBe('system/*.read');
    expect(form.client_assertion_type).toBe(
      'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    );
    const claims = decodeJwt(form.client_assertion!);
    expect(claims).toMatchObject({
      iss: 'c1',
      sub: 'c1',
      aud: TOKEN_URL,
      iat: T0 / 1000,
      exp: T0 / 1000 + 240,
    });
    expect(t).toMatchObject({
      tokenType: 'Bearer',
      scope: 'system/*.read',
      expiresAt: T0 + 300_000,
      kid,
      fromCache: false,
    });
  });

  test('scopes are normalised (extra spaces) and can be overridden per call', async () => {
    const { provider, http } = await setup(() => okToken(1), {
      scope: '  system/Patient.read   system/Observation.read ',
    });
    await provider.getToken();
    await provider.getToken({ scope: 'system/Group.read' });
    expect(http.calls.map((c) => formOf(c).scope)).toEqual([
      'system/Patient.read system/Observation.read',
      'system/Group.read',
    ]);
  });

  test('a retry after 503 signs a new assertion (new jti)', async () => {
    let n = 0;
    const { provider, http } = await setup(() =>
      ++n === 1 ? { status: 503, body: { error: 'temporarily_unavailable' } } : okToken(n),
    );
    const t = await provider.getToken();
    expect(t.accessToken).toBe('tok-2');
    const [a, b] = http.calls.map((c) => decodeJwt(formOf(c).client_assertion!).jti);
    expect(a).not.toBe(b);
  });

  test('Retry-After in seconds, as an HTTP date or an epoch time is waited for, capped at 30 s', async () => {
    for (const [retryAfter, waited] of [
      ['2', 2000],
      [new Date(T0 + 5000).toUTCString(), 5000],
      [String(T0 / 1000 + 3), 3000],
      ['3600', 30_000],
    ] as const) {
      let n = 0;
      const { provider, sleeps } = await setup(() =>
        ++n === 1
          ? { status: 429, headers: { 'retry-after': retryAfter }, body: { error: 'slow_down' } }
          : okToken(n),
      );
      expect((await provider.getToken()).accessToken, retryAfter).toBe('tok-2');
      expect(sleeps, retryAfter).toEqual([waited]);
    }
  });

  test('without Retry-After: backoff, at most two retries, then the 503 is the error', async () => {
    const { provider, http, sleeps } = await setup(() => ({
      status: 503,
      body: { error: 'temporarily_unavailable' },
    }));
    await expect(provider.getToken()).rejects.toThrow(/503|temporarily_unavailable/);
    expect(http.calls).toHaveLength(3);
    expect(sleeps).toHaveLength(2);
    expect(sleeps[0]).toBeLessThanOrEqual(500);
    expect(sleeps[1]).toBeLessThanOrEqual(1000);
  });

  test('Ctrl-C ends the wait between retries: the abort reason, no further request', async () => {
    const controller = new AbortController();
    const { provider, http } = await setup(
      () => {
        controller.abort(new SmartError('runtime', 'interrupted', { code: 'interrupted' }));
        return { status: 503, headers: { 'retry-after': '20' }, body: {} };
      },
      {},
      controller.signal,
    );
    await expect(provider.getToken()).rejects.toMatchObject({ code: 'interrupted' });
    expect(http.calls).toHaveLength(1);
  });

  test('concurrent requests for the same token share one POST', async () => {
    // The token endpoint answers only when the test says: the first POST is surely in flight
    // when the second call asks. No cache (noCache): the second call cannot be served from a
    // file the first one wrote, and has no file to read before it reaches the in-flight check,
    // which it does in the same tick as the first call.
    let answer!: () => void;
    const gate = new Promise<void>((r) => (answer = r));
    let posted!: () => void;
    const inFlight = new Promise<void>((r) => (posted = r));
    let n = 0;
    const { provider, http } = await setup(async () => {
      posted();
      await gate;
      return okToken(++n);
    });
    const a = provider.getToken({ noCache: true });
    const b = provider.getToken({ noCache: true });
    await inFlight;
    answer();
    const [ta, tb] = await Promise.all([a, b]);
    expect(ta.accessToken).toBe('tok-1');
    expect(tb.accessToken).toBe('tok-1');
    expect(http.calls).toHaveLength(1);
  });
});

describe('TokenProvider: the cache', () => {
  test('reused until 60 s before expiry; the file is mode 0600', async () => {
    let n = 0;
    const { provider, http, settings, setNow } = await setup(() => okToken(++n));
    expect((await provider.getToken()).accessToken).toBe('tok-1');
    const dir = join(settings.paths.cacheDir, 'tokens');
    const [file] = readdirSync(dir);
    expect(statSync(join(dir, file!)).mode & 0o777).toBe(0o600);

    setNow(T0 + 300_000 - CACHE_MARGIN_MS - 1000);
    const cached = await provider.getToken();
    expect(cached).toMatchObject({ accessToken: 'tok-1', fromCache: true });
    expect(http.calls).toHaveLength(1);

    setNow(T0 + 300_000 - CACHE_MARGIN_MS + 1000);
    expect((await provider.getToken()).accessToken).toBe('tok-2');
    expect(http.calls).toHaveLength(2);
  });

  test('a new provider (a new run) reads the same cache file', async () => {
    const { provider, settings } = await setup(() => okToken(1));
    await provider.getToken();
    const http2 = fakeHttp(() => okToken(99));
    const p2 = new TokenProvider({ settings, http: async () => http2, now: () => T0 + 1000 });
    expect((await p2.getToken()).accessToken).toBe('tok-1');
    expect(http2.calls).toHaveLength(0);
  });

  test('keyed by scope', async () => {
    let n = 0;
    const { provider, http } = await setup(() => okToken(++n));
    await provider.getToken({ scope: 'system/Patient.read' });
    await provider.getToken({ scope: 'system/Observation.read' });
    await provider.getToken({ scope: 'system/Patient.read' });
    expect(http.calls).toHaveLength(2);
  });

  test('noCache neither reads nor writes; forceNew skips the read but stores', async () => {
    let n = 0;
    const { provider, http, settings } = await setup(() => okToken(++n));
    await provider.getToken({ noCache: true });
    expect(() => readdirSync(join(settings.paths.cacheDir, 'tokens'))).toThrow();
    await provider.getToken();
    await provider.getToken({ forceNew: true });
    expect(http.calls).toHaveLength(3);
    expect((await provider.getToken()).accessToken).toBe('tok-3');
    await provider.getToken({ noCache: true });
    expect(http.calls).toHaveLength(4);
  });

  test('invalidate drops the cached token', async () => {
    let n = 0;
    const { provider, http } = await setup(() => okToken(++n));
    const t = await provider.getToken();
    await provider.invalidate(t);
    expect((await provider.getToken()).accessToken).toBe('tok-2');
    expect(http.calls).toHaveLength(2);
  });

  test('expires_in as a string ("300") is read as seconds', async () => {
    const { provider, http } = await setup(() => okToken(1, { expires_in: '300' }));
    expect((await provider.getToken()).expiresAt).toBe(T0 + 300_000);
    await provider.getToken();
    expect(http.calls).toHaveLength(1);
  });

  test('keyed by token URL, client id and kid as well as scope', async () => {
    let n = 0;
    const { provider, settings } = await setup(() => okToken(++n));
    await provider.getToken();
    const other = async (over: Partial<Settings>) => {
      const http = fakeHttp(() => okToken(100));
      const p = new TokenProvider({
        settings: { ...settings, ...over },
        http: async () => http,
        now: () => T0 + 1000,
      });
      return (await p.getToken()).accessToken;
    };
    expect(await other({})).toBe('tok-1');
    expect(await other({ tokenUrl: 'https://elsewhere.example.org/token' })).toBe('tok-100');
    expect(await other({ clientId: 'c2' })).toBe('tok-100');
    expect(await other({ key: (await newKeyFile()).file })).toBe('tok-100');
  });

  test('no expires_in: the JWT exp is used; neither: the token is not cached', async () => {
    const exp = T0 / 1000 + 200;
    const jwt = `e30.${Buffer.from(JSON.stringify({ exp })).toString('base64url')}.x`;
    expect(jwtExpiry(jwt)).toBe(exp * 1000);
    expect(jwtExpiry('opaque')).toBeUndefined();
    const a = await setup(() => ({ body: { access_token: jwt, token_type: 'bearer' } }));
    expect((await a.provider.getToken()).expiresAt).toBe(exp * 1000);
    await a.provider.getToken();
    expect(a.http.calls).toHaveLength(1);

    const b = await setup(() => ({ body: { access_token: 'opaque', token_type: 'BEARER' } }));
    expect((await b.provider.getToken()).expiresAt).toBeUndefined();
    await b.provider.getToken();
    expect(b.http.calls).toHaveLength(2);
  });
});

describe('TokenProvider: errors', () => {
  const fail = async (answer: ReturnType<FakeHandler>, over: Partial<Settings> = {}) => {
    const { provider, kid } = await setup(() => answer, over);
    try {
      await provider.getToken();
    } catch (e) {
      return { e: e as SmartError, kid };
    }
    throw new Error('expected an error');
  };

  test('invalid_client: exit 3, the description, and a hint with the jwks_uri, kid and client', async () => {
    const { e, kid } = await fail(
      { status: 401, body: { error: 'invalid_client', error_description: 'no key with kid x' } },
      { jwksUri: 'https://keys.example.org/jwks.json' },
    );
    expect(e.kind).toBe('auth');
    expect(e.exitCode).toBe(3);
    expect(e.message).toBe(
      `token request rejected by ${TOKEN_URL}: invalid_client: no key with kid x`,
    );
    expect(e.hint).toContain(`does https://keys.example.org/jwks.json serve kid ${kid}`);
    expect(e.hint).toContain('client id "c1"');
    expect(e.hint).toContain('clock');
  });

  test('invalid_scope: the scopes requested', async () => {
    const { e } = await fail(
      { status: 400, body: { error: 'invalid_scope' } },
      { scope: 'system/*.write' },
    );
    expect(e.code).toBe('invalid_scope');
    expect(e.hint).toContain('requested "system/*.write"');
  });

  test('an alg complaint: the hint names the key alg', async () => {
    const { e } = await fail({
      status: 400,
      body: { error: 'invalid_client', error_description: 'unsupported alg RS512' },
    });
    expect(e.hint).toContain('the key signs with RS384');
  });

  test('unauthorized_client', async () => {
    const { e } = await fail({ status: 400, body: { error: 'unauthorized_client' } });
    expect(e.hint).toContain('grant_types [client_credentials]');
  });

  test('an HTML error page: exit 1, names the content type', async () => {
    const { e } = await fail({
      status: 502,
      body: '<html>Bad gateway</html>',
      contentType: 'text/html',
    });
    expect(e.exitCode).toBe(1);
    expect(e.message).toBe(
      `token request to ${TOKEN_URL} failed with HTTP 502: text/html: <html>Bad gateway</html>`,
    );
  });

  test('a 200 that is not JSON, has no access_token, or a token_type other than bearer', async () => {
    expect((await fail({ body: 'hello', contentType: 'text/plain' })).e.message).toContain(
      'but got text/plain (HTTP 200)',
    );
    expect((await fail({ body: { token_type: 'bearer' } })).e.message).toContain(
      'has no access_token',
    );
    expect((await fail({ body: { access_token: 'x', token_type: 'mac' } })).e.message).toContain(
      'token_type "mac"',
    );
  });

  test('no client id / no key: usage errors naming the flag and the variable', async () => {
    const a = await fail(okToken(1), { clientId: undefined });
    expect(a.e.exitCode).toBe(2);
    expect(a.e.hint).toContain('--client-id');
    expect(a.e.hint).toContain('SMART_CLIENT_ID');
    const b = await fail(okToken(1), { key: undefined });
    expect(b.e.hint).toContain('--key');
    expect(b.e.hint).toContain('SMART_KEY');
  });

  test('no token URL and no FHIR base: a usage error', async () => {
    const { e } = await fail(okToken(1), { tokenUrl: undefined });
    expect(e.exitCode).toBe(2);
    expect(e.hint).toContain('--base-url');
  });

  test("the server's description is one line and never carries a JWT (a server may echo the assertion)", async () => {
    const echoed = 'eyJhbGciOiJSUzM4NCJ9.eyJpc3MiOiJjMSJ9.c2lnbmF0dXJl';
    const { e } = await fail({
      status: 400,
      body: { error: 'invalid_client', error_description: `bad assertion\n  ${echoed}\n` },
    });
    expect(e.message).toBe(
      `token request rejected by ${TOKEN_URL}: invalid_client: bad assertion [redacted JWT]`,
    );
    expect(e.message).not.toContain('\n');
  });

  test('unsupported_grant_type: the hint points at the token endpoint and grant_types_supported', async () => {
    const { e } = await fail({ status: 400, body: { error: 'unsupported_grant_type' } });
    expect(e.exitCode).toBe(3);
    expect(e.hint).toContain(
      `the server does not offer the client_credentials grant at ${TOKEN_URL}`,
    );
  });

  test('invalid_scope: requested vs the scope saved in the profile by register-client', async () => {
    const { provider, settings } = await setup(
      () => ({ status: 400, body: { error: 'invalid_scope' } }),
      { profileExists: true, scope: 'system/*.write' },
    );
    mkdirSync(settings.paths.configDir, { recursive: true });
    writeFileSync(
      settings.paths.configFile,
      JSON.stringify({ profiles: { default: { scope: 'system/Patient.read' } } }),
    );
    const e = (await provider.getToken().catch((x: unknown) => x)) as SmartError;
    expect(e.hint).toContain('requested "system/*.write"');
    expect(e.hint).toContain('registered (saved in profile "default"): "system/Patient.read"');
    // The same scope as registered: the server's registration is what differs.
    const same = await provider.getToken({ scope: 'system/Patient.read' }).catch((x: unknown) => x);
    expect((same as SmartError).hint).toContain(
      'that is the registered scope saved in profile "default", so the server\'s Client.scope differs',
    );
  });

  test('invalid_scope: a non-system scope is named; the advertised scopes when discovery knows them', async () => {
    const FHIR = 'https://fhir.example.org/fhir';
    const { provider } = await setup(
      (c) =>
        c.method === 'GET'
          ? {
              body: {
                token_endpoint: 'https://fhir.example.org/auth/token',
                scopes_supported: ['system/*.read', 'system/Patient.read'],
              },
            }
          : { status: 400, body: { error: 'invalid_scope' } },
      { tokenUrl: undefined, fhirUrl: FHIR, scope: 'patient/*.read' },
    );
    const e = (await provider.getToken().catch((x: unknown) => x)) as SmartError;
    expect(e.hint).toContain('backend services take system/ scopes only, not patient/*.read');
    expect(e.hint).toContain('the server advertises system/*.read system/Patient.read');
  });

  test('an alg complaint with --token-url: the advertised algs come from the discovery cache, without a request', async () => {
    const FHIR = 'https://fhir.example.org/fhir';
    const { provider, http, settings } = await setup(
      () => ({
        status: 400,
        body: { error: 'invalid_client', error_description: "assertion alg 'RS384' not allowed" },
      }),
      { fhirUrl: FHIR },
    );
    await saveDiscovery(
      settings.paths.cacheDir,
      FHIR,
      {
        source: `${FHIR}/.well-known/smart-configuration`,
        tried: [],
        config: {
          token_endpoint: 'https://other.example.org/token',
          token_endpoint_auth_signing_alg_values_supported: ['ES384'],
        },
      },
      T0,
    );
    const e = (await provider.getToken().catch((x: unknown) => x)) as SmartError;
    expect(e.hint).toBe(
      'the key signs with RS384; the server advertises ES384: make a key with `smart keygen --alg ES384`',
    );
    expect(http.calls.map((c) => c.method)).toEqual(['POST']);
  });

  test('the error never carries the assertion', async () => {
    const { e } = await fail({ status: 400, body: { error: 'invalid_request' } });
    expect(JSON.stringify({ m: e.message, h: e.hint, d: e.details })).not.toMatch(/eyJ/);
  });
});

describe('TokenProvider: the key a cached token belongs to', () => {
  /** A provider on `settings`, at T0 + 1 s, whose server answers tok-<tag>. */
  const again = (settings: Settings, tag: string) => {
    const http = fakeHttp(() => okToken(0, { access_token: `tok-${tag}` }));
    return {
      http,
      provider: new TokenProvider({ settings, http: async () => http, now: () => T0 + 1000 }),
    };
  };

  test("found by the key file's bytes, without parsing the key: a change to the key file, its jwks.json or --alg is a fresh token", async () => {
    const g = await generateSigningKey('ES256');
    const dir = tempDir('token-test-');
    const file = join(dir, 'key.pem');
    writeFileSync(file, g.privateKeyPem, { mode: 0o600 });
    const { provider, settings } = await setup(() => okToken(1), { key: file });
    expect(await provider.getToken()).toMatchObject({ accessToken: 'tok-1', kid: g.kid });
    // The same files: the cached token, with the kid it was issued for.
    expect(await again(settings, 'x').provider.getToken()).toMatchObject({
      accessToken: 'tok-1',
      kid: g.kid,
      fromCache: true,
    });
    // A jwks.json beside the key gives it another kid: a token for that kid.
    writeFileSync(
      join(dir, 'jwks.json'),
      JSON.stringify({ keys: [{ ...g.publicJwk, kid: 'k2' }] }),
    );
    expect(await again(settings, 'jwks').provider.getToken()).toMatchObject({
      accessToken: 'tok-jwks',
      kid: 'k2',
      fromCache: false,
    });
    // The alg asked for.
    expect(
      (await again({ ...settings, alg: 'ES256' }, 'alg').provider.getToken()).accessToken,
    ).toBe('tok-alg');
    // Another key in the same file (not the jwks.json's: its own thumbprint as kid).
    const other = await generateSigningKey('ES256');
    writeFileSync(file, other.privateKeyPem, { mode: 0o600 });
    const fresh = again(settings, 'rekeyed');
    expect(await fresh.provider.getToken()).toMatchObject({
      accessToken: 'tok-rekeyed',
      kid: other.kid,
    });
    expect(fresh.http.calls).toHaveLength(1);
    // The key file broken after a token was cached for it: the key's error, not the token.
    writeFileSync(file, '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n');
    const broken = again(settings, 'broken');
    await expect(broken.provider.getToken()).rejects.toMatchObject({ code: 'bad_key' });
    expect(broken.http.calls).toHaveLength(0);
  });

  test('a bad key is reported before any request, discovery included', async () => {
    const file = join(tempDir('token-test-'), 'key.pem');
    writeFileSync(file, 'not a key');
    const { provider, http } = await setup(() => okToken(1), {
      key: file,
      tokenUrl: undefined,
      fhirUrl: 'https://fhir.example.org/fhir',
    });
    await expect(provider.getToken()).rejects.toMatchObject({ kind: 'usage', code: 'bad_key' });
    expect(http.calls).toHaveLength(0);
  });

  test('discovery no longer cached, the token still good: discovery is fetched, the token is not', async () => {
    const FHIR = 'https://fhir.example.org/fhir';
    const endpoint = { token_endpoint: 'https://fhir.example.org/auth/token' };
    const { provider, settings } = await setup(
      (c) => (c.method === 'GET' ? { body: endpoint } : okToken(1)),
      { tokenUrl: undefined, fhirUrl: FHIR },
    );
    await provider.getToken();
    // The discovery cache gone (it keeps an hour; a token may be good for longer).
    rmSync(join(settings.paths.cacheDir, 'discovery'), { recursive: true });
    const http = fakeHttp((c) => (c.method === 'GET' ? { body: endpoint } : okToken(2)));
    const p2 = new TokenProvider({ settings, http: async () => http, now: () => T0 + 1000 });
    expect(await p2.getToken()).toMatchObject({ accessToken: 'tok-1', fromCache: true });
    expect(http.calls.map((c) => c.method)).toEqual(['GET']);
  });
});

describe('TokenProvider: discovery', () => {
  const FHIR = 'https://fhir.example.org/fhir';
  const config = (algs: string[]) => ({
    token_endpoint: 'https://fhir.example.org/auth/token',
    token_endpoint_auth_signing_alg_values_supported: algs,
  });

  test('the token URL is discovered once and cached per FHIR base', async () => {
    const { provider, http, settings } = await setup(
      (c) => (c.method === 'GET' ? { body: config(['RS384']) } : okToken(1)),
      { tokenUrl: undefined, fhirUrl: FHIR },
    );
    const t = await provider.getToken();
    expect(t.tokenUrl).toBe('https://fhir.example.org/auth/token');
    expect(http.calls.map((c) => `${c.method} ${c.url}`)).toEqual([
      `GET ${FHIR}/.well-known/smart-configuration`,
      'POST https://fhir.example.org/auth/token',
    ]);
    expect(provider.advertisedAlgs).toEqual(['RS384']);
    const http2 = fakeHttp(() => ({ status: 500 }));
    const p2 = new TokenProvider({ settings, http: async () => http2, now: () => T0 + 5000 });
    expect(await p2.tokenUrl()).toBe('https://fhir.example.org/auth/token');
    expect(http2.calls).toHaveLength(0);
  });

  test('a key alg the server does not advertise is refused before any POST', async () => {
    const { provider, http } = await setup(
      (c) => (c.method === 'GET' ? { body: config(['ES384']) } : okToken(1)),
      {
        tokenUrl: undefined,
        fhirUrl: FHIR,
      },
    );
    await expect(provider.getToken()).rejects.toMatchObject({
      kind: 'usage',
      code: 'unsupported_alg',
      message:
        'the key signs with RS384, but https://fhir.example.org/auth/token accepts only ES384',
    });
    expect(http.calls.filter((c) => c.method === 'POST')).toHaveLength(0);
  });
});

test('the alg follows the key: ES384 for a P-384 key', async () => {
  const k = await keyFile('ES384');
  const { provider } = await setup(() => okToken(1), { key: k.file });
  expect(await provider.signingKey()).toMatchObject({ alg: 'ES384', kid: k.kid });
});

test("the kid of the cache key (thumbprint, without jose) equals jose's RFC 7638 thumbprint", async () => {
  const { calculateJwkThumbprint } = await import('jose');
  const { thumbprint } = await import('../../../../src/core/auth/keys.js');
  for (const alg of ['RS384', 'ES384', 'ES256', 'ES512'] as const) {
    const g = await generateSigningKey(alg);
    expect(await thumbprint(g.publicJwk)).toBe(
      await calculateJwkThumbprint(g.publicJwk as never, 'sha256'),
    );
    expect(g.kid).toBe(await calculateJwkThumbprint(g.publicJwk as never, 'sha256'));
  }
  await expect(thumbprint({ kty: 'RSA', n: 'x' })).rejects.toThrow('has no "e" member');
});
