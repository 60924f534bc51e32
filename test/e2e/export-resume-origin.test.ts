import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeWorkspace, runSmart, type Workspace } from '../helpers/cli.js';
import { startBulkStub, type BulkStub } from '../helpers/bulk-stub.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * `export --resume` (and `export cancel`) of an export started with `--fhir-url` alone (issue 11,
 * item 13): the server is the one export.json names, not a refusal with a misleading hint.
 */

let ws: Workspace;
let stub: BulkStub;
beforeAll(async () => {
  ws = makeWorkspace();
  // The first status poll says "still working, come back in 30 s": `--wait 1` gives up on it.
  stub = await startBulkStub(ws, {
    status: (n, res) => {
      if (n !== 1) return false;
      res.writeHead(202, { 'retry-after': '30', 'x-progress': 'working' }).end();
      return true;
    },
  });
});
afterAll(() => stub?.close());

/** The stub's token URL, client and key, but no server URL: only --fhir-url says where. */
function envWithoutServer(extra: Record<string, string> = {}) {
  const { SMART_BASE_URL: _b, SMART_FHIR_URL: _f, ...rest } = stub.env;
  return { ...rest, ...extra };
}

describe('smart export --resume of an export started with --fhir-url only', () => {
  it('uses the FHIR base saved in export.json; a FHIR URL elsewhere is refused naming the right one', async () => {
    const dir = join(tempDir('smart-resume-origin-'), 'out');
    const fhir = `${stub.url}/fhir`;
    const first = await runSmart(['export', '--fhir-url', fhir, '--out', dir, '--wait', '1'], {
      ws,
      env: envWithoutServer(),
    });
    expect(first.exitCode, first.stderr).toBe(4);
    expect(existsSync(join(dir, 'export.json'))).toBe(true);

    // Another server configured (environment): its token must not go to this one.
    const other = await runSmart(['export', '--resume', dir], {
      ws,
      env: envWithoutServer({ SMART_FHIR_URL: 'http://127.0.0.1:9/fhir' }),
    });
    expect(other.exitCode, other.stderr).toBe(2);
    expect(other.stderr).toContain(
      `error: the export in ${dir} was started on ${stub.url} (export.json), but the FHIR URL in use is http://127.0.0.1:9/fhir (from SMART_FHIR_URL)`,
    );
    expect(other.stderr).toContain(`hint: give that server again: --fhir-url ${fhir}`);

    // Nothing configured: the saved server it is.
    const r = await runSmart(['export', '--resume', dir, '-o', 'json'], {
      ws,
      env: envWithoutServer(),
    });
    expect(r.exitCode, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout) as { resourcesByType: Record<string, number> };
    expect(summary.resourcesByType).toEqual({ Patient: 1 });
  });
});
