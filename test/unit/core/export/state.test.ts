import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DirectorySink } from '../../../../src/core/export/sinks/directory.js';
import {
  MANIFEST_FILE,
  STATE_FILE,
  StateFile,
  asSink,
  readState,
  stateFilePath,
} from '../../../../src/core/export/state.js';
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

describe('export.json', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  const state: ExportState = {
    version: 1,
    statusUrl: 'https://fhir.test/fhir/$export-status/1',
    kickoff: {
      url: 'https://fhir.test/fhir/Group/g1/$export?_type=Patient',
      method: 'POST',
      params: {
        level: { kind: 'group', id: 'g1' },
        method: 'POST',
        types: ['Patient'],
        since: '2024-06-01T00:00:00Z',
        typeFilters: ['Patient?gender=female'],
        outputFormat: 'application/fhir+ndjson',
      },
    },
    startedAt: '2024-06-01T00:00:00.000Z',
    status: 'complete',
    transactionTime: '2024-06-01T00:00:00Z',
    requiresAccessToken: true,
    completedAt: '2024-06-01T00:10:00.000Z',
    lastError: 'once upon a time',
    files: [
      {
        kind: 'output',
        type: 'Patient',
        url: 'https://fhir.test/files/1',
        name: 'Patient.000.ndjson',
        count: 3,
        status: 'done',
        bytes: 120,
        resources: 3,
        completedAt: '2024-06-01T00:09:00.000Z',
      },
      {
        kind: 'error',
        type: 'OperationOutcome',
        url: 'https://fhir.test/files/e',
        name: 'error/OperationOutcome.000.ndjson',
        status: 'pending',
      },
    ],
  };

  it('round-trips every field, through a path or a sink, as readable JSON', async () => {
    const dir = tmp();
    await new StateFile(new DirectorySink(dir), structuredClone(state)).flush();
    expect(await readState(dir)).toEqual(state);
    expect(await readState(new DirectorySink(dir))).toEqual(state);
    const text = readFileSync(stateFilePath(dir), 'utf8');
    expect(text).toBe(JSON.stringify(state, null, 2) + '\n');
    expect(stateFilePath(dir)).toBe(join(dir, STATE_FILE));
    expect([STATE_FILE, MANIFEST_FILE]).toEqual(['export.json', 'manifest.json']);
  });

  it('asSink: a path becomes a directory sink, a sink stays itself', () => {
    const sink = new DirectorySink('/tmp/x');
    expect(asSink(sink)).toBe(sink);
    expect(asSink('/tmp/y')).toMatchObject({ kind: 'directory', location: '/tmp/y' });
    expect(new StateFile('/tmp/y', state).path).toBe(join('/tmp/y', 'export.json'));
  });

  it.each([
    ['null', 'null', 'expected a JSON object'],
    ['a number', '42', 'expected a JSON object'],
    ['a list', '[]', 'unsupported version undefined (expected 1)'],
    [
      'no version',
      JSON.stringify({ ...state, version: undefined }),
      'unsupported version undefined',
    ],
    ['version "1"', JSON.stringify({ ...state, version: '1' }), 'unsupported version "1"'],
    [
      'no statusUrl',
      JSON.stringify({ ...state, statusUrl: undefined }),
      'statusUrl: missing or not an http(s) URL',
    ],
    [
      'a file: statusUrl',
      JSON.stringify({ ...state, statusUrl: 'file:///etc/passwd' }),
      'statusUrl: missing or not an http(s) URL',
    ],
    ['no kickoff', JSON.stringify({ ...state, kickoff: undefined }), 'kickoff: missing'],
    [
      'a kickoff without url',
      JSON.stringify({ ...state, kickoff: { method: 'GET' } }),
      'kickoff: missing',
    ],
    ['files not a list', JSON.stringify({ ...state, files: {} }), 'files: expected a list'],
    [
      'a file without url',
      JSON.stringify({ ...state, files: [{ name: 'a.ndjson' }] }),
      'files[0]: expected name and url',
    ],
    ['a null file', JSON.stringify({ ...state, files: [null] }), 'files[0]: expected name and url'],
    [
      'an absolute file name',
      JSON.stringify({
        ...state,
        files: [state.files![0], { ...state.files![0], name: '/etc/passwd' }],
      }),
      'files[1].name: "/etc/passwd" leaves the export directory',
    ],
    [
      'a ../ file name',
      JSON.stringify({ ...state, files: [{ ...state.files![0], name: 'error/../../x' }] }),
      'leaves the export directory',
    ],
  ])(
    '%s: one clear usage error (exit 2) naming the file and the problem',
    async (_what, text, problem) => {
      const dir = tmp();
      writeFileSync(join(dir, 'export.json'), text);
      const e = await readState(dir).catch((x: unknown) => x);
      expect(e).toMatchObject({
        kind: 'usage',
        exitCode: 2,
        code: 'bad_export_state',
        message: expect.stringMatching(new RegExp(`^${join(dir, 'export.json')}: .*`)),
        hint: 'the file was edited or comes from another tool; start a new export',
      });
      expect((e as Error).message).toContain(problem);
      expect((e as Error).message).not.toContain('\n');
    },
  );

  it('a truncated file: not valid JSON, start a new export', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'export.json'), JSON.stringify(state).slice(0, 100));
    await expect(readState(dir)).rejects.toMatchObject({
      kind: 'usage',
      code: 'bad_export_state',
      message: `${join(dir, 'export.json')} is not valid JSON`,
      hint: 'the file was edited or truncated; start a new export',
    });
  });

  it('touch() writes by itself once the interval has passed, once for a burst', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const dir = tmp();
    const f = new StateFile(dir, structuredClone(state), 1_000);
    await f.flush();
    f.state.status = 'downloading';
    f.touch();
    f.state.lastError = 'second change';
    f.touch();
    expect((await readState(dir)).status).toBe('complete');
    vi.advanceTimersByTime(1_000);
    // The timer flushed: settle() has nothing left to write, it waits for that write.
    await f.settle();
    expect(await readState(dir)).toMatchObject({
      status: 'downloading',
      lastError: 'second change',
    });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('writes in order: the last flush wins, and a failed write does not block the next', async () => {
    const dir = join(tmp(), 'out');
    writeFileSync(dir, ''); // a file where the directory should be
    const f = new StateFile(dir, structuredClone(state));
    await expect(f.flush()).rejects.toThrow();
    rmSync(dir);
    const writes = ['in-progress', 'downloading', 'failed'].map((status) => {
      f.state.status = status as ExportState['status'];
      return f.flush();
    });
    await Promise.all(writes);
    expect((await readState(dir)).status).toBe('failed');
  });
});
