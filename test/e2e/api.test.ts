import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bundle, Resource } from '../../src/core/fhir/index.js';
import { ROOT, json, runSmart, smart } from '../helpers/cli.js';
import {
  sendJson,
  startQueryFlow,
  startStubServer,
  type QueryFlow,
  type StubServer,
} from './query-flow.js';

let flow: QueryFlow;
let stub: StubServer;
const ALICIA = 'a6a91d7e-7ded-4325-9dbe-42a088e7e039';

const run = (args: string[], env: Record<string, string> = {}, input?: string) =>
  runSmart(args, { ws: flow.ws, env: { ...flow.env, ...env }, input });
const runStub = (args: string[], input?: string) =>
  runSmart(args, { ws: flow.ws, env: stub.env, input });

beforeAll(async () => {
  flow = await startQueryFlow();
  stub = await startStubServer(flow.ws, (req, res) => {
    if (req.url.startsWith('/fhir/Gone')) {
      res.writeHead(410, { 'content-type': 'text/plain' });
      res.end('gone for good');
      return;
    }
    // Echo what was received, so the test can check method, headers and body.
    sendJson(res, req.method === 'POST' ? 201 : 200, {
      method: req.method,
      url: req.url,
      contentType: req.headers['content-type'] ?? null,
      accept: req.headers.accept ?? null,
      prefer: req.headers.prefer ?? null,
      authorization: req.headers.authorization?.split(' ')[0] ?? null,
      body: req.body,
    });
  });
});
afterAll(async () => {
  await stub?.close();
  await flow?.close();
});

describe('smart api against the sandbox', () => {
  // The built CLI reads its version only when it is needed (not for a cached token): every
  // request still names it.
  it('the built CLI names itself smart/<version of package.json> on every request', async () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      version: string;
    };
    const from = stub.requests.length;
    const r = await smart(['api', 'Patient?name=x'], { ws: flow.ws, env: stub.env });
    expect(r.exitCode, r.stderr).toBe(0);
    const sent = stub.requests.slice(from);
    expect(sent.map((q) => q.url)).toContain('/fhir/Patient?name=x');
    expect(sent.length).toBeGreaterThan(0);
    for (const q of sent) expect(q.headers['user-agent']).toBe(`smart/${version}`);
  });

  it('GETs a path relative to the FHIR base and prints the body as received when piped', async () => {
    const r = await run(['api', 'metadata']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout.startsWith('{"resourceType":"CapabilityStatement"')).toBe(true);
    expect(json<Resource>(r).resourceType).toBe('CapabilityStatement');
    expect(r.stderr).toBe('');
  });

  it('accepts a leading slash, a query string, and an absolute URL on the same origin', async () => {
    const a = await run(['api', `/Patient/${ALICIA}`]);
    const b = await run(['api', `Patient/${ALICIA}`]);
    const c = await run(['api', `${flow.sandbox.fhirUrl}/Patient/${ALICIA}`]);
    for (const r of [a, b, c]) {
      expect(r.exitCode, r.stderr).toBe(0);
      expect(json<Resource>(r)).toMatchObject({ resourceType: 'Patient', id: ALICIA });
    }
    const s = await run(['api', 'Observation?code=4548-4&_count=2']);
    expect(json<Bundle>(s).entry).toHaveLength(2);
  });

  it('refuses a URL on another origin before sending anything (exit 2)', async () => {
    const from = flow.sandbox.requests.length;
    const r = await run(['api', 'https://elsewhere.example/fhir/Patient']);
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toContain('refusing to send the access token to https://elsewhere.example');
    expect(flow.sandbox.requests.slice(from).some((q) => q.path.startsWith('/fhir/Patient'))).toBe(
      false,
    );
  });

  it('-i prints the status line and headers on stderr', async () => {
    const r = await run(['api', `Patient/${ALICIA}`, '-i']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^HTTP\/1\.1 200 OK\n/);
    expect(r.stderr).toMatch(/\ncontent-type: application\/fhir\+json/);
    expect(r.stderr.endsWith('\n\n')).toBe(true);
    expect(json<Resource>(r).id).toBe(ALICIA);
  });

  it('a non-2xx answer prints its body on stdout, one error line on stderr, exit 1', async () => {
    const r = await run(['api', 'Patient/nobody', '-i']);
    expect(r.exitCode, r.stderr).toBe(1);
    expect(json<Resource>(r)).toMatchObject({ resourceType: 'OperationOutcome' });
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines[0]).toBe('HTTP/1.1 404 Not Found');
    expect(lines.at(-1)).toMatch(
      /^error: not found: GET .*\/fhir\/Patient\/nobody answered 404: error not-found/,
    );
    expect(r.stderr.match(/^error:/gm)).toHaveLength(1);
    expect(r.stderr).not.toContain('hint:');
  });

  it('403 prints the OperationOutcome and names the token scopes (exit 1, like any non-2xx)', async () => {
    const env = await flow.registerClient('api-patients-only', { scope: ['system/Patient.read'] });
    const r = await runSmart(['api', 'Observation'], { ws: flow.ws, env });
    expect(r.exitCode, r.stderr).toBe(1);
    expect(json<Resource>(r)).toMatchObject({ resourceType: 'OperationOutcome', id: 'forbidden' });
    expect(r.stderr).toMatch(/access denied: .*403.*\(the token's scopes: system\/Patient\.read\)/);
  });

  it('POSTs a form to _search with a non-JSON content type', async () => {
    const r = await run([
      'api',
      'Patient/_search',
      '-X',
      'POST',
      '-H',
      'Content-Type: application/x-www-form-urlencoded',
      '-d',
      'family=Kessler',
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(json<Bundle>(r).entry!.map((e) => e.resource!.id)).toEqual([ALICIA]);
  });
});

describe('smart api request shape (stub server)', () => {
  const echo = (r: { stdout: string }) => JSON.parse(r.stdout) as Record<string, string | null>;

  it('-d <json> POSTs it as application/fhir+json by default', async () => {
    const body = '{"resourceType":"Patient","name":[{"family":"Test"}]}';
    const r = await runStub(['api', 'Patient', '-d', body]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(echo(r)).toEqual({
      method: 'POST',
      url: '/fhir/Patient',
      contentType: 'application/fhir+json',
      accept: 'application/fhir+json',
      prefer: null,
      authorization: 'Bearer',
      body,
    });
  });

  it('-d @file and -d @- read the body; -X and -H are honoured', async () => {
    const file = join(flow.ws.home, 'patient.json');
    writeFileSync(file, '{"resourceType":"Patient","id":"p1"}');
    const a = await runStub([
      'api',
      'Patient/p1',
      '-X',
      'put',
      '-H',
      'Prefer: return=minimal',
      '-d',
      `@${file}`,
    ]);
    expect(a.exitCode, a.stderr).toBe(0);
    expect(echo(a)).toMatchObject({
      method: 'PUT',
      prefer: 'return=minimal',
      body: '{"resourceType":"Patient","id":"p1"}',
    });
    const b = await runStub(
      ['api', 'Patient/p1', '-X', 'PUT', '-d', '@-'],
      '{"resourceType":"Patient","id":"p2"}',
    );
    expect(b.exitCode, b.stderr).toBe(0);
    expect(echo(b)).toMatchObject({
      method: 'PUT',
      contentType: 'application/fhir+json',
      body: '{"resourceType":"Patient","id":"p2"}',
    });
  });

  it('-H is repeatable; a -H Content-Type replaces the default; -H Authorization is sent as given, with no token fetched', async () => {
    const from = stub.requests.length;
    const r = await runStub([
      'api',
      'Patient',
      '-H',
      'Prefer: return=representation',
      '-H',
      'X-Request-Id: abc-123',
      '-H',
      'Content-Type: application/json',
      '-H',
      'Authorization: Bearer not-mine',
      '-d',
      '{"resourceType":"Patient"}',
      '--verbose',
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    const sent = stub.requests.slice(from);
    // Like curl: the user's own header goes out as given, and no token is asked for.
    expect(sent.map((q) => q.url)).toEqual(['/fhir/Patient']);
    expect(sent[0]!.headers.prefer).toBe('return=representation');
    expect(sent[0]!.headers['x-request-id']).toBe('abc-123');
    expect(sent[0]!.headers['content-type']).toBe('application/json');
    expect(sent[0]!.headers.authorization).toBe('Bearer not-mine');
    expect(r.stderr).toContain(
      'the request carries its own Authorization header: no token requested',
    );
  });

  it('bad JSON in -d is a usage error (exit 2) and nothing is sent', async () => {
    const from = stub.requests.length;
    const r = await runStub(['api', 'Patient', '-d', '{"resourceType": "Patient",']);
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/^error: the request body \(-d <json>\) is not valid JSON/);
    expect(stub.requests.length).toBe(from);
  });

  it.each([
    [['api', 'Patient', '-H', 'no colon here'], /-H "no colon here" is not a header/],
    [['api', 'Patient', '-X', 'GE T'], /-X "GE T" is not an HTTP method/],
    [
      ['api', 'Patient', '-d', '@/nonexistent/body.json'],
      /cannot read the request body from \/nonexistent\/body\.json: ENOENT/,
    ],
  ])('%j is a usage error (exit 2)', async (args, message) => {
    const r = await runStub(args);
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('a non-JSON error body is printed as is, exit 1', async () => {
    const r = await runStub(['api', 'Gone']);
    expect(r.exitCode, r.stderr).toBe(1);
    expect(r.stdout).toBe('gone for good');
    expect(r.stderr).toMatch(
      /^error: GET .*\/fhir\/Gone answered 410: text\/plain: gone for good\n$/,
    );
  });
});
