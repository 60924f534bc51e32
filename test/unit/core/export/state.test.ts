import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { StateFile, readState } from '../../../../src/core/export/state.js';
import type { ExportState } from '../../../../src/core/export/types.js';
import { tempDir } from '../../../helpers/tmp.js';

const tmp = () => tempDir('smart-export-unit-');

describe('state file', () => {
  const state: ExportState = {
    version: 1,
    statusUrl: 'http://fhir.test/fhir/$export-status/1',
    kickoff: {
      url: 'http://fhir.test/fhir/$export',
      method: 'GET',
      params: { level: { kind: 'system' }, method: 'GET' },
    },
    startedAt: '2024-06-01T00:00:00.000Z',
    status: 'in-progress',
  };
  it('round-trips through export.json, private to the user', async () => {
    const dir = tmp();
    const f = new StateFile(dir, structuredClone(state));
    await f.flush();
    expect(await readState(dir)).toEqual(state);
    expect(statSync(join(dir, 'export.json')).mode & 0o777).toBe(0o600);
  });
  it('coalesces touches and settles the last state', async () => {
    const dir = tmp();
    const f = new StateFile(dir, structuredClone(state), 10_000);
    await f.flush();
    f.state.status = 'downloading';
    f.touch();
    f.state.status = 'complete';
    f.touch();
    expect((await readState(dir)).status).toBe('in-progress');
    await f.settle();
    expect((await readState(dir)).status).toBe('complete');
  });
  it('names the problem in a missing or bad file', async () => {
    const dir = tmp();
    await expect(readState(dir)).rejects.toMatchObject({
      kind: 'usage',
      code: 'no_export_state',
      message: expect.stringContaining('not an export directory'),
    });
    writeFileSync(join(dir, 'export.json'), '{oops');
    await expect(readState(dir)).rejects.toMatchObject({ code: 'bad_export_state' });
    writeFileSync(join(dir, 'export.json'), JSON.stringify({ ...state, version: 9 }));
    await expect(readState(dir)).rejects.toThrow(/unsupported version 9/);
    writeFileSync(
      join(dir, 'export.json'),
      JSON.stringify({ ...state, files: [{ name: '../x', url: 'http://x' }] }),
    );
    await expect(readState(dir)).rejects.toThrow(/leaves the export directory/);
  });
});
