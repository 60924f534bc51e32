import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SmartError } from '../../../../src/core/errors.js';
import { createHttpClient, type HttpClient } from '../../../../src/core/http/index.js';
import {
  prepareOutDir,
  resumeExport,
  startExport,
  type ExportEvent,
  type ExportSession,
} from '../../../../src/core/export/index.js';
import type { ExportState } from '../../../../src/core/export/types.js';
import { testClock } from '../../../helpers/cli.js';
import { tempDir } from '../../../helpers/tmp.js';
import { reply, useServer, type Handler } from '../http/harness.js';
import { OO, httpSession } from './helpers.js';

/**
 * startExport against a small Bulk Data server: what is on disk when, and how many downloads run
 * at once.
 */

const FILES = 7;
const line = (i: number) => JSON.stringify({ resourceType: 'Patient', id: `p${i}` }) + '\n';

let base = '';
let http: HttpClient;
let outDir = '';
/** Whether export.json existed when the server was first asked for the status. */
let stateAtFirstPoll: unknown;
let polls = 0;
let inFlight = 0;
let maxInFlight = 0;
/** Downloads the client is expected to run at once; the server holds files until it does. */
let target = 4;
let started = 0;
const held: Array<() => void> = [];

/**
 * Finish one held download once `target` are in flight (or none is left to start): downloads
 * overlap as much as the client lets them, whatever the machine's load, with no timer.
 */
function releaseHeld() {
  while (held.length && (inFlight >= target || started === FILES)) {
    held.shift()!();
    if (started < FILES) break;
  }
}
const kickoffs: Array<{ method: string; url: string; accept?: string; prefer?: string }> = [];

function handle(req: IncomingMessage, res: ServerResponse) {
  const url = req.url ?? '/';
  if (url.startsWith('/fhir/$export')) {
    kickoffs.push({
      method: req.method!,
      url,
      accept: req.headers.accept,
      prefer: req.headers.prefer as string | undefined,
    });
    res.writeHead(202, { 'content-location': `${base}/fhir/status/1` }).end();
    return;
  }
  if (url === '/fhir/status/1') {
    if (polls++ === 0) {
      const path = join(outDir, 'export.json');
      stateAtFirstPoll = existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')) : undefined;
      res.writeHead(202, { 'retry-after': '0', 'x-progress': 'starting' }).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        transactionTime: '2024-06-01T00:00:00Z',
        request: `${base}/fhir/$export`,
        requiresAccessToken: true,
        output: Array.from({ length: FILES }, (_, i) => ({
          type: 'Patient',
          url: `${base}/files/${i}`,
          count: 3,
        })),
        error: [],
      }),
    );
    return;
  }
  if (url.startsWith('/files/')) {
    started++;
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    res.writeHead(200, { 'content-type': 'application/fhir+ndjson' });
    res.write(line(1));
    held.push(() => {
      inFlight--;
      res.end(line(2) + line(3));
    });
    releaseHeld();
    return;
  }
  res.writeHead(404).end();
}

// The file's server (test/unit/core/http/harness.ts), answering with this file's handler.
const server = useServer();
beforeAll(async () => {
  base = server.base;
  http = await createHttpClient({ retries: 0 });
});
beforeEach(() => {
  server.handler = handle;
});
beforeEach(() => {
  outDir = join(tempDir('smart-export-run-'), 'out');
  stateAtFirstPoll = undefined;
  polls = 0;
  inFlight = 0;
  maxInFlight = 0;
  started = 0;
  held.length = 0;
  kickoffs.length = 0;
});

const session: ExportSession = {
  request: (url, init = {}) =>
    http.request(url, { ...init, headers: { ...init.headers, authorization: 'Bearer t' } }),
  resolve: (p) => (/^https?:/.test(p) ? p : `${base}/fhir/${p}`),
  error: (res, method = 'GET') =>
    new SmartError('http', `${method} ${res.url} answered ${res.status}`),
};

function exportWith(parallel?: number) {
  target = parallel ?? 4;
  const events: ExportEvent[] = [];
  const p = startExport(
    { level: { kind: 'system' }, method: 'GET', types: ['Patient'] },
    {
      session,
      http: async () => http,
      outDir,
      parallel,
      pollBounds: { minMs: 1, maxMs: 5 },
      onEvent: (e) => events.push(e),
    },
  );
  return { p, events };
}

describe('startExport', () => {
  it('writes export.json right after the 202, before the first status request', async () => {
    const { p, events } = exportWith();
    await p;
    expect(kickoffs).toEqual([
      {
        method: 'GET',
        url: '/fhir/$export?_type=Patient',
        accept: 'application/fhir+json',
        prefer: 'respond-async',
      },
    ]);
    expect(stateAtFirstPoll).toMatchObject({
      version: 1,
      statusUrl: `${base}/fhir/status/1`,
      kickoff: { method: 'GET', url: `${base}/fhir/$export?_type=Patient` },
      status: 'in-progress',
    });
    expect(Date.parse((stateAtFirstPoll as { startedAt: string }).startedAt)).not.toBeNaN();
    expect(events.find((e) => e.event === 'status')).toMatchObject({ progress: 'starting' });
    expect(JSON.parse(readFileSync(join(outDir, 'manifest.json'), 'utf8')).output).toHaveLength(
      FILES,
    );
  });

  it('downloads at most 4 files at once by default', async () => {
    const { p } = exportWith();
    const s = await p;
    expect(s.resources).toBe(FILES * 3);
    expect(maxInFlight).toBe(4);
    expect(readdirSync(outDir).filter((n) => n.endsWith('.ndjson'))).toHaveLength(FILES);
  });

  it.each([1, 2, 6])('downloads at most --parallel %i files at once', async (n) => {
    await exportWith(n).p;
    expect(maxInFlight).toBe(n);
  });
});

describe('prepareOutDir', () => {
  it('accepts only a new or empty --out', async () => {
    const dir = tempDir('smart-export-unit-');
    await prepareOutDir(join(dir, 'new', 'nested'));
    expect(statSync(join(dir, 'new', 'nested')).isDirectory()).toBe(true);
    await prepareOutDir(join(dir, 'new', 'nested')); // empty: fine
    mkdirSync(join(dir, 'full'));
    writeFileSync(join(dir, 'full', 'export.json'), '{}');
    await expect(prepareOutDir(join(dir, 'full'))).rejects.toMatchObject({
      kind: 'usage',
      message: expect.stringContaining('is not empty'),
      hint: expect.stringContaining('--resume'),
    });
    writeFileSync(join(dir, 'file'), 'x');
    await expect(prepareOutDir(join(dir, 'file'))).rejects.toThrow(/is a file/);
  });
});

describe('an export from kick-off to summary, and its resume', () => {
  const srv = useServer();
  /** What the Bulk Data server answers; reset before each test. */
  let answers: { kickoff: Handler; status: Handler; file: Handler };
  const manifestOf = (b: string, files = 2, extra: object = {}) => ({
    transactionTime: '2024-06-01T00:00:00Z',
    request: `${b}/fhir/$export`,
    requiresAccessToken: true,
    output: Array.from({ length: files }, (_, i) => ({
      type: 'Patient',
      url: `${b}/files/${i}`,
      count: 2,
    })),
    error: [],
    ...extra,
  });
  const json = { 'content-type': 'application/json' };
  beforeEach(() => {
    answers = {
      kickoff: (_req, res) =>
        res.writeHead(202, { 'content-location': `${srv.base}/fhir/status/1` }).end(),
      status: (_req, res) => res.writeHead(200, json).end(JSON.stringify(manifestOf(srv.base))),
      file: (_req, res) =>
        res.writeHead(200, { 'content-type': 'application/fhir+ndjson' }).end(line(1) + line(2)),
    };
    srv.handler = (req, res, n) => {
      const url = req.url ?? '/';
      if (url.startsWith('/fhir/$export')) return answers.kickoff(req, res, n);
      if (url.startsWith('/fhir/status/')) return answers.status(req, res, n);
      if (url.startsWith('/files/')) return answers.file(req, res, n);
      res.writeHead(404).end();
    };
  });
  const paths = () => srv.hits.map((h) => `${h.method} ${h.url}`);

  function options(dir: string, extra: Partial<Parameters<typeof startExport>[1]> = {}) {
    const clock = testClock();
    const events: ExportEvent[] = [];
    return {
      events,
      clock,
      o: {
        session: httpSession(
          () => srv.base,
          () => http,
        ),
        http: async () => http,
        outDir: dir,
        now: clock.now,
        sleep: clock.sleep,
        pollBounds: { minMs: 1, maxMs: 5 },
        onEvent: (e: ExportEvent) => events.push(e),
        ...extra,
      },
    };
  }
  const system = { level: { kind: 'system' as const }, method: 'GET' as const };
  const saved = (dir: string) =>
    JSON.parse(readFileSync(join(dir, 'export.json'), 'utf8')) as ExportState;

  it('a complete run: state, manifest and files on disk, the summary, the events in order', async () => {
    const dir = join(tempDir('smart-export-run-'), 'out');
    const { o, events } = options(dir);
    const s = await startExport(system, o);
    expect(s).toMatchObject({
      resources: 4,
      downloaded: 2,
      skipped: 0,
      files: [{ file: 'Patient.000.ndjson' }, { file: 'Patient.001.ndjson' }],
    });
    expect(readdirSync(dir).sort()).toEqual([
      'Patient.000.ndjson',
      'Patient.001.ndjson',
      'export.json',
      'manifest.json',
    ]);
    expect(saved(dir)).toMatchObject({
      status: 'complete',
      transactionTime: '2024-06-01T00:00:00Z',
      requiresAccessToken: true,
    });
    expect(saved(dir).lastError).toBeUndefined();
    const names = [...new Set(events.map((e) => e.event))];
    expect(names).toEqual([
      'kickoff',
      'accepted',
      'manifest',
      'file-start',
      'file-done',
      'complete',
    ]);
    expect(events.find((e) => e.event === 'manifest')).toMatchObject({
      files: 2,
      output: 2,
      error: 0,
      deleted: 0,
      resources: 4,
      pending: 2,
    });
  });

  it('a kick-off that fails leaves no directory behind; a non-empty --out is refused before any request', async () => {
    const dir = join(tempDir('smart-export-run-'), 'out');
    answers.kickoff = reply(
      500,
      { 'content-type': 'application/fhir+json' },
      JSON.stringify(OO('exception', 'no exports today')),
    );
    await expect(startExport(system, options(dir).o)).rejects.toMatchObject({
      message: expect.stringContaining('no exports today'),
    });
    expect(existsSync(dir)).toBe(false);
    mkdirSync(dir);
    writeFileSync(join(dir, 'notes.txt'), 'mine');
    srv.hits = [];
    await expect(startExport(system, options(dir).o)).rejects.toMatchObject({
      kind: 'usage',
      message: expect.stringContaining('is not empty'),
    });
    expect(srv.hits).toEqual([]);
  });

  it('a job gone before its manifest: no such export, what was downloaded is kept', async () => {
    const dir = join(tempDir('smart-export-run-'), 'out');
    answers.status = reply(
      404,
      { 'content-type': 'application/fhir+json' },
      JSON.stringify(OO('not-found')),
    );
    await expect(startExport(system, options(dir).o)).rejects.toMatchObject({
      kind: 'fhir',
      code: 'no_such_export',
      hint: expect.stringContaining(`(${dir} keeps what was downloaded)`),
    });
    expect(saved(dir).lastError).toMatch(/^no such export/);
  });

  it('a failed file: the export is marked failed, the error gets the --resume hint; the rest of the files are kept', async () => {
    const dir = join(tempDir('smart-export-run-'), 'out');
    answers.file = (req, res) =>
      req.url === '/files/1'
        ? reply(500, { 'content-type': 'text/plain' }, 'disk on fire')(req, res)
        : reply(200, { 'content-type': 'application/fhir+ndjson' }, line(1) + line(2))(req, res);
    const { o } = options(dir, { retries: 0, parallel: 1, displayDir: 'my out' });
    await expect(startExport(system, o)).rejects.toMatchObject({
      code: 'download_failed',
      message: expect.stringContaining('disk on fire'),
      hint: expect.stringMatching(
        /; completed files are kept: fetch the rest with `smart export --resume 'my out'`$/,
      ),
    });
    const st = saved(dir);
    expect(st.status).toBe('failed');
    expect(st.files!.map((f) => f.status)).toEqual(['done', 'pending']);
    expect(st.lastError).toContain('disk on fire');
    // A file that is gone gets no --resume hint: resuming cannot bring it back.
    answers.file = reply(404, { 'content-type': 'text/plain' }, 'expired');
    const dir2 = join(tempDir('smart-export-run-'), 'out');
    const e = await startExport(system, options(dir2, { retries: 0 }).o).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'file_gone' });
    expect((e as { hint: string }).hint).not.toContain('--resume');
  });

  it('files on another origin that need the token: refused before any download, resumable with --trust-origin', async () => {
    const dir = join(tempDir('smart-export-run-'), 'out');
    const other = srv.base.replace('127.0.0.1', 'localhost');
    answers.status = (_req, res) =>
      res.writeHead(200, json).end(
        JSON.stringify({
          ...manifestOf(srv.base),
          output: [{ type: 'Patient', url: `${other}/files/0`, count: 2 }],
        }),
      );
    await expect(startExport(system, options(dir, { displayDir: 'out' }).o)).rejects.toMatchObject({
      code: 'untrusted_origin',
      message: expect.stringContaining(`the manifest's files on ${other} need the access token`),
      hint: expect.stringContaining(`smart export --resume out --trust-origin ${other}`),
    });
    expect(srv.hits.filter((h) => h.url!.startsWith('/files/'))).toEqual([]);
    expect(saved(dir).status).toBe('downloading');
    const s = await resumeExport(options(dir, { trustedOrigins: [other] }).o);
    expect(s.resources).toBe(2);
    expect(srv.hits.find((h) => h.url === '/files/0')!.headers.authorization).toBe(
      'Bearer test-token',
    );
  });

  it('resume of a complete export whose files are all there: no request at all', async () => {
    const dir = join(tempDir('smart-export-run-'), 'out');
    await startExport(system, options(dir).o);
    srv.hits = [];
    const { o, events } = options(dir);
    const s = await resumeExport(o);
    expect(srv.hits).toEqual([]);
    expect(s).toMatchObject({ resources: 4, downloaded: 0, skipped: 2 });
    expect(events.filter((e) => e.event === 'file-skip')).toHaveLength(2);
    expect(events[0]).toMatchObject({ event: 'resume', outDir: dir });
  });

  it('resume after a file went missing or was cut: only that file again', async () => {
    const dir = join(tempDir('smart-export-run-'), 'out');
    await startExport(system, options(dir).o);
    rmSync(join(dir, 'Patient.001.ndjson'));
    srv.hits = [];
    const s = await resumeExport(options(dir).o);
    expect(paths()).toEqual(['GET /fhir/status/1', 'GET /files/1']);
    expect(s).toMatchObject({ downloaded: 1, skipped: 1 });
    writeFileSync(join(dir, 'Patient.000.ndjson'), line(1));
    srv.hits = [];
    await resumeExport(options(dir).o);
    expect(paths()).toEqual(['GET /fhir/status/1', 'GET /files/0']);
  });

  it('resume when the server forgot the job: the saved manifest, with a warning; without one, no such export', async () => {
    const dir = join(tempDir('smart-export-run-'), 'out');
    answers.file = (req, res) =>
      req.url === '/files/1'
        ? reply(503, {}, 'later')(req, res)
        : reply(200, {}, line(1) + line(2))(req, res);
    await expect(startExport(system, options(dir, { retries: 0 }).o)).rejects.toThrow();
    answers.status = reply(410);
    answers.file = reply(200, {}, line(1) + line(2));
    srv.hits = [];
    const { o, events } = options(dir);
    const s = await resumeExport(o);
    expect(s.resources).toBe(4);
    expect(paths()).toEqual(['GET /fhir/status/1', 'GET /files/1']);
    expect(events.find((e) => e.event === 'warning')).toMatchObject({
      message: 'the server no longer knows this export (410); using the saved manifest.json',
    });
    rmSync(join(dir, 'manifest.json'));
    rmSync(join(dir, 'Patient.000.ndjson'));
    await expect(resumeExport(options(dir).o)).rejects.toMatchObject({ code: 'no_such_export' });
  });

  it('resume of a cancelled export, or of a directory that is not one: usage errors, no request', async () => {
    const dir = join(tempDir('smart-export-run-'), 'out');
    await startExport(system, options(dir).o);
    writeFileSync(join(dir, 'export.json'), JSON.stringify({ ...saved(dir), status: 'cancelled' }));
    srv.hits = [];
    await expect(resumeExport(options(dir).o)).rejects.toMatchObject({
      kind: 'usage',
      code: 'export_cancelled',
      hint: expect.stringContaining('--out <new dir>'),
    });
    await expect(resumeExport(options(tempDir('smart-export-run-')).o)).rejects.toMatchObject({
      code: 'no_export_state',
    });
    expect(srv.hits).toEqual([]);
  });

  it('Ctrl-C while downloading: the state is saved, the files left are counted, the reason thrown', async () => {
    const dir = join(tempDir('smart-export-run-'), 'out');
    const controller = new AbortController();
    const reason = new Error('interrupted');
    answers.file = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/fhir+ndjson' });
      res.write(line(1));
      controller.abort(reason); // and never ends
    };
    const { o, events } = options(dir, { signal: controller.signal, parallel: 1 });
    await expect(startExport(system, o)).rejects.toBe(reason);
    expect(events.at(-1)).toEqual({ event: 'interrupted', outDir: dir, pending: 2 });
    expect(saved(dir).status).toBe('downloading');
    expect(readdirSync(dir).filter((n) => n.endsWith('.ndjson'))).toEqual([]);
  });

  it('a job whose state cannot be saved is never lost: the fallback dir, else the status URL and how to stop it', async () => {
    for (const fallback of [true, false]) {
      const dir = join(tempDir('smart-export-run-'), 'out');
      const stateDir = join(tempDir('smart-export-run-'), 'state');
      // The destination goes away once the server has accepted the job: a file takes its place.
      answers.kickoff = (_req, res) => {
        rmSync(dir, { recursive: true, force: true });
        writeFileSync(dir, 'not a directory');
        res.writeHead(202, { 'content-location': `${srv.base}/fhir/status/1?sig=s3cr3t` }).end();
      };
      srv.hits = [];
      const { o } = options(dir, fallback ? { stateFallbackDir: stateDir } : {});
      const e = await startExport(system, o).catch((x: unknown) => x);
      expect(e).toMatchObject({
        kind: 'runtime',
        code: 'state_not_saved',
        message: expect.stringMatching(
          /^the export was started \(status URL \S+\/fhir\/status\/1\?sig=\S+\) but its state cannot be saved in /,
        ),
      });
      expect((e as Error).message).not.toContain('s3cr3t');
      // No status request: nothing goes on without a record of the job.
      expect(paths()).toEqual(['GET /fhir/$export']);
      if (fallback) {
        expect((e as { hint: string }).hint).toContain(`smart export --resume ${stateDir}`);
        expect(saved(stateDir)).toMatchObject({
          statusUrl: `${srv.base}/fhir/status/1?sig=s3cr3t`,
          status: 'in-progress',
        });
      } else {
        expect((e as { hint: string }).hint).toMatch(
          /^the job keeps running on the server: stop it with `smart api -X DELETE /,
        );
        expect(existsSync(stateDir)).toBe(false);
      }
    }
  });
});
