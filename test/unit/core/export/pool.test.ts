import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ServerResponse } from 'node:http';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createHttpClient, type HttpClient } from '../../../../src/core/http/index.js';
import { makeRun, type ExportRunOptions } from '../../../../src/core/export/options.js';
import { downloadPending } from '../../../../src/core/export/pool.js';
import { StateFile } from '../../../../src/core/export/state.js';
import type {
  ExportEvent,
  ExportSession,
  ExportState,
  FileKind,
  FileState,
  Manifest,
} from '../../../../src/core/export/types.js';
import { tempDir } from '../../../helpers/tmp.js';
import { useServer } from '../http/harness.js';
import { httpSession } from './helpers.js';

/**
 * downloadPending against a file server on 127.0.0.1 that holds each file after its first line
 * until the test lets it finish: how many run at once, what a failure or an abort stops.
 */

const line = (i: number) => JSON.stringify({ resourceType: 'Patient', id: `p${i}` }) + '\n';

const srv = useServer();
let http: HttpClient;
beforeAll(async () => {
  http = await createHttpClient({ retries: 0 });
});

let inFlight = 0;
let maxInFlight = 0;
const held: Array<() => void> = [];
/** Paths asked for, in order. */
let asked: string[] = [];
/** Once true, files are answered whole at once. */
let flowing = false;

beforeEach(() => {
  inFlight = 0;
  maxInFlight = 0;
  held.length = 0;
  asked = [];
  flowing = false;
  srv.handler = (req, res) => serveFile(req.url ?? '/', res);
});

/** `/files/<n>`: three lines; the last two wait in `held` unless `flowing`. */
function serveFile(path: string, res: ServerResponse) {
  asked.push(path);
  inFlight++;
  maxInFlight = Math.max(maxInFlight, inFlight);
  res.writeHead(200, { 'content-type': 'application/fhir+ndjson' });
  res.write(line(1));
  const finish = () => {
    inFlight--;
    res.end(line(2) + line(3));
  };
  if (flowing) finish();
  else held.push(finish);
}

/**
 * Let one held file finish once `target` are in flight; all of them once the last of `total` has
 * started. Downloads overlap as much as the client lets them, with no timer.
 */
function releaseHeld(target: number, total: number) {
  while (held.length && (inFlight >= target || asked.length === total)) {
    held.shift()!();
    if (asked.length < total) break;
  }
}

function releaseAll() {
  flowing = true;
  while (held.length) held.shift()!();
}

function setup(
  n: number,
  extra: Partial<ExportRunOptions> = {},
  kinds: (i: number) => { kind: FileKind; count?: number } = () => ({
    kind: 'output',
    count: 3,
  }),
  session: ExportSession = httpSession(
    () => srv.base,
    () => http,
  ),
) {
  const outDir = tempDir('smart-export-pool-');
  const events: ExportEvent[] = [];
  const run = makeRun({
    session,
    http: async () => http,
    outDir,
    onEvent: (e) => events.push(e),
    sleep: async () => undefined,
    backoffMs: 1,
    ...extra,
  });
  const files: FileState[] = Array.from({ length: n }, (_, i) => ({
    ...kinds(i),
    type: 'Patient',
    url: `${srv.base}/files/${i}`,
    name: `Patient.${String(i).padStart(3, '0')}.ndjson`,
    status: 'pending',
  }));
  const state: ExportState = {
    version: 1,
    statusUrl: `${srv.base}/fhir/status/1`,
    kickoff: {
      url: `${srv.base}/fhir/$export`,
      method: 'GET',
      params: { level: { kind: 'system' }, method: 'GET' },
    },
    startedAt: new Date().toISOString(),
    status: 'downloading',
    files,
  };
  const file = new StateFile(run.sink, state, 60_000);
  const manifest: Manifest = {
    transactionTime: '2024-06-01T00:00:00Z',
    request: `${srv.base}/fhir/$export`,
    requiresAccessToken: true,
    output: files.map((f) => ({ type: f.type, url: f.url })),
    error: [],
  };
  const go = () => downloadPending(run, file, manifest, 'manifest-url', files, false);
  return { run, file, files, events, outDir, go };
}

describe('downloadPending', () => {
  it('runs at most `parallel` downloads at once, and records each file as done', async () => {
    const { files, events, outDir, file, go } = setup(7, { parallel: 3 });
    srv.handler = (req, res) => {
      serveFile(req.url ?? '/', res);
      releaseHeld(3, 7);
    };
    expect(await go()).toBeUndefined();
    await file.settle();
    expect(maxInFlight).toBe(3);
    expect(asked).toHaveLength(7);
    expect(files.map((f) => f.status)).toEqual(Array(7).fill('done'));
    expect(files[0]).toMatchObject({ resources: 3, bytes: line(1).length * 3 });
    expect(Date.parse(files[6]!.completedAt!)).not.toBeNaN();
    expect(events.filter((e) => e.event === 'file-done')).toHaveLength(7);
    expect(events.find((e) => e.event === 'file-done')).toMatchObject({
      kind: 'output',
      resourceType: 'Patient',
      resources: 3,
    });
    // The StateFile was told: its settle() wrote the figures.
    const saved = JSON.parse(readFileSync(join(outDir, 'export.json'), 'utf8')) as ExportState;
    expect(saved.files!.every((f) => f.status === 'done')).toBe(true);
  });

  it('defaults to 4 at once, and never starts more workers than files', async () => {
    const eight = setup(8);
    srv.handler = (req, res) => {
      serveFile(req.url ?? '/', res);
      releaseHeld(4, 8);
    };
    await eight.go();
    expect(maxInFlight).toBe(4);

    maxInFlight = 0;
    asked = [];
    const two = setup(2, { parallel: 6 });
    srv.handler = (req, res) => {
      serveFile(req.url ?? '/', res);
      if (asked.length === 2) releaseAll();
    };
    await two.go();
    expect(maxInFlight).toBe(2);
    expect(two.files.map((f) => f.status)).toEqual(['done', 'done']);
  });

  it('nothing pending: no request, no failure', async () => {
    const { run, file } = setup(0);
    const manifest: Manifest = {
      transactionTime: '',
      request: '',
      requiresAccessToken: false,
      output: [],
      error: [],
    };
    expect(await downloadPending(run, file, manifest, 'm', [], false)).toBeUndefined();
    expect(asked).toEqual([]);
  });

  it('after the first failure no new file starts; the one in flight finishes', async () => {
    const base = httpSession(
      () => srv.base,
      () => http,
    );
    // Files/1 lives on another origin: the session refuses to send it the token. The file in
    // flight is let go only then, so it ends after the failure whatever the machine's load.
    const session: ExportSession = {
      ...base,
      request: (url, init, options) => {
        try {
          return base.request(url, init, options);
        } finally {
          if (url.includes('/files/1')) releaseAll();
        }
      },
    };
    const { files, go } = setup(5, { parallel: 2 }, undefined, session);
    files[1]!.url = 'http://127.0.0.2:9/files/1';
    const failure = await go();
    expect(failure).toMatchObject({ code: 'foreign_origin' });
    expect(asked).toEqual(['/files/0']);
    expect(files.map((f) => f.status)).toEqual([
      'done',
      'pending',
      'pending',
      'pending',
      'pending',
    ]);
  });

  it('an abort ends it without a failure: the caller reads the signal', async () => {
    const controller = new AbortController();
    const { files, go } = setup(4, { parallel: 2, signal: controller.signal });
    srv.handler = (req, res) => {
      serveFile(req.url ?? '/', res);
      if (asked.length === 2) controller.abort(new Error('interrupted'));
    };
    expect(await go()).toBeUndefined();
    expect(asked).toEqual(['/files/0', '/files/1']);
    expect(files.every((f) => f.status === 'pending')).toBe(true);
  });

  it('an output file whose count differs is a mismatch; an error[] file is kept as sent', async () => {
    flowing = true;
    const { files, events, go } = setup(2, {}, (i) =>
      i === 0 ? { kind: 'output', count: 5 } : { kind: 'error', count: 1 },
    );
    expect(await go()).toBeUndefined();
    expect(files.map((f) => f.status)).toEqual(['mismatch', 'done']);
    // The output file was fetched once more before it was kept; the error[] file was not.
    expect(asked.filter((p) => p === '/files/0')).toHaveLength(2);
    expect(asked.filter((p) => p === '/files/1')).toHaveLength(1);
    const warnings = events.flatMap((e) => (e.event === 'warning' ? [e.message] : []));
    expect(warnings.sort()).toEqual([
      'Patient.000.ndjson: 3 resources, the manifest says 5 (kept; counted as an error)',
      "Patient.001.ndjson: the manifest's error[] count is 1, the file holds 3 OperationOutcomes (kept as sent, not downloaded again)",
    ]);
  });
});
