import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cancelExport } from '../../../../src/core/export/cancel.js';
import type { ExportState } from '../../../../src/core/export/types.js';
import { tempDir } from '../../../helpers/tmp.js';
import { reply } from '../http/harness.js';
import { OO, useSessionServer } from './helpers.js';

const { srv, session } = useSessionServer();

/** An export directory whose export.json points at the test server's status URL. */
function exportDir(statusPath = '/fhir/status/7?sig=s3cr3t'): string {
  const dir = tempDir('smart-export-cancel-');
  const state: ExportState = {
    version: 1,
    statusUrl: `${srv.base}${statusPath}`,
    kickoff: {
      url: `${srv.base}/fhir/$export`,
      method: 'GET',
      params: { level: { kind: 'system' }, method: 'GET' },
    },
    startedAt: '2024-06-01T00:00:00.000Z',
    status: 'in-progress',
  };
  writeFileSync(join(dir, 'export.json'), JSON.stringify(state));
  return dir;
}
const saved = (dir: string) =>
  JSON.parse(readFileSync(join(dir, 'export.json'), 'utf8')) as ExportState;

describe('cancelExport', () => {
  it('202: DELETEs the saved status URL with the token and marks the export cancelled', async () => {
    srv.handler = reply(202);
    const dir = exportDir();
    const r = await cancelExport({ session, outDir: dir });
    expect(srv.hits).toHaveLength(1);
    expect(srv.hits[0]).toMatchObject({
      method: 'DELETE',
      url: '/fhir/status/7?sig=s3cr3t',
      headers: expect.objectContaining({
        authorization: 'Bearer test-token',
        accept: 'application/fhir+json',
      }),
    });
    expect(r.status).toBe(202);
    expect(r.outDir).toBe(dir);
    // The result is printed: the status URL's query secret is not.
    expect(r.statusUrl).not.toContain('s3cr3t');
    expect(r.statusUrl).toContain('/fhir/status/7');
    expect(saved(dir).status).toBe('cancelled');
  });

  it('another 2xx (200, 204) is a cancel too', async () => {
    for (const status of [200, 204]) {
      srv.handler = reply(status);
      const dir = exportDir();
      expect((await cancelExport({ session, outDir: dir })).status).toBe(status);
      expect(saved(dir).status).toBe('cancelled');
    }
  });

  it.each([404, 410])('%i: no such export (exit 1), the state left as it was', async (status) => {
    srv.handler = reply(
      status,
      { 'content-type': 'application/fhir+json' },
      JSON.stringify(OO('not-found')),
    );
    const dir = exportDir();
    const e = await cancelExport({ session, outDir: dir }).catch((x: unknown) => x);
    expect(e).toMatchObject({
      kind: 'fhir',
      exitCode: 1,
      status,
      code: 'no_such_export',
      message: expect.stringMatching(new RegExp(`^no such export .*answered ${status}$`)),
      hint: expect.stringContaining('nothing to cancel'),
    });
    expect((e as Error).message).not.toContain('s3cr3t');
    expect(saved(dir).status).toBe('in-progress');
  });

  it("any other status is the server's error, worded by the session; nothing is marked", async () => {
    srv.handler = reply(
      500,
      { 'content-type': 'application/fhir+json' },
      JSON.stringify(OO('exception', 'the job queue is down')),
    );
    const dir = exportDir();
    await expect(cancelExport({ session, outDir: dir })).rejects.toMatchObject({
      status: 500,
      message: expect.stringMatching(/^DELETE .* answered 500: .*the job queue is down/),
    });
    srv.handler = reply(
      403,
      { 'content-type': 'application/fhir+json' },
      JSON.stringify(OO('forbidden')),
    );
    await expect(cancelExport({ session, outDir: dir })).rejects.toMatchObject({
      kind: 'auth',
      exitCode: 3,
    });
    expect(saved(dir).status).toBe('in-progress');
  });

  it('a directory without export.json: a usage error (exit 2), no request', async () => {
    const dir = tempDir('smart-export-cancel-');
    await expect(cancelExport({ session, outDir: dir })).rejects.toMatchObject({
      exitCode: 2,
      code: 'no_export_state',
    });
    expect(srv.hits).toHaveLength(0);
  });

  it('a status URL on another origin never gets the token: refused before any request', async () => {
    const dir = tempDir('smart-export-cancel-');
    writeFileSync(
      join(dir, 'export.json'),
      JSON.stringify({
        version: 1,
        statusUrl: 'http://127.0.0.2:9/fhir/status/1',
        kickoff: { url: `${srv.base}/fhir/$export`, method: 'GET', params: {} },
        startedAt: '2024-06-01T00:00:00.000Z',
        status: 'in-progress',
      }),
    );
    await expect(cancelExport({ session, outDir: dir })).rejects.toMatchObject({
      code: 'foreign_origin',
    });
    expect(srv.hits).toHaveLength(0);
  });

  it('stops when the signal aborts', async () => {
    const controller = new AbortController();
    srv.handler = () => controller.abort(new Error('interrupted by the test')); // never answers
    await expect(
      cancelExport({ session, outDir: exportDir(), signal: controller.signal }),
    ).rejects.toThrow('interrupted by the test');
  });
});
