/**
 * Aidbox in Docker: the server calls itself http://aidbox:8080 (its BOX_WEB_BASE_URL, a
 * name that does not resolve here) while we reach it on 127.0.0.1. The sandbox's --public-url
 * reproduces it: discovery advertises the public name, the token endpoint wants it as aud, and
 * links, Content-Location and export file URLs are built on it.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { json, makeWorkspace, runSmart, type Workspace } from '../helpers/cli.js';
import { startFlow, type Flow } from '../helpers/sandbox.js';
import { tempDir } from '../helpers/tmp.js';

const PUBLIC = 'http://aidbox:8080';
let flow: Flow;
let aliased: Record<string, string>;

beforeAll(async () => {
  flow = await startFlow({
    clientId: 'docker-client',
    sandbox: { publicUrl: PUBLIC, generate: 20, exportFileSize: 50, exportDelayMs: 0 },
  });
  aliased = { ...flow.env, SMART_SERVER_URL: PUBLIC };
});
afterAll(async () => {
  await flow?.close();
});

const advice = () =>
  `the server calls itself ${PUBLIC} (Aidbox's BOX_WEB_BASE_URL) but you reach it at ${flow.sandbox.url}: set \`smart config set serverUrl ${PUBLIC}\` (or --server-url ${PUBLIC}, SMART_SERVER_URL)`;

describe('without serverUrl: the mismatch is noticed and the fix named', () => {
  let ws: Workspace;
  beforeAll(() => {
    ws = makeWorkspace();
  });

  test('discover: exit 1, a "server name" check and the hint saying what to set', async () => {
    const r = await runSmart(['discover', '-o', 'json'], { ws, env: flow.env });
    expect(r.exitCode).toBe(1);
    const out = json<{ checks: { requirement: string; status: string; detail: string }[] }>(r);
    expect(out.checks.find((c) => c.requirement === 'server name')).toMatchObject({
      status: 'missing',
    });
    expect(r.stderr).toContain(`hint: ${advice()}`);
  });

  test('token: the discovered endpoint is on plain http to another host; the hint says what to set', async () => {
    const r = await runSmart(['token'], { ws: makeWorkspace(), env: flow.env });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('over plain http to aidbox:8080');
    expect(r.stderr).toContain(`hint: ${advice()}; if it is another server`);
  });

  test('token --insecure: the name does not resolve; the hint says what to set (exit 4)', async () => {
    const r = await runSmart(['token', '--insecure'], { ws: makeWorkspace(), env: flow.env });
    expect(r.exitCode).toBe(4);
    expect(r.stderr).toContain('cannot resolve host aidbox');
    expect(r.stderr).toContain(`hint: ${advice()}\n`);
  });

  test('--token-url on the reachable origin: aud is refused, and the hint names serverUrl', async () => {
    // The discovery cache (from `discover` above) knows the server's own name.
    const r = await runSmart(['token', '--token-url', flow.sandbox.tokenUrl], {
      ws,
      env: flow.env,
    });
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toMatch(/invalid_client: client assertion aud .* does not match/);
    expect(r.stderr).toContain(`hint: ${advice()}; the server checks the assertion's aud`);
    // Without the discovery cache there is nothing to compare with: the usual hint.
    const cold = await runSmart(['token', '--token-url', flow.sandbox.tokenUrl], { env: flow.env });
    expect(cold.exitCode).toBe(3);
    expect(cold.stderr).not.toContain('serverUrl');
  });
});

describe('with serverUrl (SMART_SERVER_URL): everything goes to the base URL', () => {
  test('discover shows the reachable token endpoint and the server name', async () => {
    const r = await runSmart(['discover', '-o', 'table'], { env: aliased });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain(`token endpoint  ${flow.sandbox.tokenUrl}`);
    expect(r.stdout).toMatch(/server name +http:\/\/aidbox:8080 \(its own URLs are reached/);
  });

  test('token: POSTed to the base URL, aud under the server name, the token issued by it', async () => {
    const a = await runSmart(['assertion', '-o', 'json'], { env: aliased });
    expect(a.exitCode, a.stderr).toBe(0);
    expect(json<{ claims: { aud: string } }>(a).claims.aud).toBe(`${PUBLIC}/auth/token`);
    const r = await runSmart(['token', '--verbose'], { env: aliased });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(decodeJwt(r.stdout.trim()).iss).toBe(PUBLIC);
    expect(r.stderr).toContain(`reached at ${flow.sandbox.tokenUrl}`);
  });

  test('--token-url on the base URL works too: aud is still the server name', async () => {
    const r = await runSmart(['token', '--no-cache', '--token-url', flow.sandbox.tokenUrl], {
      env: aliased,
    });
    expect(r.exitCode, r.stderr).toBe(0);
  });

  test('query --all follows next links built on the server name', async () => {
    const r = await runSmart(['query', 'Patient', '--count', '7', '--all', '-o', 'ndjson'], {
      env: aliased,
    });
    expect(r.exitCode, r.stderr).toBe(0);
    const ids = r.stdout.trim().split('\n');
    expect(ids.length).toBe(flow.sandbox.counts.Patient);
    const pages = flow.sandbox.requests.filter(
      (q) => q.path.startsWith('/fhir/Patient?') && q.path.includes('_count=7'),
    );
    expect(pages.length).toBeGreaterThan(1);
  });

  test('export: the Content-Location and file URLs on the server name are fetched at the base URL', async () => {
    const dir = join(tempDir('smart-server-url-'), 'out');
    const r = await runSmart(['export', '--type', 'Patient', '--out', dir], { env: aliased });
    expect(r.exitCode, r.stderr).toBe(0);
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    expect(manifest.output[0].url.startsWith(`${PUBLIC}/`)).toBe(true);
    const state = JSON.parse(readFileSync(join(dir, 'export.json'), 'utf8'));
    expect(state.statusUrl.startsWith(`${flow.sandbox.url}/fhir/$export-status/`)).toBe(true);
    const summary = json<{ resources: number; files: { file: string }[] }>(r);
    expect(summary.resources).toBe(flow.sandbox.counts.Patient);
    const lines = readFileSync(join(dir, summary.files[0]!.file), 'utf8').trim().split('\n');
    expect(lines.length).toBeGreaterThan(0);
  });
});

describe('the setting', () => {
  test('serverUrl must be an origin', async () => {
    const r = await runSmart(['token', '--server-url', 'http://aidbox:8080/fhir'], {
      env: flow.env,
    });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('must be an origin');
  });

  test('smart config set serverUrl, then it is used', async () => {
    const ws = makeWorkspace();
    const set = await runSmart(['config', 'set', 'serverUrl', PUBLIC], { ws, env: flow.env });
    expect(set.exitCode, set.stderr).toBe(0);
    const r = await runSmart(['token'], { ws, env: flow.env });
    expect(r.exitCode, r.stderr).toBe(0);
  });
});
