import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { join, dirname } from 'node:path';
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SignJWT } from 'jose';
import { json, runSmart } from '../helpers/cli.js';
import { makeKey, serveJwks, startFlow, type Flow, type FlowKey } from '../helpers/sandbox.js';

interface DecodeJson {
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
  times: Array<{ claim: string; epoch: number; iso: string; relative: string }>;
  assertion: boolean;
  checks: Array<{ rule: string; ok: boolean; detail: string }>;
  verified?: { verified: boolean; source: string; kid?: string; reason?: string };
}

let flow: Flow;
let assertion: string;
let accessToken: string;
let otherKey: FlowKey;

beforeAll(async () => {
  flow = await startFlow({ clientId: 'decode-client' });
  assertion = (await runSmart(['assertion'], { env: flow.env })).stdout.trim();
  accessToken = (await runSmart(['token'], { env: flow.env })).stdout.trim();
  otherKey = await makeKey('RS384');
});
afterAll(async () => {
  await flow?.close();
});

const jwksFile = (k: FlowKey) => join(dirname(k.keyFile), 'jwks.json');

/** Sign arbitrary header and claims with a key, to make rule-breaking assertions. */
async function sign(k: FlowKey, header: Record<string, unknown>, claims: Record<string, unknown>) {
  const key = createPrivateKey(readFileSync(k.keyFile, 'utf8'));
  return new SignJWT(claims).setProtectedHeader({ alg: k.alg, ...header }).sign(key);
}

describe('smart decode', () => {
  test('-o csv is exit 2 naming the formats it can print, never JSON', async () => {
    const r = await runSmart(['decode', assertion, '-o', 'csv']);
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('error: decode cannot print csv: use -o table, json or ndjson\n');
  });

  test('a client assertion: header, claims, ISO times, every SMART rule ok (-o json)', async () => {
    const r = await runSmart(['decode', assertion, '-o', 'json']);
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toBe('');
    const d = json<DecodeJson>(r);
    expect(d.header).toEqual({ alg: 'RS384', kid: flow.key.kid, typ: 'JWT' });
    expect(d.claims.iss).toBe('decode-client');
    expect(d.assertion).toBe(true);
    expect(d.checks.map((c) => c.rule)).toEqual([
      'typ',
      'kid',
      'alg',
      'iss = sub',
      'aud',
      'exp ≤ 5 min',
      'not expired',
      'jti',
    ]);
    expect(d.checks.every((c) => c.ok)).toBe(true);
    const exp = d.times.find((t) => t.claim === 'exp')!;
    expect(exp.iso).toBe(new Date((d.claims.exp as number) * 1000).toISOString());
    // 240 s by default (Aidbox refuses an exp over 5 min of its clock): at most 4m, minus the time since it was signed.
    expect(exp.relative).toMatch(/^expires in ([23]m\d+s|4m)$/);
    expect(d.times.find((t) => t.claim === 'iat')!.relative).toMatch(
      /^issued \d+s ago$|^issued 0s ago$/,
    );
    expect(d.verified).toBeUndefined();
  });

  test('reads the token from stdin with -', async () => {
    const r = await runSmart(['decode', '-', '-o', 'json'], { input: assertion + '\n' });
    expect(r.exitCode).toBe(0);
    expect(json<DecodeJson>(r).claims.sub).toBe('decode-client');
  });

  test('human output (-o table): sections, relative times, ok marks', async () => {
    const r = await runSmart(['decode', assertion, '-o', 'table']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^header:\n/);
    expect(r.stdout).toContain('\nclaims:\n');
    expect(r.stdout).toMatch(/ {2}exp {2}\d{4}-\d\d-\d\dT[\d:.]+Z {2}expires in /);
    expect(r.stdout).toContain('SMART client assertion rules:');
    expect(r.stdout).toContain('  ok  iss = sub: iss and sub are the client id decode-client');
  });

  test('an access token: times, and no assertion checks', async () => {
    const r = await runSmart(['decode', accessToken, '-o', 'json']);
    expect(r.exitCode).toBe(0);
    const d = json<DecodeJson>(r);
    expect(d.assertion).toBe(false);
    expect(d.checks).toEqual([]);
    expect(d.claims.sub).toBe('decode-client');
    expect(d.times.map((t) => t.claim)).toEqual(['iat', 'exp']);
  });

  test('--assertion forces the checks on any JWT: an access token breaks several', async () => {
    const r = await runSmart(['decode', accessToken, '--assertion', '-o', 'json']);
    expect(r.exitCode).toBe(0);
    const failed = json<DecodeJson>(r)
      .checks.filter((c) => !c.ok)
      .map((c) => c.rule);
    expect(failed).toContain('iss = sub');
    expect(failed).toContain('aud');
    expect(r.stderr).toContain('warning: SMART assertion rule "iss = sub"');
  });

  test('each violated rule is listed; exit 0 without --strict, 1 with it', async () => {
    const now = Math.floor(Date.now() / 1000);
    const bad = await sign(
      flow.key,
      { typ: 'at+jwt', kid: undefined },
      {
        iss: 'decode-client',
        sub: 'someone-else',
        aud: 'https://x.example.org/token',
        iat: now,
        exp: now + 3600,
      },
    );
    const r = await runSmart(['decode', bad, '--assertion', '-o', 'json']);
    expect(r.exitCode).toBe(0);
    const d = json<DecodeJson>(r);
    const byRule = Object.fromEntries(d.checks.map((c) => [c.rule, c]));
    expect(byRule.typ!.ok).toBe(false);
    expect(byRule.kid!.ok).toBe(false);
    expect(byRule['iss = sub']!.ok).toBe(false);
    expect(byRule['iss = sub']!.detail).toContain('differ');
    expect(byRule['exp ≤ 5 min']!.ok).toBe(false);
    expect(byRule['exp ≤ 5 min']!.detail).toContain('3600s after iat; at most 300s');
    expect(byRule.jti!.ok).toBe(false);
    expect(byRule.aud!.ok).toBe(true);
    expect(byRule.alg!.ok).toBe(true);
    expect(r.stderr.match(/^warning: SMART assertion rule/gm)).toHaveLength(5);

    const strict = await runSmart(['decode', bad, '--assertion', '--strict']);
    expect(strict.exitCode).toBe(1);
    expect(strict.stderr).toContain(
      'error: 5 SMART client assertion rules violated: typ, kid, iss = sub, exp ≤ 5 min, jti',
    );
  });

  test('a broken assertion is recognised without --assertion: no typ, no jti, iss != sub', async () => {
    const now = Math.floor(Date.now() / 1000);
    const bad = await sign(
      flow.key,
      { kid: flow.key.kid },
      { iss: 'decode-client', sub: 'other', aud: flow.sandbox.tokenUrl, iat: now, exp: now + 60 },
    );
    const r = await runSmart(['decode', bad, '-o', 'json']);
    expect(r.exitCode).toBe(0);
    const d = json<DecodeJson>(r);
    expect(d.assertion).toBe(true);
    expect(d.checks.filter((c) => !c.ok).map((c) => c.rule)).toEqual(['typ', 'iss = sub', 'jti']);
    expect(r.stderr).toContain('warning: SMART assertion rule "typ": header typ must be "JWT"');
    expect(r.stderr).toContain('warning: SMART assertion rule "jti": jti is missing');
  });

  test('an expired assertion: "expired ... ago"', async () => {
    const now = Math.floor(Date.now() / 1000);
    const old = await sign(
      flow.key,
      { typ: 'JWT', kid: flow.key.kid },
      {
        iss: 'c',
        sub: 'c',
        aud: 'https://x.example.org/token',
        jti: 'j',
        iat: now - 500,
        exp: now - 200,
      },
    );
    const r = await runSmart(['decode', old, '-o', 'json']);
    const d = json<DecodeJson>(r);
    expect(d.assertion).toBe(true);
    expect(d.times.find((t) => t.claim === 'exp')!.relative).toMatch(/^expired 3m(19|2\d)s ago$/);
    expect(d.checks.find((c) => c.rule === 'not expired')!.ok).toBe(false);
  });

  test('--aud checks the audience', async () => {
    const r = await runSmart([
      'decode',
      assertion,
      '--aud',
      'https://elsewhere.example.org/token',
      '-o',
      'json',
    ]);
    const aud = json<DecodeJson>(r).checks.find((c) => c.rule === 'aud')!;
    expect(aud.ok).toBe(false);
    expect(aud.detail).toContain('is not the token endpoint https://elsewhere.example.org/token');
  });

  test('--jwks <file> verifies the signature', async () => {
    const r = await runSmart(['decode', assertion, '--jwks', jwksFile(flow.key), '-o', 'json']);
    expect(r.exitCode).toBe(0);
    expect(json<DecodeJson>(r).verified).toEqual({
      verified: true,
      source: jwksFile(flow.key),
      kid: flow.key.kid,
      alg: 'RS384',
    });
  });

  test('--jwks <url>: only a GET of the JWKS, never the token', async () => {
    const before = flow.jwksHits();
    const r = await runSmart(['decode', assertion, '--jwks', flow.jwksUrl, '-o', 'table']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain(`signature: verified with kid ${flow.key.kid} from ${flow.jwksUrl}`);
    expect(flow.jwksHits()).toBe(before + 1);
  });

  test('the JWKS fetch carries nothing of the token', async () => {
    const { fixedServer } = await import('../helpers/servers.js');
    const s = await fixedServer({
      status: 200,
      body: JSON.stringify({ keys: [flow.key.publicJwk] }),
    });
    try {
      const r = await runSmart(['decode', assertion, '--jwks', `${s.url}/jwks.json`]);
      expect(r.exitCode).toBe(0);
      expect(s.requests).toHaveLength(1);
      const [req] = s.requests;
      expect(req!.method).toBe('GET');
      expect(req!.url).toBe('/jwks.json');
      expect(req!.body).toBe('');
      expect(req!.headers.authorization).toBeUndefined();
      const signature = assertion.split('.')[2]!;
      expect(JSON.stringify(req!.headers)).not.toContain(signature.slice(0, 20));
    } finally {
      await s.close();
    }
  });

  test('a JWKS without the key: exit 1, signature not verified', async () => {
    const r = await runSmart(['decode', assertion, '--jwks', jwksFile(otherKey), '-o', 'json']);
    expect(r.exitCode).toBe(1);
    const d = json<DecodeJson>(r);
    expect(d.verified!.verified).toBe(false);
    expect(r.stderr).toContain(
      `error: signature verification failed: no key in ${jwksFile(otherKey)} matches kid ${flow.key.kid}`,
    );
  });

  test('a key with the right kid but the wrong material: exit 1 "does not verify"', async () => {
    const impostor = { keys: [{ ...otherKey.publicJwk, kid: flow.key.kid }] };
    const s = await serveJwks(() => impostor);
    try {
      const r = await runSmart(['decode', assertion, '--jwks', s.url]);
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toContain(`the signature does not verify with key ${flow.key.kid}`);
    } finally {
      await s.close();
    }
  });

  test('not a JWT: exit 2 (and the input is not echoed)', async () => {
    const r = await runSmart(['decode', 'hello-world-secret']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(
      'error: not a JWT: expected three base64url parts separated by dots, got 1 part',
    );
    expect(r.stderr).not.toContain('hello-world-secret');
    const jwe = await runSmart(['decode', 'a.b.c.d.e']);
    expect(jwe.exitCode).toBe(2);
    expect(jwe.stderr).toContain('encrypted JWT');
    const junk = await runSmart(['decode', 'eyJub3QganNvbg.eyJ4IjoxfQ.sig']);
    expect(junk.exitCode).toBe(2);
    expect(junk.stderr).toContain('the JWT header is not base64url-encoded JSON');
  });

  test('a missing --jwks file: exit 2 naming it', async () => {
    const r = await runSmart(['decode', assertion, '--jwks', '/nonexistent/jwks.json']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('/nonexistent/jwks.json');
  });
});
