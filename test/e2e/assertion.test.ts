import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { json, makeWorkspace, runSmart } from '../helpers/cli.js';
import { startFlow, type Flow } from '../helpers/sandbox.js';
import { fixedServer } from '../helpers/servers.js';

let flow: Flow;

beforeAll(async () => {
  // ES384 as well as Aidbox's RS384: the ES384 tests sign against it.
  flow = await startFlow({ clientId: 'assert-client', sandbox: { algs: ['RS384', 'ES384'] } });
});
afterAll(async () => {
  await flow?.close();
});

function jwksOf(keyFile: string) {
  return JSON.parse(readFileSync(join(dirname(keyFile), 'jwks.json'), 'utf8'));
}

describe('smart assertion', () => {
  test('prints a JWT alone: header alg/kid/typ, iss = sub, aud = the discovered token URL, 240 s, fresh jti', async () => {
    const a = await runSmart(['assertion'], { env: flow.env });
    expect(a.stderr).toBe('');
    expect(a.exitCode).toBe(0);
    expect(a.stdout).toMatch(/^eyJ[\w-]+\.[\w-]+\.[\w-]+\n$/);
    const jwt = a.stdout.trim();
    expect(decodeProtectedHeader(jwt)).toEqual({ alg: 'RS384', kid: flow.key.kid, typ: 'JWT' });
    const { payload } = await jwtVerify(jwt, createLocalJWKSet(jwksOf(flow.key.keyFile)), {
      audience: flow.sandbox.tokenUrl,
      issuer: 'assert-client',
      subject: 'assert-client',
    });
    expect(payload.exp! - payload.iat!).toBe(240);
    expect(Math.abs(payload.iat! - Date.now() / 1000)).toBeLessThan(10);
    expect(typeof payload.jti).toBe('string');
    const b = await runSmart(['assertion'], { env: flow.env });
    expect(decodeJwt(b.stdout.trim()).jti).not.toBe(payload.jti);
  });

  test('the printed assertion works with a plain form POST (the curl use)', async () => {
    const a = await runSmart(['assertion'], { env: flow.env });
    const res = await fetch(flow.sandbox.tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        scope: 'system/*.read',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: a.stdout.trim(),
      }),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { token_type: string }).token_type).toBe('Bearer');
  });

  test('-o json: {assertion, header, claims}', async () => {
    const r = await runSmart(['assertion', '-o', 'json'], { env: flow.env });
    expect(r.exitCode).toBe(0);
    const body = json<{
      assertion: string;
      header: Record<string, unknown>;
      claims: Record<string, unknown>;
    }>(r);
    expect(Object.keys(body).sort()).toEqual(['assertion', 'claims', 'header']);
    expect(body.header).toEqual(decodeProtectedHeader(body.assertion));
    expect(body.claims).toEqual(decodeJwt(body.assertion));
    expect(body.claims.aud).toBe(flow.sandbox.tokenUrl);
  });

  test('--aud, --lifetime and --jku', async () => {
    const r = await runSmart(
      [
        'assertion',
        '--aud',
        'https://other.example.org/token',
        '--lifetime',
        '60',
        '--jku',
        flow.jwksUrl,
        '-o',
        'json',
      ],
      { env: flow.env },
    );
    expect(r.exitCode).toBe(0);
    const { header, claims } = json<{
      header: Record<string, unknown>;
      claims: Record<string, number | string>;
    }>(r);
    expect(claims.aud).toBe('https://other.example.org/token');
    expect((claims.exp as number) - (claims.iat as number)).toBe(60);
    expect(header.jku).toBe(flow.jwksUrl);
  });

  test('--aud skips discovery entirely', async () => {
    const before = flow.sandbox.requests.length;
    const r = await runSmart(['assertion', '--aud', 'https://x.example.org/token'], {
      env: flow.env,
    });
    expect(r.exitCode).toBe(0);
    expect(flow.sandbox.requests.length).toBe(before);
  });

  test('--lifetime over 300: exit 2 before anything else', async () => {
    const r = await runSmart(['assertion', '--lifetime', '301'], { env: {} });
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('error: --lifetime 301 is over 300 seconds');
    expect(r.stderr).toContain(
      'hint: SMART Backend Services rejects client assertions that expire more than 5 minutes ahead',
    );
  });

  test('--lifetime not a number: exit 2', async () => {
    const r = await runSmart(['assertion', '--lifetime', 'soon'], { env: flow.env });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('--lifetime "soon" is not a whole number of seconds');
  });

  test('ES384 keys sign ES384 assertions', async () => {
    const es = await startFlow({
      alg: 'ES384',
      clientId: 'assert-es',
      sandbox: flow.sandbox,
      register: false,
    });
    try {
      const r = await runSmart(['assertion'], { env: es.env });
      expect(r.exitCode).toBe(0);
      const jwt = r.stdout.trim();
      expect(decodeProtectedHeader(jwt).alg).toBe('ES384');
      // JOSE R||S form: 96 bytes for P-384.
      expect(Buffer.from(jwt.split('.')[2]!, 'base64url')).toHaveLength(96);
      await jwtVerify(jwt, createLocalJWKSet(jwksOf(es.key.keyFile)));
    } finally {
      await es.close();
    }
  });

  test('an alg the server does not advertise: exit 2 naming what it takes', async () => {
    const es = await startFlow({
      alg: 'ES384',
      clientId: 'assert-es2',
      sandbox: flow.sandbox,
      register: false,
    });
    const s = await fixedServer((path) =>
      path === '/fhir/.well-known/smart-configuration'
        ? {
            status: 200,
            body: JSON.stringify({
              token_endpoint: 'http://127.0.0.1:1/auth/token',
              token_endpoint_auth_signing_alg_values_supported: ['RS384'],
            }),
          }
        : undefined,
    );
    try {
      const ws = makeWorkspace();
      const r = await runSmart(['assertion'], { ws, env: { ...es.env, SMART_BASE_URL: s.url } });
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toContain(
        'error: the key signs with ES384, but http://127.0.0.1:1/auth/token accepts only RS384',
      );
      expect(r.stderr).toContain('smart keygen --alg RS384');
      // Still known with --aud (or --token-url): from the discovery cache, without a request.
      const hits = s.hits.length;
      for (const flag of ['--aud', '--token-url']) {
        const again = await runSmart(['assertion', flag, 'http://127.0.0.1:1/auth/token'], {
          ws,
          env: { ...es.env, SMART_BASE_URL: s.url },
        });
        expect(again.exitCode).toBe(2);
        expect(again.stderr).toContain('accepts only RS384');
      }
      // Another audience than the cached server's: not known, so not refused.
      const other = await runSmart(['assertion', '--aud', 'https://elsewhere.example.org/token'], {
        ws,
        env: { ...es.env, SMART_BASE_URL: s.url },
      });
      expect(other.exitCode).toBe(0);
      expect(s.hits.length).toBe(hits);
    } finally {
      await s.close();
      await es.close();
    }
  });

  test('missing client id or key: exit 2 naming the flag and the variable', async () => {
    const a = await runSmart(['assertion'], { env: { ...flow.env, SMART_CLIENT_ID: undefined } });
    expect(a.exitCode).toBe(2);
    expect(a.stderr).toContain('--client-id');
    expect(a.stderr).toContain('SMART_CLIENT_ID');
    const b = await runSmart(['assertion'], { env: { ...flow.env, SMART_KEY: undefined } });
    expect(b.exitCode).toBe(2);
    expect(b.stderr).toContain('--key');
    expect(b.stderr).toContain('SMART_KEY');
  });

  test('--verbose does not print the assertion on stderr', async () => {
    const r = await runSmart(['assertion', '--verbose', '--debug'], { env: flow.env });
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toContain('signed with kid');
    expect(r.stderr).not.toContain(r.stdout.trim());
    expect(r.stderr).not.toMatch(/eyJ[\w-]{4,}\.[\w-]{4,}/);
  });
});
