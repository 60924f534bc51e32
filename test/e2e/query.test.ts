import { execa } from 'execa';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bundle, Resource } from '../../src/core/fhir/index.js';
import { BIN, json, runSmart } from '../helpers/cli.js';
import {
  sendJson,
  startQueryFlow,
  startStubServer,
  type QueryFlow,
  type StubServer,
} from './query-flow.js';

let flow: QueryFlow;
let run: (args: string[], env?: Record<string, string>) => ReturnType<typeof runSmart>;

const A1C_IDS = ['00592410-ec4a-4d64-a674-f0bfb244a978', '01e57d19-35b7-47d0-9c3b-29d14d16d3f5'];
const ALICIA = 'a6a91d7e-7ded-4325-9dbe-42a088e7e039';

function hasJq(): boolean {
  try {
    execFileSync('which', ['jq'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Requests the sandbox saw to /fhir since `from` (token and discovery requests left out). */
const fhirRequests = (from: number) =>
  flow.sandbox.requests
    .slice(from)
    .filter((r) => r.path.startsWith('/fhir/') && !r.path.includes('.well-known'));

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

beforeAll(async () => {
  flow = await startQueryFlow();
  run = (args, env = {}) => runSmart(args, { ws: flow.ws, env: { ...flow.env, ...env } });
});
afterAll(() => flow?.close());

describe('smart query against the sandbox', () => {
  it('renders the walkthrough query as the Observation table, with a footer on stderr', async () => {
    const from = flow.sandbox.requests.length;
    const r = await run(['query', 'Observation', 'code=4548-4', '_count=2', '-o', 'table'], {
      COLUMNS: '200',
    });
    expect(r.exitCode, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[1]).toMatch(/│ id\s+│ date\s+│ code\s+│ value\s+│ subject\s+│/);
    expect(r.stdout).toContain(
      `│ ${A1C_IDS[0]} │ 2014-05-11T12:39:55+04:00 │ Hemoglobin A1c/Hemoglobin.total in Blood │ 2.856519918445372 %  │ Patient/${ALICIA} │`,
    );
    expect(r.stdout).toContain(`│ ${A1C_IDS[1]} │ 2018-01-14T11:39:55+03:00 │`);
    expect(r.stderr).toBe('shown 2 of 6 — use --all or --limit <n> for more\n');
    expect(fhirRequests(from).map((q) => q.path)).toEqual([
      '/fhir/Observation?code=4548-4&_count=2',
    ]);
  });

  it('fits the table into the terminal width', async () => {
    const r = await run(['query', 'Observation', '--limit', '5', '-o', 'table'], { COLUMNS: '80' });
    expect(r.exitCode, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines.length).toBeGreaterThan(5);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(80);
    expect(r.stdout).toContain('…');
  });

  it('prints the server Bundle as JSON when piped, and jq reads it', async () => {
    const r = await run(['query', 'Observation', 'code=4548-4', '_count=2']);
    expect(r.exitCode, r.stderr).toBe(0);
    const b = json<Bundle>(r);
    expect(b).toMatchObject({ resourceType: 'Bundle', type: 'searchset', total: 6 });
    expect(b.entry!.map((e) => e.resource!.id)).toEqual(A1C_IDS);
    expect(b.link!.find((l) => l.relation === 'next')!.url).toContain('_page=2');
    if (hasJq()) {
      const jq = await execa('jq', ['-r', '.entry[].resource.id'], { input: r.stdout });
      expect(jq.stdout.split('\n')).toEqual(A1C_IDS);
    }
  });

  it('`smart query ... | jq` reads valid JSON through a real pipe (one page, --all, a read)', async () => {
    const jq = hasJq();
    // Without jq, a JSON parser at the end of the same pipe still checks the JSON.
    const reader = jq
      ? 'jq -c "[.resourceType, .type, (.entry // [] | length)]"'
      : `"${process.execPath}" -e 'let t="";process.stdin.on("data",d=>t+=d).on("end",()=>{const b=JSON.parse(t);console.log(JSON.stringify([b.resourceType,b.type,(b.entry||[]).length]))})'`;
    const through = (args: string) =>
      execa(
        'bash',
        ['-o', 'pipefail', '-c', `"${process.execPath}" "${BIN}" ${args} | ${reader}`],
        {
          env: { PATH: process.env.PATH, NO_COLOR: '1', ...flow.ws.env, ...flow.env },
          extendEnv: false,
          reject: false,
        },
      );
    const page = await through('query Observation code=4548-4 _count=2');
    expect(page.exitCode, page.stderr).toBe(0);
    expect(JSON.parse(page.stdout)).toEqual(['Bundle', 'searchset', 2]);
    const all = await through('query Observation --all --count 3');
    expect(all.exitCode, all.stderr).toBe(0);
    expect(JSON.parse(all.stdout)).toEqual([
      'Bundle',
      'searchset',
      flow.sandbox.counts.Observation,
    ]);
    const one = await through(`query Patient/${ALICIA}`);
    expect(one.exitCode, one.stderr).toBe(0);
    expect(JSON.parse(one.stdout)).toEqual(['Patient', null, 0]);
  });

  it('--all -o json: one searchset Bundle with every entry, valid for jq', async () => {
    const from = flow.sandbox.requests.length;
    const r = await run(['query', 'Observation', '--all', '--count', '4', '-o', 'json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const b = json<Bundle>(r);
    const total = flow.sandbox.counts.Observation!;
    expect(b.resourceType).toBe('Bundle');
    expect(b.type).toBe('searchset');
    expect(b.total).toBe(total);
    expect(b.entry).toHaveLength(total);
    expect(new Set(b.entry!.map((e) => e.resource!.id)).size).toBe(total);
    expect(fhirRequests(from)).toHaveLength(Math.ceil(total / 4));
    if (hasJq()) {
      // `jq -e` fails on invalid JSON and on a false/null result.
      const jq = await execa('jq', ['-e', `.entry | length == ${total}`], { input: r.stdout });
      expect(jq.stdout).toBe('true');
    } else {
      console.warn('jq not found: the JSON was checked with JSON.parse only');
    }
  });

  it('-o ndjson --all: one resource per line, every page, parsed line by line', async () => {
    const from = flow.sandbox.requests.length;
    const r = await run(['query', 'Observation', '--all', '--count', '4', '-o', 'ndjson']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout.endsWith('\n')).toBe(true);
    const lines = r.stdout.slice(0, -1).split('\n');
    const resources = lines.map((line, i) => {
      try {
        return JSON.parse(line) as Resource;
      } catch {
        throw new Error(`line ${i + 1} is not JSON: ${line}`);
      }
    });
    expect(resources).toHaveLength(flow.sandbox.counts.Observation!);
    expect(resources.every((x) => x.resourceType === 'Observation')).toBe(true);
    const pages = fhirRequests(from);
    expect(pages).toHaveLength(Math.ceil(resources.length / 4));
    // The next links were followed as given: page 2 onwards carry the server's _page.
    expect(pages[1]!.path).toContain('_page=2');
  });

  it('stops quietly, fetching no more pages, when the reader goes away (| head -1)', async () => {
    const from = flow.sandbox.requests.length;
    const r = await execa(
      'bash',
      [
        '-c',
        `"${process.execPath}" "${BIN}" query Observation --all --count 1 -o ndjson | head -1; echo "exit=\${PIPESTATUS[0]}" >&2`,
      ],
      {
        env: { PATH: process.env.PATH, NO_COLOR: '1', ...flow.ws.env, ...flow.env },
        extendEnv: false,
        reject: false,
      },
    );
    expect(r.stderr).toBe('exit=0');
    expect((JSON.parse(r.stdout) as Resource).resourceType).toBe('Observation');
    expect(fhirRequests(from).length).toBeLessThan(flow.sandbox.counts.Observation!);
  });

  it('--limit stops after n resources and fetches no page it does not need', async () => {
    const from = flow.sandbox.requests.length;
    const r = await run(['query', 'Observation', '--limit', '5', '--count', '2', '-o', 'ndjson']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout.trimEnd().split('\n')).toHaveLength(5);
    expect(fhirRequests(from)).toHaveLength(3);

    const from2 = flow.sandbox.requests.length;
    const r2 = await run(['query', 'Observation', '--limit', '3', '-o', 'json']);
    expect(json<Bundle>(r2).entry).toHaveLength(3);
    // Without a page size, --limit asks for just what it needs: one page.
    expect(fhirRequests(from2).map((q) => q.path)).toEqual(['/fhir/Observation?_count=3']);
  });

  it('-o csv: header and the table columns, RFC 4180', async () => {
    const r = await run(['query', 'Patient', '-o', 'csv']);
    expect(r.exitCode, r.stderr).toBe(0);
    const rows = r.stdout.split('\r\n');
    expect(rows[0]).toBe('id,name,gender,birthDate');
    expect(rows).toContain(`${ALICIA},Alicia Kessler,female,1968-03-14`);
    expect(rows.at(-1)).toBe('');
    expect(rows).toHaveLength(flow.sandbox.counts.Patient! + 2);
  });

  it('--columns: FHIRPath expressions with labels, in table and csv', async () => {
    const r = await run([
      'query',
      'Observation',
      'code=4548-4',
      '--limit',
      '2',
      '-o',
      'csv',
      '--columns',
      'id,test=code.coding.first().display,value.ofType(Quantity).value,unit=value.unit',
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toBe(
      'id,test,value.ofType(Quantity).value,unit\r\n' +
        `${A1C_IDS[0]},Hemoglobin A1c/Hemoglobin.total in Blood,2.856519918445372,%\r\n` +
        `${A1C_IDS[1]},Hemoglobin A1c/Hemoglobin.total in Blood,3.1257055258079536,%\r\n`,
    );
    const t = await run(
      ['query', 'Patient', '-o', 'table', '--columns', "family=name.family,name.given.join(' ')"],
      {
        COLUMNS: '200',
      },
    );
    expect(t.stdout).toMatch(/│ family\s+│ name\.given\.join\(' '\)\s+│/);
    expect(t.stdout).toMatch(/│ Kessler\s+│ Alicia\s+│/);
  });

  it('reads Type/id: the resource as JSON, a one-row table', async () => {
    const r = await run(['query', `Patient/${ALICIA}`]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(json<Resource>(r)).toMatchObject({
      resourceType: 'Patient',
      id: ALICIA,
      gender: 'female',
    });
    const t = await run(['query', `Patient/${ALICIA}`, '-o', 'table'], { COLUMNS: '200' });
    expect(t.stdout).toMatch(new RegExp(`│ ${ALICIA} │ Alicia Kessler │ female │ 1968-03-14 │`));
  });

  it('accepts "Type?params" and encodes parameters: repeated names, commas, system|code', async () => {
    const from = flow.sandbox.requests.length;
    const r = await run([
      'query',
      'Observation?code=http://loinc.org|4548-4,http://loinc.org|2339-0',
      `subject=Patient/${ALICIA}`,
      'date=ge2014-01-01',
      'date=lt2018-01-01T00:00:00+00:00',
      '-o',
      'ndjson',
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(
      r.stdout
        .trimEnd()
        .split('\n')
        .map((l) => (JSON.parse(l) as Resource).id),
    ).toEqual([A1C_IDS[0]]);
    // The sandbox logs the query re-encoded; compare what it decoded.
    const path = fhirRequests(from)[0]!.path;
    expect(path.split('?')[0]).toBe('/fhir/Observation');
    expect([...new URLSearchParams(path.split('?')[1])]).toEqual([
      ['code', 'http://loinc.org|4548-4,http://loinc.org|2339-0'],
      ['subject', `Patient/${ALICIA}`],
      ['date', 'ge2014-01-01'],
      ['date', 'lt2018-01-01T00:00:00+00:00'],
    ]);
  });

  it('takes the token from the shared cache: later queries and api calls ask for none', async () => {
    const tokenPosts = () => flow.sandbox.requests.filter((q) => q.path === '/auth/token').length;
    expect((await run(['query', 'Patient', '_count=1'])).exitCode).toBe(0);
    const before = tokenPosts();
    expect((await run(['query', 'Observation', '_count=1', '-o', 'ndjson'])).exitCode).toBe(0);
    expect((await run(['api', 'Patient?_count=1'])).exitCode).toBe(0);
    expect(tokenPosts()).toBe(before);
  });

  it('the Group table', async () => {
    const r = await run(['query', 'Group', '-o', 'table'], { COLUMNS: '200' });
    expect(r.stdout).toMatch(
      /│ diabetes-cohort │ Patients with type 2 diabetes or prediabetes │ person │ true\s+│ 3\s+│/,
    );
    expect(r.stderr).toBe('shown 1 of 1\n');
  });
});

describe('smart query errors', () => {
  it.each([
    [
      ['query', 'Observation', '--columns', 'id,code.coding.first('],
      /--columns.*"code\.coding\.first\("/,
    ],
    [['query', 'Observation', '--columns', 'id,nosuchfn()'], /"nosuchfn\(\)"/],
    [['query', 'Observation', 'code'], /search parameter "code" has no "="/],
    [['query', 'Observation', '=4548-4'], /empty name/],
    [['query', 'observation'], /"observation" is not a resource type/],
    [['query', 'Observation', '--limit', '0'], /--limit "0"/],
    [['query', 'Observation', '--limit', 'ten'], /--limit "ten"/],
    [['query', 'Observation', '--count', '-1'], /--count/],
  ])('%j is a usage error (exit 2) before any request', async (args, message) => {
    const from = flow.sandbox.requests.length;
    const r = await run(args);
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/^error: .*\nhint: /);
    expect(flow.sandbox.requests.length).toBe(from);
  });

  it('404 names the URL (exit 1)', async () => {
    const r = await run(['query', 'Patient/does-not-exist']);
    expect(r.exitCode, r.stderr).toBe(1);
    expect(r.stderr).toContain(
      `error: not found: GET ${flow.sandbox.fhirUrl}/Patient/does-not-exist answered 404`,
    );
    expect(r.stdout).toBe('');
  });

  it('403 says access was denied, with the token scopes and the likely cause (exit 3)', async () => {
    const env = await flow.registerClient('patients-only', { scope: ['system/Patient.read'] });
    const r = await runSmart(['query', 'Observation'], { ws: flow.ws, env });
    expect(r.exitCode, r.stderr).toBe(3);
    expect(r.stderr).toMatch(
      /^error: access denied: GET .*\/fhir\/Observation answered 403: fatal forbidden/,
    );
    expect(r.stderr).toMatch(/hint: the token's scopes are "system\/Patient\.read".*AccessPolicy/);
  });

  it('403 for a client without an AccessPolicy (exit 3)', async () => {
    const env = await flow.registerClient('no-policy', { policy: false });
    const r = await runSmart(['query', 'Patient'], { ws: flow.ws, env });
    expect(r.exitCode, r.stderr).toBe(3);
    expect(r.stderr).toContain('no AccessPolicy');
  });

  it('a FHIR server that cannot be reached names host:port (exit 4)', async () => {
    // Another process may take the freed port in between: try a few.
    let r: Awaited<ReturnType<typeof run>> | undefined;
    let port = 0;
    for (let attempt = 0; attempt < 3 && r?.exitCode !== 4; attempt++) {
      port = await closedPort();
      r = await run(['query', 'Patient'], {
        SMART_TOKEN_URL: flow.sandbox.tokenUrl,
        SMART_FHIR_URL: `http://127.0.0.1:${port}/fhir`,
        SMART_BASE_URL: `http://127.0.0.1:${port}`,
      });
    }
    expect(r!.exitCode, r!.stderr).toBe(4);
    expect(r!.stderr).toContain(`error: cannot connect to 127.0.0.1:${port}: connection refused`);
  });
});

describe('smart query against a misbehaving server', () => {
  let stub: StubServer;
  const runStub = (args: string[]) => runSmart(args, { ws: flow.ws, env: stub.env });
  const patient = (id: string) => ({
    resource: { resourceType: 'Patient', id },
    search: { mode: 'match' },
  });

  beforeAll(async () => {
    stub = await startStubServer(flow.ws, (req, res, origin) => {
      const path = req.url;
      if (path.startsWith('/fhir/Unauthorized'))
        return sendJson(res, 401, { resourceType: 'OperationOutcome', issue: [] });
      if (path.startsWith('/fhir/Observation?precise'))
        // Pretty-printed, as some servers send it, with decimals that end in 0.
        return sendJson(
          res,
          200,
          `{
  "resourceType": "Bundle",
  "type": "searchset",
  "total": 2,
  "entry": [
    { "resource": { "resourceType": "Observation", "id": "a", "valueQuantity": { "value": 1.50 } }, "search": { "mode": "match" } },
    { "resource": { "resourceType": "Observation", "id": "b", "valueQuantity": { "value": 7 } }, "search": { "mode": "match" } }
  ]
}`,
        );
      if (path === '/fhir/Observation/precise')
        return sendJson(
          res,
          200,
          '{"resourceType":"Observation","id":"precise","valueQuantity":{"value":1.50,"unit":"mmol/L"},"note":[{"text":"caf\\u00e9"}]}',
        );
      if (path.startsWith('/fhir/LongHtml'))
        return sendJson(res, 502, `<html>${'x'.repeat(300)}</html>`, 'text/html; charset=utf-8');
      if (path.startsWith('/fhir/Html'))
        return sendJson(res, 200, '<html><body>Please log in</body></html>', 'text/html');
      if (path.startsWith('/fhir/Echo'))
        return sendJson(res, 200, { resourceType: 'Bundle', type: 'searchset' });
      if (path.startsWith('/fhir/Broken'))
        return sendJson(res, 500, {
          resourceType: 'OperationOutcome',
          issue: [{ severity: 'error', code: 'exception', diagnostics: 'database is down' }],
        });
      if (path === '/fhir/Patient')
        // Like Aidbox with BOX_WEB_BASE_URL set to another host, and no entry on an empty page.
        return sendJson(res, 200, {
          resourceType: 'Bundle',
          type: 'searchset',
          link: [{ relation: 'next', url: `${origin}/fhir/Patient?page=2&opaque=x%7Cy` }],
        });
      if (path === '/fhir/Patient?page=2&opaque=x%7Cy')
        return sendJson(res, 200, {
          resourceType: 'Bundle',
          type: 'searchset',
          entry: [
            patient('p1'),
            { resource: { resourceType: 'Organization', id: 'o' }, search: { mode: 'include' } },
          ],
          link: [{ relation: 'next', url: 'https://elsewhere.example/fhir/Patient?page=3' }],
        });
      return sendJson(res, 404, {
        resourceType: 'OperationOutcome',
        issue: [{ severity: 'error', code: 'not-found' }],
      });
    });
  });
  afterAll(() => stub?.close());

  it('follows a next link after a page without entry, and refuses one to another origin (exit 1)', async () => {
    const from = stub.requests.length;
    const r = await runStub(['query', 'Patient', '--all', '-o', 'ndjson']);
    expect(r.exitCode, r.stderr).toBe(1);
    // What came before the bad link was written.
    expect(
      r.stdout
        .trimEnd()
        .split('\n')
        .map((l) => (JSON.parse(l) as Resource).id),
    ).toEqual(['p1', 'o']);
    expect(r.stderr).toMatch(
      /error: refusing to follow the next link to https:\/\/elsewhere\.example/,
    );
    expect(r.stderr).toMatch(/hint: .*BOX_WEB_BASE_URL/);
    const paths = stub.requests.slice(from).map((q) => q.url);
    expect(paths).toContain('/fhir/Patient?page=2&opaque=x%7Cy');
    expect(paths.some((p) => p.includes('page=3'))).toBe(false);
    // The token only ever went to the stub.
    expect(
      stub.requests
        .slice(from)
        .filter((q) => q.url.startsWith('/fhir/'))
        .every((q) => q.headers.authorization?.startsWith('Bearer stub-token-')),
    ).toBe(true);
  });

  it('sends parameters with |, commas, :modifiers literal and + encoded, in order', async () => {
    const from = stub.requests.length;
    const r = await runStub([
      'query',
      'Echo?_has:Observation:patient:code=1234',
      'code=http://loinc.org|4548-4,2339-0',
      'name:exact=van der Berg',
      'date=ge2020-01-01T00:00:00+01:00',
      'date=le2021',
      'note=a=b&c',
      '-o',
      'ndjson',
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    expect(stub.requests.slice(from).find((q) => q.url.startsWith('/fhir/'))!.url).toBe(
      '/fhir/Echo?_has:Observation:patient:code=1234&code=http:%2F%2Floinc.org|4548-4,2339-0&name:exact=van%20der%20Berg&date=ge2020-01-01T00:00:00%2B01:00&date=le2021&note=a%3Db%26c',
    );
  });

  it('401 even after a new token: exit 3, one retry', async () => {
    const from = stub.requests.length;
    const r = await runStub(['query', 'Unauthorized']);
    expect(r.exitCode, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/answered 401 even with a new token/);
    const seen = stub.requests.slice(from).map((q) => `${q.url} ${q.headers.authorization ?? ''}`);
    const fhir = seen.filter((s) => s.startsWith('/fhir/'));
    expect(fhir).toHaveLength(2);
    expect(fhir[0]).not.toBe(fhir[1]);
  });

  it('a non-JSON body names the content type and its first characters (exit 1)', async () => {
    const r = await runStub(['query', 'Html']);
    expect(r.exitCode, r.stderr).toBe(1);
    expect(r.stderr).toMatch(
      /but got text\/html \(HTTP 200\): <html><body>Please log in<\/body><\/html>/,
    );
  });

  it('a read prints the resource as the server sent it when piped (1.50 stays 1.50)', async () => {
    const r = await runStub(['query', 'Observation/precise']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toBe(
      '{"resourceType":"Observation","id":"precise","valueQuantity":{"value":1.50,"unit":"mmol/L"},"note":[{"text":"caf\\u00e9"}]}\n',
    );
    const nd = await runStub(['query', 'Observation/precise', '-o', 'ndjson']);
    expect(nd.stdout).toContain('"value":1.50');
    expect(nd.stdout.trimEnd().split('\n')).toHaveLength(1);
  });

  it('searches keep decimals as the server wrote them: -o ndjson and --all -o json', async () => {
    const nd = await runStub(['query', 'Observation', 'precise=1', '-o', 'ndjson']);
    expect(nd.exitCode, nd.stderr).toBe(0);
    expect(nd.stdout).toBe(
      '{"resourceType":"Observation","id":"a","valueQuantity":{"value":1.50}}\n' +
        '{"resourceType":"Observation","id":"b","valueQuantity":{"value":7}}\n',
    );
    const all = await runStub(['query', 'Observation', 'precise=1', '--all', '-o', 'json']);
    expect(all.exitCode, all.stderr).toBe(0);
    expect(all.stdout).toContain(
      '{"resource":{"resourceType":"Observation","id":"a","valueQuantity":{"value":1.50}},"search":{"mode":"match"}}',
    );
    expect(JSON.parse(all.stdout).entry).toHaveLength(2);
  });

  it('a long non-JSON body is quoted by its first 200 characters only', async () => {
    const r = await runStub(['query', 'LongHtml']);
    expect(r.exitCode, r.stderr).toBe(1);
    const quoted = `<html>${'x'.repeat(194)}…`;
    expect(r.stderr).toContain(`text/html: ${quoted}\n`);
    expect(r.stderr).not.toContain('x'.repeat(195));
  });

  it('an OperationOutcome error is summarized in one line (exit 1)', async () => {
    const r = await runStub(['query', 'Broken']);
    expect(r.exitCode, r.stderr).toBe(1);
    expect(r.stderr).toMatch(
      /^error: GET .*\/fhir\/Broken answered 500: error exception: database is down\n/,
    );
  });
});
