import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt } from 'jose';
import { type SandboxHandle, parseQuirks, startSandbox } from '../../../src/sandbox/index.js';
import {
  type TestKey,
  getToken,
  makeKey,
  register,
  requestToken,
  serveJwks,
  signAssertion,
  tokenForm,
} from './helpers.js';

let plain: SandboxHandle;
let quirky: SandboxHandle;
let key: TestKey;
let jwks: Awaited<ReturnType<typeof serveJwks>>;

beforeAll(async () => {
  key = await makeKey('RS384');
  jwks = await serveJwks([key.publicJwk]);
  plain = await startSandbox({ port: 0 });
  quirky = await startSandbox({
    port: 0,
    quirks: [
      'no-grant-types',
      'no-signing-algs,lowercase-bearer',
      'kickoff-429',
      'invalid-grant',
      'error-counts',
      'reference-registration',
    ],
    exportDelayMs: 0,
  });
  for (const sb of [plain, quirky]) await register(sb, 'app', jwks.url);
});
afterAll(async () => {
  await Promise.all([plain?.close(), quirky?.close(), jwks?.close()]);
});

const discovery = async (sb: SandboxHandle) =>
  (await (await fetch(`${sb.fhirUrl}/.well-known/smart-configuration`)).json()) as Record<
    string,
    unknown
  >;

describe('sandbox quirks', () => {
  it('parseQuirks: comma lists, repeated flags; an unknown name lists the known ones', async () => {
    expect(parseQuirks(['kickoff-429', 'no-grant-types,kickoff-429'])).toEqual([
      'kickoff-429',
      'no-grant-types',
    ]);
    expect(() => parseQuirks('nope')).toThrow(/unknown quirk 'nope' \(known: no-grant-types, /);
    await expect(() => startSandbox({ port: 0, quirks: ['nope'] })).rejects.toThrow(
      /unknown quirk/,
    );
  });

  it('no-grant-types, no-signing-algs: discovery leaves the fields out; none by default', async () => {
    const d = await discovery(quirky);
    expect(d).not.toHaveProperty('grant_types_supported');
    expect(d).not.toHaveProperty('token_endpoint_auth_signing_alg_values_supported');
    expect(d.token_endpoint).toBe(quirky.tokenUrl);
    const p = await discovery(plain);
    expect(p.grant_types_supported).toEqual(['client_credentials']);
    expect(p.token_endpoint_auth_signing_alg_values_supported).toEqual(['RS384']);
  });

  it('lowercase-bearer: token_type "bearer"', async () => {
    const q = await requestToken(
      quirky,
      tokenForm(await signAssertion({ key, clientId: 'app', aud: quirky.tokenUrl })),
    );
    expect(q.body.token_type).toBe('bearer');
    const p = await requestToken(
      plain,
      tokenForm(await signAssertion({ key, clientId: 'app', aud: plain.tokenUrl })),
    );
    expect(p.body.token_type).toBe('Bearer');
  });

  it('invalid-grant: an unknown kid gets invalid_grant, not invalid_client', async () => {
    const q = await requestToken(
      quirky,
      tokenForm(await signAssertion({ key, clientId: 'app', aud: quirky.tokenUrl, kid: 'nokid' })),
    );
    expect(q).toEqual({
      status: 400,
      body: {
        error: 'invalid_grant',
        error_description: 'No public keys found in the JWKS with kid "nokid"',
      },
    });
    const p = await requestToken(
      plain,
      tokenForm(await signAssertion({ key, clientId: 'app', aud: plain.tokenUrl, kid: 'nokid' })),
    );
    expect(p.body.error).toBe('invalid_client');
  });

  it('kickoff-429: two refusals with an epoch Retry-After (seconds, then ms), then 202', async () => {
    const token = await getToken(quirky, key, 'app');
    const kick = () =>
      fetch(`${quirky.fhirUrl}/$export?_type=Patient`, {
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/fhir+json',
          prefer: 'respond-async',
        },
      });
    const first = await kick();
    expect(first.status).toBe(429);
    const s = Number(first.headers.get('retry-after'));
    expect(s).toBeGreaterThan(1e9);
    expect(s).toBeLessThan(1e10);
    expect(Math.abs(s * 1000 - Date.now())).toBeLessThan(5000);
    expect(JSON.stringify(await first.json())).toContain('Too many requests');
    const second = await kick();
    expect(second.status).toBe(429);
    const ms = Number(second.headers.get('retry-after'));
    expect(ms).toBeGreaterThan(1e12);
    expect(Math.abs(ms - Date.now())).toBeLessThan(5000);
    const third = await kick();
    expect(third.status).toBe(202);

    // error-counts: the manifest's error[] count is the output's, not the file's one line.
    const status = third.headers.get('content-location')!;
    let manifest: {
      output: Array<{ count: number }>;
      error: Array<{ url: string; count: number }>;
    };
    for (;;) {
      const r = await fetch(status, { headers: { authorization: `Bearer ${token}` } });
      if (r.status === 200) {
        manifest = (await r.json()) as typeof manifest;
        break;
      }
      await r.arrayBuffer();
    }
    const outputs = manifest.output.reduce((n, f) => n + f.count, 0);
    expect(outputs).toBeGreaterThan(1);
    expect(manifest.error).toHaveLength(1);
    expect(manifest.error[0]!.count).toBe(outputs);
    const file = await fetch(manifest.error[0]!.url, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect((await file.text()).trim().split('\n')).toHaveLength(1);
  });

  it('reference-registration: POST /auth/register answers a JWT client id that gets tokens', async () => {
    const form = (body: Record<string, string>) =>
      fetch(`${quirky.url}/auth/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(body),
      });
    const byUrl = await form({ jwks_url: jwks.url });
    expect(byUrl.status).toBe(200);
    expect(byUrl.headers.get('content-type')).toMatch(/^text\/plain/);
    const id = await byUrl.text();
    expect(decodeJwt(id)).toMatchObject({ jwks_url: jwks.url });
    expect(await getToken(quirky, key, id)).toMatch(/^eyJ/);

    const inline = await form({ jwks: JSON.stringify({ keys: [key.publicJwk] }) });
    const longId = await inline.text();
    expect(longId.length).toBeGreaterThan(400);
    expect(await getToken(quirky, key, longId)).toMatch(/^eyJ/);

    expect((await form({})).status).toBe(400);
    expect((await form({ jwks: '{' })).status).toBe(400);
    const absent = await fetch(`${plain.url}/auth/register`, { method: 'POST' });
    expect(absent.status).toBe(404);
  });
});
