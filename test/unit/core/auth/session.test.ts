import { describe, expect, test } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateSigningKey } from '../../../../src/core/auth/keys.js';
import { FhirSession, fhirError, resolveFhirUrl } from '../../../../src/core/auth/session.js';
import {
  fakeHttp,
  testSettings,
  type FakeCall,
  type FakeHandler,
} from '../../../helpers/fake-http.js';
import { tempDir } from '../../../helpers/tmp.js';

const FHIR = 'https://fhir.example.org/fhir';
const TOKEN_URL = 'https://fhir.example.org/auth/token';

describe('resolveFhirUrl', () => {
  test('paths are relative to the FHIR base, with or without a slash', () => {
    expect(resolveFhirUrl(FHIR, 'Patient?_count=1')).toBe(`${FHIR}/Patient?_count=1`);
    expect(resolveFhirUrl(`${FHIR}/`, '/Patient/1')).toBe(`${FHIR}/Patient/1`);
  });

  test('an absolute URL on the same origin is fine; another origin never gets the token', () => {
    expect(resolveFhirUrl(FHIR, 'https://fhir.example.org/fhir/Patient?page=2')).toBe(
      'https://fhir.example.org/fhir/Patient?page=2',
    );
    expect(() => resolveFhirUrl(FHIR, 'https://evil.example.com/fhir/Patient')).toThrow(
      'refusing to send the access token to https://evil.example.com',
    );
  });
});

async function session(
  fhir: (call: FakeCall, token: string) => ReturnType<FakeHandler>,
  now: () => number = () => Date.now(),
) {
  const g = await generateSigningKey('RS384');
  const dir = tempDir('session-');
  writeFileSync(join(dir, 'key.pem'), g.privateKeyPem);
  let issued = 0;
  const http = fakeHttp((call) => {
    if (call.url === TOKEN_URL) {
      issued++;
      return {
        body: {
          access_token: `token-${issued}`,
          token_type: 'Bearer',
          expires_in: 300,
          scope: 'system/Patient.read',
        },
      };
    }
    return fhir(call, (call.headers.authorization ?? '').replace(/^Bearer /, ''));
  });
  const settings = testSettings({
    clientId: 'c',
    key: join(dir, 'key.pem'),
    tokenUrl: TOKEN_URL,
    fhirUrl: FHIR,
  });
  const logs: string[] = [];
  const s = new FhirSession({
    settings,
    http: async () => http,
    now,
    log: (m) => logs.push(m),
  });
  return { s, http, logs, settings };
}

describe('FhirSession', () => {
  test('renews the token 60 s before it expires, as the token cache does', async () => {
    let clock = Date.now();
    const { s, http } = await session(
      () => ({ body: { resourceType: 'Bundle' } }),
      () => clock,
    );
    await s.request('Patient');
    clock += 235_000; // 65 s left of 300: still good
    await s.request('Patient');
    clock += 10_000; // 55 s left: renewed, not sent with under a minute to live
    await s.request('Patient');
    const sent = http.calls.filter((c) => c.url.startsWith(`${FHIR}/`));
    expect(sent.map((c) => c.headers.authorization)).toEqual([
      'Bearer token-1',
      'Bearer token-1',
      'Bearer token-2',
    ]);
  });

  test('sends the Bearer token and Accept fhir+json; reuses the token', async () => {
    const { s, http } = await session(() => ({ body: { resourceType: 'Bundle' } }));
    await s.request('Patient');
    await s.request('Observation');
    const fhirCalls = http.calls.filter((c) => c.url.startsWith(`${FHIR}/`));
    expect(fhirCalls.map((c) => c.headers.authorization)).toEqual([
      'Bearer token-1',
      'Bearer token-1',
    ]);
    expect(fhirCalls[0]!.headers.accept).toBe('application/fhir+json');
    expect(http.calls.filter((c) => c.url === TOKEN_URL)).toHaveLength(1);
  });

  test('a 401 drops the token (cache included), gets a new one and retries once', async () => {
    const { s, http, logs, settings } = await session((_c, token) =>
      token === 'token-1'
        ? { status: 401, body: { resourceType: 'OperationOutcome', issue: [] } }
        : { body: { ok: true } },
    );
    const res = await s.request('Patient');
    expect(res.status).toBe(200);
    expect(
      http.calls.map((c) => `${c.method} ${c.url.replace('https://fhir.example.org', '')}`),
    ).toEqual(['POST /auth/token', 'GET /fhir/Patient', 'POST /auth/token', 'GET /fhir/Patient']);
    expect(logs.join('\n')).toContain('answered 401');
    // The rejected token is not in the cache any more: a new run gets token-2 from it.
    const again = new FhirSession({ settings, http: async () => http, now: () => Date.now() });
    expect((await again.token()).accessToken).toBe('token-2');
  });

  test('only once: a second 401 is returned to the caller', async () => {
    const { s, http } = await session(() => ({ status: 401, body: 'no' }));
    const res = await s.request('Patient');
    expect(res.status).toBe(401);
    expect(http.calls.filter((c) => c.url === TOKEN_URL)).toHaveLength(2);
    const e = s.error(res);
    expect(e.exitCode).toBe(3);
    expect(e.message).toContain('answered 401 even with a new token');
  });

  test('a foreign absolute URL is refused before any request', async () => {
    const { s, http } = await session(() => ({ body: {} }));
    await expect(s.request('https://elsewhere.example.com/fhir/Patient')).rejects.toMatchObject({
      code: 'foreign_origin',
    });
    expect(http.calls).toHaveLength(0);
  });
});

describe('fhirError', () => {
  const res = (status: number, body: unknown) => {
    const text = JSON.stringify(body);
    return {
      status,
      ok: false,
      url: `${FHIR}/Patient`,
      headers: new Headers(),
      contentType: 'application/fhir+json',
      text,
      json: <T>() => body as T,
    };
  };
  const oo = (code: string, diagnostics: string) => ({
    resourceType: 'OperationOutcome',
    issue: [{ severity: 'error', code, diagnostics }],
  });

  test('403 names the token scopes: exit 3', () => {
    const e = fhirError(res(403, oo('forbidden', 'denied')), 'GET', 'system/Observation.read');
    expect(e.exitCode).toBe(3);
    expect(e.message).toBe(
      `access denied: GET ${FHIR}/Patient answered 403: error forbidden: denied`,
    );
    expect(e.hint).toContain('"system/Observation.read"');
  });

  test('404 and other statuses: exit 1 with the OperationOutcome', () => {
    expect(fhirError(res(404, oo('not-found', 'gone')), 'GET').message).toBe(
      `not found: GET ${FHIR}/Patient answered 404: error not-found: gone`,
    );
    const e = fhirError(res(500, oo('exception', 'boom')), 'GET');
    expect(e.exitCode).toBe(1);
    expect(e.kind).toBe('fhir');
  });
});
