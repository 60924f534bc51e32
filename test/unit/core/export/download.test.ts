import type { IncomingMessage, ServerResponse } from 'node:http';
import { existsSync, readFileSync, readdirSync, statSync, watch } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SmartError } from '../../../../src/core/errors.js';
import { createHttpClient, type HttpClient } from '../../../../src/core/http/index.js';
import { downloadFile } from '../../../../src/core/export/download.js';
import type { ExportEvent, ExportSession, PlannedFile } from '../../../../src/core/export/types.js';
import { tempDir } from '../../../helpers/tmp.js';
import { useServer } from '../http/harness.js';

const line = (i: number) => JSON.stringify({ resourceType: 'Patient', id: `p${i}` }) + '\n';
const body = (n: number) => Array.from({ length: n }, (_, i) => line(i)).join('');

let base = '';
const seen: Array<{ path: string; authorization?: string; range?: string; ifRange?: string }> = [];
const hits = new Map<string, number>();
/** Cuts the connection of a `cut()` answer. */
let cutNow: (() => void) | undefined;

/**
 * Cut the connection of a `cut()` answer once the first bytes of the file are on disk (a partial
 * file in `dir` holds some): watched, not waited for.
 */
function cutWhenOnDisk(dir: string): void {
  const check = () => {
    for (const n of readdirSync(dir)) {
      if (!n.endsWith('.part') || !cutNow) continue;
      if ((statSync(join(dir, n), { throwIfNoEntry: false })?.size ?? 0) > 0) {
        watcher.close();
        cutNow();
        cutNow = undefined;
        return;
      }
    }
  };
  const watcher = watch(dir, check);
  check();
}
let http: HttpClient;

function handle(req: IncomingMessage, res: ServerResponse) {
  const path = req.url ?? '/';
  seen.push({
    path,
    authorization: req.headers.authorization,
    range: req.headers.range,
    ifRange: req.headers['if-range'] as string | undefined,
  });
  const n = (hits.get(path) ?? 0) + 1;
  hits.set(path, n);
  const ndjson = { 'content-type': 'application/fhir+ndjson' };
  const full = body(1000);
  const ranged = { ...ndjson, 'accept-ranges': 'bytes', etag: '"v1"' };
  /** 200 with Accept-Ranges: 20000 bytes, then the connection is cut when the test says (cutNow). */
  const cut = () => {
    res.writeHead(200, { ...ranged, 'content-length': String(full.length) });
    res.write(full.slice(0, 20_000));
    cutNow = () => res.socket?.destroy();
  };
  const from = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? '')?.[1] ?? NaN);
  const outcome = (code: string, diagnostics: string) =>
    JSON.stringify({
      resourceType: 'OperationOutcome',
      issue: [{ severity: 'error', code, diagnostics }],
    });
  switch (path) {
    case '/ranged':
      if (n === 1) return cut();
      if (Number.isNaN(from)) {
        res.writeHead(200, ranged).end(full);
        return;
      }
      res.writeHead(206, {
        ...ranged,
        'content-range': `bytes ${from}-${full.length - 1}/${full.length}`,
      });
      res.end(full.slice(from));
      return;
    case '/wrong-range':
      if (n === 1) return cut();
      if (n === 2) {
        // Not the range asked for.
        res.writeHead(206, {
          ...ranged,
          'content-range': `bytes 0-${full.length - 1}/${full.length}`,
        });
        res.end(full);
        return;
      }
      res.writeHead(200, ndjson).end(full);
      return;
    case '/416':
      if (n === 1) return cut();
      if (n === 2) {
        res.writeHead(416, { 'content-range': `bytes */${full.length}` }).end();
        return;
      }
      res.writeHead(200, ndjson).end(full);
      return;
    case '/forbidden':
      res.writeHead(403, { 'content-type': 'application/fhir+json' });
      res.end(outcome('forbidden', 'not your files'));
      return;
    case '/always-503':
      res.writeHead(503, { 'retry-after': '0', 'content-type': 'text/plain' }).end('maintenance');
      return;
    case '/slow-down-once':
      if (n === 1) {
        res.writeHead(429, { 'retry-after': '3600' }).end();
        return;
      }
      res.writeHead(200, ndjson).end(body(5));
      return;
    case '/ok':
      res.writeHead(200, ndjson).end(body(50));
      return;
    case '/drop-once':
      if (n === 1) {
        res.writeHead(200, ndjson);
        res.write(body(1000).slice(0, 20_000), () => res.socket?.destroy());
        return;
      }
      res.writeHead(200, ndjson).end(body(1000));
      return;
    case '/short':
      res.writeHead(200, ndjson).end(body(9));
      return;
    case '/busy-once':
      if (n === 1) {
        res.writeHead(503, { 'retry-after': '0', 'content-type': 'application/fhir+json' });
        res.end(
          JSON.stringify({
            resourceType: 'OperationOutcome',
            issue: [{ severity: 'error', code: 'transient' }],
          }),
        );
        return;
      }
      res.writeHead(200, ndjson).end(body(5));
      return;
    case '/gz':
      res
        .writeHead(200, { 'content-type': 'application/fhir+ndjson+gzip' })
        .end(gzipSync(body(40)));
      return;
    case '/not-gz':
      // Said to be gzip (the export asked for application/fhir+ndjson+gzip), sent plain.
      res.writeHead(200, ndjson).end(body(40));
      return;
    case '/stall':
      res.writeHead(200, ndjson);
      res.write(line(0));
      return; // never ends
    default:
      res.writeHead(404, { 'content-type': 'application/fhir+json' });
      res.end(
        JSON.stringify({
          resourceType: 'OperationOutcome',
          issue: [{ severity: 'error', code: 'not-found', diagnostics: 'expired' }],
        }),
      );
  }
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

const session: ExportSession = {
  request: (url, init = {}) =>
    http.request(url, {
      ...init,
      headers: { ...init.headers, authorization: 'Bearer test-token' },
    }),
  resolve: (p) => p,
  error: (res, method = 'GET') =>
    new SmartError('http', `${method} ${res.url} answered ${res.status}`),
};

function download(
  path: string,
  extra: Partial<PlannedFile> = {},
  requiresAccessToken = true,
  opts = {},
) {
  const outDir = tempDir('smart-dl-');
  const events: ExportEvent[] = [];
  const file: PlannedFile = {
    kind: 'output',
    type: 'Patient',
    url: `${base}${path}`,
    name: 'Patient.000.ndjson',
    ...extra,
  };
  const p = downloadFile({
    file,
    outDir,
    requiresAccessToken,
    session,
    http: async () => http,
    now: Date.now,
    onEvent: (e) => events.push(e),
    sleep: async () => undefined,
    backoffMs: 1,
    ...opts,
  });
  return { p, events, outDir };
}

describe('downloadFile', () => {
  it('streams to .part, renames, counts lines', async () => {
    const { p, outDir } = download('/ok', { count: 50 });
    const r = await p;
    expect(r).toMatchObject({ resources: 50, bytes: Buffer.byteLength(body(50)), attempts: 1 });
    expect(readFileSync(join(outDir, 'Patient.000.ndjson'), 'utf8')).toBe(body(50));
    expect(readdirSync(outDir)).toEqual(['Patient.000.ndjson']);
  });

  it('restarts a connection dropped mid-file; the file arrives whole', async () => {
    const { p, events, outDir } = download('/drop-once', { count: 1000 });
    const r = await p;
    expect(r).toMatchObject({ resources: 1000, attempts: 2 });
    expect(readFileSync(join(outDir, 'Patient.000.ndjson'), 'utf8')).toBe(body(1000));
    const retry = events.find((e) => e.event === 'file-retry');
    expect(retry).toMatchObject({
      attempt: 2,
      reason: expect.stringMatching(/broke off after \d+ bytes/),
    });
  });

  it('retries a 503 honouring Retry-After', async () => {
    const { p } = download('/busy-once');
    expect(await p).toMatchObject({ resources: 5, attempts: 2 });
  });

  it('retries a count mismatch once, then keeps the file and reports it', async () => {
    hits.delete('/short');
    const { p, outDir } = download('/short', { count: 10 });
    const r = await p;
    expect(r.mismatch).toEqual({ expected: 10, actual: 9 });
    expect(hits.get('/short')).toBe(2);
    expect(existsSync(join(outDir, 'Patient.000.ndjson'))).toBe(true);
  });

  it('sends the token only when the manifest requires it', async () => {
    seen.length = 0;
    await download('/ok', {}, false).p;
    await download('/ok', {}, true).p;
    expect(seen.map((s) => s.authorization)).toEqual([undefined, 'Bearer test-token']);
  });

  it('fails at once on 404 (gone), without a .part left', async () => {
    const { p, outDir } = download('/missing');
    await expect(p).rejects.toMatchObject({
      code: 'file_gone',
      message: expect.stringContaining('expired'),
    });
    expect(readdirSync(outDir)).toEqual([]);
  });

  it('abandons a stalled transfer after the idle timeout, then gives up', async () => {
    const { p, outDir } = download('/stall', {}, true, { idleTimeoutMs: 20, retries: 1 });
    await expect(p).rejects.toMatchObject({
      kind: 'network',
      code: 'download_failed',
      message: expect.stringContaining('no data for'),
    });
    expect(readdirSync(outDir)).toEqual([]);
  });

  it('stops on abort and removes the .part file', async () => {
    const controller = new AbortController();
    // Aborted once the first bytes are in: the file-progress event of the first chunk.
    const { p, outDir } = download('/stall', {}, true, {
      signal: controller.signal,
      progressIntervalMs: 0,
      onEvent: (e: ExportEvent) => {
        if (e.event === 'file-progress' && !controller.signal.aborted)
          controller.abort(new SmartError('runtime', 'interrupted', { code: 'interrupted' }));
      },
    });
    await expect(p).rejects.toMatchObject({ code: 'interrupted' });
    expect(readdirSync(outDir)).toEqual([]);
  });

  it('keeps a gzip file byte-exact and counts the lines inside it', async () => {
    const { p, outDir } = download('/gz', { count: 40, name: 'Patient.000.ndjson.gz' }, true, {
      gzip: true,
    });
    const r = await p;
    expect(r).toMatchObject({ resources: 40, attempts: 1 });
    expect(readFileSync(join(outDir, 'Patient.000.ndjson.gz')).equals(gzipSync(body(40)))).toBe(
      true,
    );
  });

  it('a gzip file that is not gzip fails its download (it used to hang until the idle timeout)', async () => {
    const { p, outDir } = download('/not-gz', { name: 'Patient.000.ndjson.gz' }, true, {
      gzip: true,
      retries: 1,
    });
    await expect(p).rejects.toMatchObject({
      kind: 'network',
      code: 'download_failed',
      message: expect.stringContaining('incorrect header check'),
    });
    expect(readdirSync(outDir)).toEqual([]);
  });

  it('continues a cut transfer from the bytes kept (Range, If-Range) when the server takes ranges', async () => {
    hits.delete('/ranged');
    seen.length = 0;
    const { p, events, outDir } = download('/ranged', { count: 1000 });
    cutWhenOnDisk(outDir);
    const r = await p;
    expect(r).toMatchObject({ resources: 1000, bytes: Buffer.byteLength(body(1000)), attempts: 2 });
    expect(readFileSync(join(outDir, 'Patient.000.ndjson'), 'utf8')).toBe(body(1000));
    expect(readdirSync(outDir)).toEqual(['Patient.000.ndjson']);
    const second = seen.filter((x) => x.path === '/ranged')[1]!;
    expect(second.range).toMatch(/^bytes=[1-9]\d*-$/);
    expect(second.ifRange).toBe('"v1"');
    expect(events.find((e) => e.event === 'file-retry')).toMatchObject({
      reason: expect.stringContaining('continuing from there'),
    });
  });

  it('a 206 for another range than asked, or a 416, starts the file over from zero', async () => {
    for (const path of ['/wrong-range', '/416']) {
      hits.delete(path);
      seen.length = 0;
      const { p, events, outDir } = download(path, { count: 1000 });
      cutWhenOnDisk(outDir);
      const r = await p;
      expect(r, path).toMatchObject({ resources: 1000, attempts: 3 });
      expect(readFileSync(join(outDir, 'Patient.000.ndjson'), 'utf8')).toBe(body(1000));
      expect(seen.map((x) => x.range !== undefined)).toEqual([false, true, false]);
      const reasons = events.flatMap((e) => (e.event === 'file-retry' ? [e.reason] : []));
      expect(reasons[1]).toMatch(
        path === '/416'
          ? /refused to continue at byte \d+ \(416\)/
          : /asked for the bytes from \d+, the server sent bytes 0-/,
      );
    }
  });

  it('a 429 waits as Retry-After says, at most 60 s', async () => {
    hits.delete('/slow-down-once');
    const { p, events } = download('/slow-down-once');
    expect(await p).toMatchObject({ resources: 5, attempts: 2 });
    expect(events.find((e) => e.event === 'file-retry')).toMatchObject({
      attempt: 2,
      delayMs: 60_000,
      reason: expect.stringContaining('HTTP 429'),
    });
  });

  it('gives up after the retries, naming the file, the attempts, the last failure and --resume', async () => {
    const { p, events, outDir } = download('/always-503', {}, true, { retries: 2 });
    await expect(p).rejects.toMatchObject({
      kind: 'network',
      exitCode: 4,
      code: 'download_failed',
      message:
        'download of Patient.000.ndjson failed after 3 attempts: HTTP 503: text/plain: maintenance',
      hint: expect.stringContaining('--resume'),
    });
    // Retry-After: 0 is no reason to hammer: at least 100 ms.
    expect(
      events
        .filter((e) => e.event === 'file-retry')
        .map((e) => e.event === 'file-retry' && e.delayMs),
    ).toEqual([100, 100]);
    expect(readdirSync(outDir)).toEqual([]);
  });

  it('a refusal (403) is final: worded by the session, not retried', async () => {
    hits.delete('/forbidden');
    const { p } = download('/forbidden');
    await expect(p).rejects.toMatchObject({
      message: expect.stringMatching(/^GET .*\/forbidden answered 403$/),
    });
    expect(hits.get('/forbidden')).toBe(1);
  });

  it('without retryMismatch a differing count is reported at once; without countLines not at all', async () => {
    hits.delete('/short');
    const once = await download('/short', { count: 10 }, true, { retryMismatch: false }).p;
    expect(once).toMatchObject({ attempts: 1, mismatch: { expected: 10, actual: 9 } });
    expect(hits.get('/short')).toBe(1);
    const uncounted = await download('/short', { count: 10 }, true, { countLines: false }).p;
    expect(uncounted.mismatch).toBeUndefined();
    expect(hits.get('/short')).toBe(2);
  });

  it('reports progress at most once per interval, with the bytes and lines so far', async () => {
    // A clock that stands still: the interval never passes, nothing is reported.
    const still = download('/ok', {}, true, { now: () => 0, progressIntervalMs: 250 });
    await still.p;
    expect(still.events.filter((e) => e.event === 'file-progress')).toEqual([]);
    // A clock that moves 1 s at each reading: every chunk is reported, the figures growing.
    let t = 0;
    const moving = download('/ok', {}, true, {
      now: () => (t += 1_000),
      progressIntervalMs: 1_000,
    });
    const r = await moving.p;
    const progress = moving.events.flatMap((e) => (e.event === 'file-progress' ? [e] : []));
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)).toMatchObject({
      file: 'Patient.000.ndjson',
      bytes: r.bytes,
      resources: 50,
    });
  });

  it('a file that needs no token goes to the address the session can reach', async () => {
    seen.length = 0;
    const outDir = tempDir('smart-dl-');
    await downloadFile({
      file: {
        kind: 'output',
        type: 'Patient',
        url: 'https://fhir.example.org/ok',
        name: 'P.000.ndjson',
      },
      outDir,
      requiresAccessToken: false,
      session: { ...session, reachable: (u) => u.replace('https://fhir.example.org', base) },
      http: async () => http,
      now: Date.now,
      onEvent: () => undefined,
    });
    expect(seen).toEqual([
      { path: '/ok', authorization: undefined, range: undefined, ifRange: undefined },
    ]);
  });
});
