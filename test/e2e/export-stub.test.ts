import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeWorkspace, runSmart, testClock, type Workspace } from '../helpers/cli.js';
import { sendJson, startStubServer, type StubServer } from './query-flow.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * smart export against a scripted Bulk Data server, for what the sandbox does not do: a
 * Retry-After given as an HTTP date, deleted[] files, a file whose line count differs from the
 * manifest's.
 */

const patient = (id: string) => JSON.stringify({ resourceType: 'Patient', id }) + '\n';

let ws: Workspace;
let stub: StubServer;
let polls = 0;
const pollTimes: number[] = [];
// The stub's time and the CLI's: the CLI's waits move it instead of taking time.
const clock = testClock();

beforeAll(async () => {
  ws = makeWorkspace();
  stub = await startStubServer(ws, (req, res, origin) => {
    const url = req.url;
    if (url.startsWith('/fhir/$export')) {
      res.writeHead(202, { 'content-location': `${origin}/fhir/status/job-1` }).end();
      return;
    }
    if (url === '/fhir/status/job-1') {
      pollTimes.push(clock.now());
      if (polls++ === 0) {
        // An HTTP date 2 s ahead (second resolution): the next poll comes 1-2 s later.
        res
          .writeHead(202, {
            'retry-after': new Date(clock.now() + 2000).toUTCString(),
            'x-progress': 'counting patients',
          })
          .end();
        return;
      }
      return sendJson(
        res,
        200,
        {
          transactionTime: '2024-06-01T00:00:00Z',
          request: `${origin}/fhir/$export`,
          requiresAccessToken: true,
          output: [
            { type: 'Patient', url: `${origin}/files/patients`, count: 2 },
            // The server says 3, the file holds 2.
            { type: 'Patient', url: `${origin}/files/short`, count: 3 },
          ],
          deleted: [{ type: 'Bundle', url: `${origin}/files/deleted` }],
          error: [],
        },
        'application/json',
      );
    }
    if (url === '/files/patients' || url === '/files/short') {
      res.writeHead(200, { 'content-type': 'application/fhir+ndjson' });
      res.end(patient(`${url}-a`) + patient(`${url}-b`));
      return;
    }
    if (url === '/files/deleted') {
      res.writeHead(200, { 'content-type': 'application/fhir+ndjson' });
      res.end(
        JSON.stringify({
          resourceType: 'Bundle',
          type: 'transaction',
          entry: [{ request: { method: 'DELETE', url: 'Patient/gone' } }],
        }) + '\n',
      );
      return;
    }
    sendJson(res, 404, { resourceType: 'OperationOutcome', issue: [] });
  });
});
afterAll(() => stub?.close());

describe('smart export against a scripted Bulk Data server', () => {
  it('honours an HTTP-date Retry-After, saves deleted[], and fails on a count mismatch, keeping the file', async () => {
    const dir = join(tempDir('smart-export-stub-'), 'out');
    const r = await runSmart(['export', '--out', dir], { ws, env: stub.env, clock });
    expect(r.exitCode, r.stderr).toBe(1);
    expect(pollTimes).toHaveLength(2);
    expect(pollTimes[1]! - pollTimes[0]!).toBeGreaterThanOrEqual(900);
    expect(r.stderr).toMatch(/^status: counting patients/m);
    expect(r.stderr).toMatch(
      /retrying Patient\.001\.ndjson \(attempt 2\): 2 lines, the manifest says 3/,
    );
    expect(r.stderr).toMatch(
      /^error: 1 file\(s\) do not hold the number of resources the manifest gives: Patient\.001\.ndjson \(2 of 3\)$/m,
    );
    expect(r.stderr).toContain(`smart export --resume ${dir}`);
    // Both output files and the deleted[] file are kept, whole.
    expect(readFileSync(join(dir, 'Patient.001.ndjson'), 'utf8').trim().split('\n')).toHaveLength(
      2,
    );
    expect(existsSync(join(dir, 'Patient.000.ndjson'))).toBe(true);
    expect(readFileSync(join(dir, 'deleted', 'Bundle.000.ndjson'), 'utf8')).toContain(
      'Patient/gone',
    );
    // The summary still goes to stdout, and names the mismatch.
    const summary = JSON.parse(r.stdout) as {
      files: Array<{ kind: string; file: string }>;
      mismatches: Array<{ file: string; expected: number; actual: number }>;
    };
    expect(summary.mismatches).toEqual([{ file: 'Patient.001.ndjson', expected: 3, actual: 2 }]);
    expect(summary.files.map((f) => `${f.kind} ${f.file}`)).toEqual([
      'output Patient.000.ndjson',
      'output Patient.001.ndjson',
      'deleted deleted/Bundle.000.ndjson',
    ]);
  });
});
