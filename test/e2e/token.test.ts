import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { decodeJwt } from 'jose';
import { json, makeWorkspace, runSmart, smart } from '../helpers/cli.js';
import { startFlow, type Flow } from '../helpers/sandbox.js';
import { closedPort, fixedServer } from '../helpers/servers.js';

const JWT_SHAPE = /^eyJ[\w-]+\.[\w-]+\.[\w-]+$/;

let flow: Flow;

beforeAll(async () => {
  flow = await startFlow({ clientId: 'token-client' });
});
afterAll(async () => {
  await flow?.close();
});

describe('smart token against the sandbox', () => {
  // The built CLI serves a bare `smart token` without Commander, from the bundle
  // (scripts/bundle-cli.mjs): the same answers as the sources, as a process.
  test('the built CLI: a fresh token, the same one from the cache without a request, an error', async () => {
    const ws = makeWorkspace();
    const cold = await smart(['token'], { ws, env: flow.env });
    expect(cold.stderr).toBe('');
    expect(cold.exitCode).toBe(0);
    expect(cold.stdout).toMatch(/^eyJ[\w-]+\.[\w-]+\.[\w-]+\n$/);
    const before = flow.sandbox.requests.length;
    const warm = await smart(['token'], { ws, env: flow.env });
    expect(warm).toEqual({ stdout: cold.stdout, stderr: '', exitCode: 0 });
    expect(flow.sandbox.requests.length).toBe(before);
    // Errors: what the sources print in-process, byte for byte, with the same exit code.
    for (const env of [
      { ...flow.env, SMART_CLIENT_ID: 'nobody' },
      { ...flow.env, SMART_KEY: join(ws.home, 'none.pem') },
    ]) {
      const r = await smart(['token'], { env });
      expect(r.exitCode).toBeGreaterThan(0);
      expect(r.stderr).toMatch(/^error: /);
      expect(r).toEqual(await runSmart(['token'], { env }));
    }
  });

  // What makes a warm run fast (bench/startup.mjs): the cached token is found by the key
  // file's fingerprint, without parsing the key, so node:crypto (~4 ms) is not even loaded; and
  // the process runs as CommonJS throughout (bin/smart.cjs, dist/cli.cjs, the bundle's chunks,
  // built-ins imported straight from Node), so Node's ES module loader (~10 ms) never starts.
  test('a warm token, and a query or an api call with it, load neither node:crypto nor the ES module loader', async () => {
    const ws = makeWorkspace();
    const list = join(ws.home, 'modules.txt');
    const preload = join(ws.home, 'modules.cjs');
    writeFileSync(
      preload,
      `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(list)}, process.moduleLoadList.join('\\n')));`,
    );
    const loaded = async (args: string[]) => {
      const r = await smart(args, { ws, env: flow.env, nodeArgs: ['--require', preload] });
      expect(r.exitCode, r.stderr).toBe(0);
      return readFileSync(list, 'utf8').split('\n');
    };
    const esm = 'NativeModule internal/modules/esm/translators';
    // A token fetched is signed: node:crypto.
    expect(await loaded(['token'])).toContain('NativeModule crypto');
    for (const args of [['token'], ['query', 'Patient', '-o', 'json'], ['api', '/Patient']]) {
      const modules = await loaded(args);
      expect(modules, args.join(' ')).not.toContain('NativeModule crypto');
      expect(modules, args.join(' ')).not.toContain(esm);
      // A request: node:http, as a built-in from Node, not through import().
      if (args[0] !== 'token') expect(modules).toContain('NativeModule http');
    }
    expect(await loaded(['--version'])).not.toContain(esm);
  });

  test('prints the access token alone on stdout; the sandbox accepts it', async () => {
    const ws = makeWorkspace();
    const r = await runSmart(['token'], { ws, env: flow.env });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(r.stdout.endsWith('\n')).toBe(true);
    const token = r.stdout.trim();
    expect(token).toMatch(JWT_SHAPE);
    expect(r.stdout.split('\n')).toHaveLength(2);
    expect(decodeJwt(token).sub).toBe('token-client');
    const res = await fetch(`${flow.sandbox.fhirUrl}/Patient?_count=1`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(res.status).toBe(200);
  });

  test('a warm cache makes no HTTP request at all (not even discovery)', async () => {
    const ws = makeWorkspace();
    const first = await runSmart(['token', '-o', 'json'], { ws, env: flow.env });
    expect(first.exitCode).toBe(0);
    const cold = json<Record<string, unknown>>(first);
    expect(cold.from_cache).toBe(false);
    // The cache lives in $XDG_CACHE_HOME/smart/tokens, one 0600 file per token.
    const dir = join(ws.cache, 'smart', 'tokens');
    const files = readdirSync(dir);
    expect(files).toHaveLength(1);
    expect(statSync(join(dir, files[0]!)).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o077).toBe(0);
    const before = flow.sandbox.requests.length;
    const jwksBefore = flow.jwksHits();
    const second = await runSmart(['token', '-o', 'json'], { ws, env: flow.env });
    expect(second.exitCode).toBe(0);
    const warm = json<Record<string, unknown>>(second);
    expect(warm.from_cache).toBe(true);
    expect(warm.access_token).toBe(cold.access_token);
    expect(flow.sandbox.requests.length).toBe(before);
    expect(flow.jwksHits()).toBe(jwksBefore);
    // Plain output from the cache is the same token.
    const plain = await runSmart(['token'], { ws, env: flow.env });
    expect(plain.stdout.trim()).toBe(cold.access_token);
    expect(flow.sandbox.requests.length).toBe(before);
  });

  test('-o json: the whole response plus expires_at and from_cache', async () => {
    const r = await runSmart(['token', '-o', 'json'], { env: flow.env });
    expect(r.exitCode).toBe(0);
    const body = json<Record<string, unknown>>(r);
    expect(body.token_type).toBe('Bearer');
    expect(body.expires_in).toBe(300);
    expect(typeof body.scope).toBe('string');
    expect(body.from_cache).toBe(false);
    const expiresAt = Date.parse(String(body.expires_at));
    expect(expiresAt - Date.now()).toBeGreaterThan(250_000);
    expect(expiresAt - Date.now()).toBeLessThanOrEqual(301_000);
  });

  test('--no-cache asks the server again', async () => {
    const ws = makeWorkspace();
    await runSmart(['token'], { ws, env: flow.env });
    const posts = () => flow.sandbox.requests.filter((q) => q.path === '/auth/token').length;
    const before = posts();
    const r = await runSmart(['token', '--no-cache', '-o', 'json'], { ws, env: flow.env });
    expect(r.exitCode).toBe(0);
    expect(json<{ from_cache: boolean }>(r).from_cache).toBe(false);
    expect(posts()).toBe(before + 1);
  });

  test('--scope narrows the request; --verbose shows the granted scope and expiry on stderr only', async () => {
    const r = await runSmart(['token', '--scope', 'system/Patient.read', '--verbose'], {
      env: flow.env,
    });
    expect(r.exitCode).toBe(0);
    expect(r.stdout.trim()).toMatch(JWT_SHAPE);
    expect(r.stderr).toContain('granted scope: system/Patient.read');
    expect(r.stderr).toMatch(/expires at \d{4}-\d\d-\d\dT.* \(in [45]m/);
  });

  test('a cached token is kept per scope', async () => {
    const ws = makeWorkspace();
    const a = await runSmart(['token', '--scope', 'system/Patient.read', '-o', 'json'], {
      ws,
      env: flow.env,
    });
    const b = await runSmart(['token', '--scope', 'system/Observation.read', '-o', 'json'], {
      ws,
      env: flow.env,
    });
    expect(json<{ from_cache: boolean }>(b).from_cache).toBe(false);
    expect(json<{ scope: string }>(a).scope).toBe('system/Patient.read');
    expect(json<{ scope: string }>(b).scope).toBe('system/Observation.read');
  });

  test('a retried token request signs a new assertion (the sandbox refuses a replayed jti)', async () => {
    flow.sandbox.addFault({
      path: '/auth/token',
      method: 'POST',
      times: 1,
      action: { status: 503 },
    });
    const r = await runSmart(['token', '--no-cache'], { env: flow.env });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const last = flow.sandbox.requests.filter((q) => q.path === '/auth/token').slice(-2);
    expect(last.map((q) => q.status)).toEqual([503, 200]);
  });

  test('an ES384 key against the default sandbox (RS384 only, as Aidbox): refused, with a hint', async () => {
    const es = await startFlow({
      alg: 'ES384',
      clientId: 'token-es-aidbox',
      sandbox: flow.sandbox,
    });
    try {
      // Discovered: smart knows the server takes RS384 only, and says which key to make.
      const r = await runSmart(['token'], { env: es.env });
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toContain(
        `error: the key signs with ES384, but ${flow.sandbox.tokenUrl} accepts only RS384`,
      );
      expect(r.stderr).toContain('smart keygen --alg RS384');
      // Without discovery (--token-url, nothing cached): the sandbox's own error, and the hint.
      const direct = await runSmart(['token', '--token-url', flow.sandbox.tokenUrl], {
        env: es.env,
      });
      expect(direct.exitCode).toBe(3);
      expect(direct.stderr).toContain(
        "invalid_client: client assertion alg 'ES384' is not supported; use RS384",
      );
      expect(direct.stderr).toContain('hint: the key signs with ES384');
    } finally {
      await es.close();
    }
  });

  test('ES384 keys get tokens from a sandbox with --algs RS384,ES384', async () => {
    const es = await startFlow({
      alg: 'ES384',
      clientId: 'token-es384',
      sandbox: { algs: ['RS384', 'ES384'] },
    });
    try {
      const r = await runSmart(['token', '-o', 'json'], { env: es.env });
      expect(r.stderr).toBe('');
      expect(r.exitCode).toBe(0);
      expect(decodeJwt(json<{ access_token: string }>(r).access_token).sub).toBe('token-es384');
    } finally {
      await es.close();
    }
  });
});

describe('smart token: bad input and bad servers', () => {
  test('invalid_scope: exit 3, the error and the requested scopes', async () => {
    const r = await runSmart(['token', '--scope', 'system/*.write'], { env: flow.env });
    expect(r.exitCode).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(
      /^error: token request rejected by http:\/\/127\.0\.0\.1:\d+\/auth\/token: invalid_scope: /m,
    );
    expect(r.stderr).toContain('hint: requested "system/*.write"');
  });

  test.each([
    ['invalid_request', 'the server rejected the request itself'],
    ['invalid_client', 'the server could not verify the assertion: does'],
    ['invalid_grant', 'the server rejected the request itself'],
    ['unauthorized_client', 'is not allowed the client_credentials grant'],
    ['unsupported_grant_type', 'the server does not offer the client_credentials grant'],
    ['invalid_scope', 'requested "system/*.read"'],
    ['temporarily_unavailable', "see the server's description above"],
  ])(
    'OAuth error %s: one line naming it and the description, a hint, exit 3',
    async (code, hint) => {
      const s = await fixedServer({
        status: code === 'invalid_client' ? 401 : 400,
        contentType: 'application/json;charset=UTF-8',
        body: JSON.stringify({ error: code, error_description: `the ${code} description` }),
      });
      try {
        const r = await runSmart(['token', '--token-url', `${s.url}/token`], { env: flow.env });
        expect(r.exitCode).toBe(3);
        expect(r.stdout).toBe('');
        const lines = r.stderr.trimEnd().split('\n');
        expect(lines).toHaveLength(2);
        expect(lines[0]).toBe(
          `error: token request rejected by ${s.url}/token: ${code}: the ${code} description`,
        );
        expect(lines[1]).toMatch(/^hint: /);
        expect(lines[1]).toContain(hint);
      } finally {
        await s.close();
      }
    },
  );

  test('an unsupported alg: the hint names the algs the server advertises (discovered, or the discovery cache)', async () => {
    const s = await fixedServer((path) =>
      path === '/token'
        ? {
            status: 400,
            body: JSON.stringify({
              error: 'invalid_client',
              error_description: "client assertion alg 'RS384' is not supported",
            }),
          }
        : path === '/fhir/.well-known/smart-configuration'
          ? {
              status: 200,
              body: JSON.stringify({
                token_endpoint: '/token',
                token_endpoint_auth_signing_alg_values_supported: ['RS384', 'PS384'],
              }),
            }
          : undefined,
    );
    try {
      const ws = makeWorkspace();
      // A discovered server: the alg is advertised, the server still refuses it.
      const r = await runSmart(['token'], { ws, env: { ...flow.env, SMART_BASE_URL: s.url } });
      expect(r.exitCode).toBe(3);
      expect(r.stderr).toContain(
        'hint: the key signs with RS384; the server advertises RS384, PS384: make a key with',
      );
      // --token-url skips discovery; the cached configuration still names the algs, with no
      // request but the POST.
      const before = s.hits.length;
      const flag = await runSmart(['token', '--token-url', `${s.url}/token`], {
        ws,
        env: { ...flow.env, SMART_BASE_URL: s.url },
      });
      expect(flag.exitCode).toBe(3);
      expect(flag.stderr).toContain('the server advertises RS384, PS384');
      expect(s.hits.slice(before)).toEqual(['POST /token']);
    } finally {
      await s.close();
    }
  });

  test('invalid_scope after register-client: requested vs the registered scope saved in the profile', async () => {
    const ws = makeWorkspace();
    const reg = await runSmart(
      [
        'register-client',
        'token-narrow',
        '--jwks-uri',
        flow.jwksUrl,
        '--scope',
        'system/Patient.read',
      ],
      {
        ws,
        env: {
          ...flow.env,
          SMART_ADMIN_SECRET: flow.sandbox.adminSecret,
          SMART_CLIENT_ID: undefined,
        },
      },
    );
    expect(reg.exitCode, reg.stderr).toBe(0);
    const r = await runSmart(['token', '--scope', 'system/Observation.read'], {
      ws,
      env: { SMART_KEY: flow.key.keyFile },
    });
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toContain(': invalid_scope: ');
    expect(r.stderr).toContain(
      'hint: requested "system/Observation.read"; registered (saved in profile "default"): "system/Patient.read"',
    );
  });

  test('unknown client: invalid_client, exit 3, the hint names the client and the kid', async () => {
    const r = await runSmart(['token'], { env: { ...flow.env, SMART_CLIENT_ID: 'nobody' } });
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toContain("invalid_client: unknown client 'nobody'");
    expect(r.stderr).toContain('is client id "nobody" registered?');
    expect(r.stderr).toContain(`kid ${flow.key.kid}`);
  });

  test('a revoked key (gone from the JWKS): invalid_client, exit 3', async () => {
    const revoked = await startFlow({ clientId: 'token-revoked', sandbox: flow.sandbox });
    try {
      const ok = await runSmart(['token', '--no-cache'], { env: revoked.env });
      expect(ok.exitCode).toBe(0);
      revoked.setJwks({ keys: [] });
      const r = await runSmart(['token', '--no-cache'], { env: revoked.env });
      expect(r.exitCode).toBe(3);
      expect(r.stderr).toContain(`invalid_client: no key with kid '${revoked.key.kid}'`);
      expect(r.stderr).toContain(`hint: the server could not verify the assertion: does`);
    } finally {
      await revoked.close();
    }
  });

  test('a revoked key with a warm cache: the cache still answers (no server involved)', async () => {
    const ws = makeWorkspace();
    const revoked = await startFlow({ clientId: 'token-revoked-2', sandbox: flow.sandbox });
    try {
      expect((await runSmart(['token'], { ws, env: revoked.env })).exitCode).toBe(0);
      revoked.setJwks({ keys: [] });
      expect((await runSmart(['token'], { ws, env: revoked.env })).exitCode).toBe(0);
      expect((await runSmart(['token', '--no-cache'], { ws, env: revoked.env })).exitCode).toBe(3);
    } finally {
      await revoked.close();
    }
  });

  test('unreachable server: exit 4, the message names 127.0.0.1:<port>', async () => {
    const port = await closedPort();
    const r = await runSmart(['token'], {
      env: { ...flow.env, SMART_BASE_URL: `http://127.0.0.1:${port}` },
    });
    expect(r.exitCode).toBe(4);
    expect(r.stderr).toContain(`error: cannot connect to 127.0.0.1:${port}: connection refused`);
  });

  test('an HTML error page from the token endpoint: exit 1, the content type is named', async () => {
    const html = await fixedServer({
      status: 500,
      contentType: 'text/html; charset=utf-8',
      body: '<html><body><h1>502 Bad Gateway</h1></body></html>',
    });
    try {
      const r = await runSmart(['token', '--token-url', `${html.url}/auth/token`], {
        env: flow.env,
      });
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toContain(
        `token request to ${html.url}/auth/token failed with HTTP 500: text/html`,
      );
      expect(r.stderr).toContain('502 Bad Gateway');
    } finally {
      await html.close();
    }
  });

  test('a non-JSON 200 token response: exit 1, names the content type', async () => {
    const text = await fixedServer({
      status: 200,
      contentType: 'text/plain',
      body: 'access granted, have a nice day',
    });
    try {
      const r = await runSmart(['token', '--token-url', `${text.url}/token`], { env: flow.env });
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toContain(
        `expected JSON from ${text.url}/token but got text/plain (HTTP 200)`,
      );
    } finally {
      await text.close();
    }
  });

  test('--debug cause chains never quote a token a broken server sent', async () => {
    const jwt = 'eyJhbGciOiJSUzM4NCJ9.eyJzdWIiOiJsZWFrIn0.bGVha2VkLXNpZ25hdHVyZS12YWx1ZQ';
    const s = await fixedServer({
      status: 200,
      contentType: 'application/json',
      body: `{"access_token": "${jwt}", "token_type": "Bearer",`, // truncated JSON
    });
    try {
      const r = await runSmart(['token', '--debug', '--verbose', '--token-url', `${s.url}/token`], {
        env: flow.env,
      });
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toContain('caused by:');
      expect(r.stderr).not.toContain(jwt);
      expect(r.stderr).not.toContain('bGVha2VkLXNpZ25hdHVyZS12YWx1ZQ');
    } finally {
      await s.close();
    }
  });

  test('a missing private key file: exit 2, the path, and how to give or make one', async () => {
    const r = await runSmart(['token', '--no-cache', '--key', 'nowhere.pem'], { env: flow.env });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/^error: private key file not found: .*nowhere\.pem$/m);
    expect(r.stderr).toMatch(/^hint: pass --key <file> .*smart keygen/m);
  });

  test('a JSON 200 without access_token: exit 1', async () => {
    const s = await fixedServer({
      status: 200,
      contentType: 'application/json',
      body: '{"token_type":"Bearer"}',
    });
    try {
      const r = await runSmart(['token', '--token-url', `${s.url}/token`], { env: flow.env });
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toContain('has no access_token');
    } finally {
      await s.close();
    }
  });

  test('token_type is compared case-insensitively; a missing expires_in uses the JWT exp', async () => {
    const exp = Math.floor(Date.now() / 1000) + 200;
    const payload = Buffer.from(JSON.stringify({ sub: 'x', exp })).toString('base64url');
    const token = `eyJhbGciOiJub25lIn0.${payload}.sig`;
    const s = await fixedServer({
      status: 200,
      contentType: 'application/json',
      body: JSON.stringify({ access_token: token, token_type: 'BEARER' }),
    });
    try {
      const ws = makeWorkspace();
      const r = await runSmart(['token', '--token-url', `${s.url}/token`, '-o', 'json'], {
        ws,
        env: flow.env,
      });
      expect(r.exitCode).toBe(0);
      expect(json<{ expires_at: string }>(r).expires_at).toBe(new Date(exp * 1000).toISOString());
      const again = await runSmart(['token', '--token-url', `${s.url}/token`, '-o', 'json'], {
        ws,
        env: flow.env,
      });
      expect(json<{ from_cache: boolean }>(again).from_cache).toBe(true);
      expect(s.hits).toHaveLength(1);
    } finally {
      await s.close();
    }
  });

  test('no expiry at all (opaque token, no expires_in): works, not cached', async () => {
    const s = await fixedServer({
      status: 200,
      contentType: 'application/json',
      body: JSON.stringify({ access_token: 'opaque-123', token_type: 'bearer' }),
    });
    try {
      const ws = makeWorkspace();
      const a = await runSmart(['token', '--token-url', `${s.url}/token`], { ws, env: flow.env });
      expect(a.stdout).toBe('opaque-123\n');
      await runSmart(['token', '--token-url', `${s.url}/token`], { ws, env: flow.env });
      expect(s.hits).toHaveLength(2);
    } finally {
      await s.close();
    }
  });

  test('missing key: exit 2 naming --key and SMART_KEY', async () => {
    const r = await runSmart(['token'], { env: { ...flow.env, SMART_KEY: undefined } });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('error: no private key file configured');
    expect(r.stderr).toContain('--key');
    expect(r.stderr).toContain('SMART_KEY');
  });

  test('missing client id: exit 2 naming --client-id and SMART_CLIENT_ID', async () => {
    const r = await runSmart(['token'], { env: { ...flow.env, SMART_CLIENT_ID: undefined } });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('error: no client id configured');
    expect(r.stderr).toContain('--client-id');
    expect(r.stderr).toContain('SMART_CLIENT_ID');
  });

  test('missing server: exit 2 naming --base-url', async () => {
    const r = await runSmart(['token'], { env: { ...flow.env, SMART_BASE_URL: undefined } });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('--base-url');
  });

  test('an unreadable key file: exit 2 naming the file', async () => {
    const r = await runSmart(['token'], {
      env: { ...flow.env, SMART_KEY: '/nonexistent/key.pem' },
    });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('/nonexistent/key.pem');
  });

  test('a missing profile: exit 2', async () => {
    const r = await runSmart(['token', '--profile', 'nope'], { env: flow.env });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('profile "nope" does not exist');
  });

  test('global options after the command work too', async () => {
    const r = await runSmart([
      'token',
      '--base-url',
      flow.sandbox.url,
      '--client-id',
      flow.clientId,
      '--key',
      flow.key.keyFile,
    ]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout.trim()).toMatch(JWT_SHAPE);
  });

  test('neither the token nor the assertion ever reach stderr, even with --verbose --debug', async () => {
    const ok = await runSmart(['token', '--no-cache', '--verbose', '--debug'], { env: flow.env });
    expect(ok.exitCode).toBe(0);
    const token = ok.stdout.trim();
    expect(ok.stderr).not.toContain(token);
    expect(ok.stderr).not.toMatch(/eyJ[\w-]{4,}\.[\w-]{4,}/);
    expect(ok.stderr).toContain('POST ');
    const bad = await runSmart(
      ['token', '--no-cache', '--verbose', '--debug', '--scope', 'system/*.write'],
      {
        env: flow.env,
      },
    );
    expect(bad.exitCode).toBe(3);
    expect(bad.stderr).not.toMatch(/eyJ[\w-]{4,}\.[\w-]{4,}/);
    expect(bad.stderr).not.toContain('client_assertion=');
  });
});

describe('the shared token path of FHIR commands', () => {
  test('a 401 from the FHIR server drops the cached token, signs a new assertion and retries once', async () => {
    // A token endpoint that numbers its tokens, and a FHIR server that takes only the second.
    const jtis: string[] = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const send = (status: number, body: unknown) =>
          res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
        if (req.method === 'POST' && req.url === '/token') {
          const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
          jtis.push(String(decodeJwt(form.get('client_assertion') ?? '').jti));
          return send(200, {
            access_token: `stub-token-${jtis.length}`,
            token_type: 'bearer',
            expires_in: 300,
          });
        }
        if (req.url?.startsWith('/fhir/Patient')) {
          return req.headers.authorization === 'Bearer stub-token-2'
            ? send(200, { resourceType: 'Bundle', type: 'searchset', entry: [] })
            : send(401, {
                resourceType: 'OperationOutcome',
                issue: [{ severity: 'error', code: 'login' }],
              });
        }
        return send(404, { error: 'not found' });
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const env = { ...flow.env, SMART_BASE_URL: base, SMART_TOKEN_URL: `${base}/token` };
    try {
      const ws = makeWorkspace();
      expect((await runSmart(['token'], { ws, env })).stdout).toBe('stub-token-1\n');
      const api = await runSmart(['api', 'Patient', '--verbose'], { ws, env });
      expect(api.exitCode, api.stderr).toBe(0);
      expect(api.stderr).toContain('answered 401: getting a new token and retrying once');
      expect(jtis).toHaveLength(2);
      expect(jtis[0]).not.toBe(jtis[1]);
      // The rejected token left the cache; the new one took its place.
      const after = await runSmart(['token', '-o', 'json'], { ws, env });
      expect(json<{ access_token: string; from_cache: boolean }>(after)).toMatchObject({
        access_token: 'stub-token-2',
        from_cache: true,
      });
      expect(jtis).toHaveLength(2);
    } finally {
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
    }
  });
});

describe('smart token: clock skew (the server judges exp by its own clock, as Aidbox does)', () => {
  test('a server clock 50 s behind still accepts the default 240 s assertion (300 s would be refused)', async () => {
    const behind = await startFlow({ clientId: 'skew-50', sandbox: { clockOffsetSeconds: -50 } });
    try {
      const r = await runSmart(['token', '--no-cache'], { env: behind.env });
      expect(r.exitCode, r.stderr).toBe(0);
      // The same server refuses a 300 s assertion: 300 + 50 is past its five minutes.
      const a = await runSmart(['assertion', '--lifetime', '300'], { env: behind.env });
      expect(a.exitCode, a.stderr).toBe(0);
      const res = await fetch(behind.sandbox.tokenUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'client_credentials',
          scope: 'system/*.read',
          client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
          client_assertion: a.stdout.trim(),
        }).toString(),
      });
      expect(res.status).toBe(401);
      expect(await res.text()).toMatch(/at most 300 s/);
    } finally {
      await behind.close();
    }
  });

  test('a refused token with the server clock 2 minutes off: the hint names both times', async () => {
    const off = await startFlow({ clientId: 'skew-120', sandbox: { clockOffsetSeconds: -120 } });
    try {
      const r = await runSmart(['token', '--no-cache'], { env: off.env });
      expect(r.exitCode).toBe(3);
      expect(r.stderr).toMatch(/error: token request rejected by .*: invalid_client: .*s ahead/);
      expect(r.stderr).toMatch(
        /hint: this machine's clock says \d{4}-\d\d-\d\dT[\d:]+\.000Z but the server's says \d{4}-\d\d-\d\dT[\d:]+\.000Z \(1[12]\d s ahead\)/,
      );
      expect(r.stderr.trim().split('\n')).toHaveLength(2);
    } finally {
      await off.close();
    }
  });

  test('no clock remark when the clocks agree', async () => {
    const r = await runSmart(['token', '--no-cache', '--scope', 'system/*.write'], {
      env: flow.env,
    });
    expect(r.exitCode).toBe(3);
    expect(r.stderr).not.toContain("this machine's clock");
  });
});
