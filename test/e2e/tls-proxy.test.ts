// --ca-file, NODE_EXTRA_CA_CERTS and HTTPS_PROXY from the built CLI, against an HTTPS server whose
// certificate comes from a private test CA (test/fixtures/tls), and a real forward proxy.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { join } from 'node:path';
import { json, makeWorkspace, runSmart, smart } from '../helpers/cli.js';
import {
  TEST_CA as CA,
  TLS_DIR as TLS,
  startForwardProxy,
  startHttpsServer,
  type ForwardProxy,
} from '../helpers/servers.js';

let https: Awaited<ReturnType<typeof startHttpsServer>>;
let fhir: string;
let proxy: ForwardProxy;

beforeAll(async () => {
  https = await startHttpsServer((req, res) => {
    const config = {
      token_endpoint: `${fhir.replace(/\/fhir$/, '')}/auth/token`,
      token_endpoint_auth_methods_supported: ['private_key_jwt'],
      token_endpoint_auth_signing_alg_values_supported: ['RS384', 'ES384'],
      grant_types_supported: ['client_credentials'],
      capabilities: ['client-confidential-asymmetric'],
    };
    if (req.url === '/fhir/.well-known/smart-configuration') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(config));
    } else if (req.url === '/fhir/metadata') {
      res.writeHead(200, { 'content-type': 'application/fhir+json' });
      res.end(JSON.stringify({ resourceType: 'CapabilityStatement', fhirVersion: '4.0.1' }));
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  fhir = `${https.url}/fhir`;
  proxy = await startForwardProxy();
});
afterAll(async () => {
  await Promise.all([https?.close(), proxy?.close()]);
});

describe('TLS with a private CA', () => {
  test('an unknown CA is refused with a hint, exit 4; verification is never turned off', async () => {
    const r = await runSmart(['discover', fhir]);
    expect(r.exitCode).toBe(4);
    expect(r.stderr).toMatch(/^error: TLS verification failed for 127\.0\.0\.1:\d+ \(/m);
    expect(r.stderr).toMatch(/^hint: .*--ca-file <pem> or set NODE_EXTRA_CA_CERTS/m);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  test('--ca-file trusts it', async () => {
    const r = await runSmart(['discover', fhir, '--ca-file', CA, '-o', 'json']);
    expect(r.exitCode).toBe(0);
    expect(json<{ config: { token_endpoint: string } }>(r).config.token_endpoint).toMatch(
      /^https:\/\/127\.0\.0\.1:\d+\/auth\/token$/,
    );
  });

  test('SMART_CA_FILE and NODE_EXTRA_CA_CERTS trust it too', async () => {
    // NODE_EXTRA_CA_CERTS is read by Node itself when the process starts: a process of its own.
    for (const [env, run] of [
      [{ SMART_CA_FILE: CA }, runSmart],
      [{ NODE_EXTRA_CA_CERTS: CA }, smart],
    ] as const) {
      const r = await run(['discover', fhir, '-o', 'json'], { env });
      expect(r.exitCode, `${JSON.stringify(env)}: ${r.stderr}`).toBe(0);
    }
  });

  test('a missing CA file is a usage error (exit 2) naming it', async () => {
    const r = await runSmart(['discover', fhir, '--ca-file', join(TLS, 'nope.pem')]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/^error: cannot read CA file .*nope\.pem/m);
  });
});

describe('proxies', () => {
  test('HTTPS_PROXY tunnels the requests, and the CA still verifies the server', async () => {
    proxy.seen.length = 0;
    const r = await runSmart(['discover', fhir, '--ca-file', CA, '-o', 'json'], {
      env: { HTTPS_PROXY: proxy.url },
    });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(proxy.seen.length).toBeGreaterThan(0);
    expect(new Set(proxy.seen)).toEqual(new Set([`CONNECT ${new URL(fhir).host}`]));
  });

  test('NO_PROXY sends the host direct', async () => {
    proxy.seen.length = 0;
    const r = await runSmart(['discover', fhir, '--ca-file', CA], {
      env: { HTTPS_PROXY: proxy.url, NO_PROXY: '127.0.0.1' },
    });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(proxy.seen).toEqual([]);
  });
});

describe('plain http to another machine', () => {
  test('no token request over plain http to a non-loopback host without --insecure (exit 2)', async () => {
    const ws = makeWorkspace();
    const key = await runSmart(['keygen', '--dir', 'keys', '-o', 'json'], { ws });
    expect(key.exitCode, key.stderr).toBe(0);
    const args = ['token', '--token-url', 'http://aidbox.invalid/auth/token', '--client-id', 'c'];
    const r = await runSmart(args, { ws });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toBe(
      'error: refusing to send a client assertion over plain http to aidbox.invalid\n' +
        'hint: use an https:// URL; on a trusted private network (e.g. a docker network) pass --insecure or set SMART_INSECURE=1\n',
    );
    // Allowed by the flag, the environment or the profile: then it is tried (and DNS fails).
    for (const extra of [{ args: ['--insecure'] }, { env: { SMART_INSECURE: '1' } }]) {
      const t = await runSmart([...args, ...(extra.args ?? [])], { ws, env: extra.env });
      expect(t.exitCode, t.stderr).toBe(4);
      expect(t.stderr).toContain('cannot resolve host aidbox.invalid');
    }
    expect((await runSmart(['config', 'set', 'insecure', 'true'], { ws })).exitCode).toBe(0);
    expect((await runSmart(args, { ws })).exitCode).toBe(4);
    const ws2 = makeWorkspace();
    const init = await runSmart(
      ['init', '--base-url', 'http://aidbox:8080', '--insecure', '--no-input', '-o', 'json'],
      { ws: ws2 },
    );
    expect(init.exitCode, init.stderr).toBe(0);
    expect(json<{ insecure?: string }>(init).insecure).toBe('true');
    const bad = await runSmart(['config', 'set', 'insecure', 'maybe'], { ws });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('"maybe" is not true or false');
  });
});
