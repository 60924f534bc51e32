import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SmartError } from '../../../../src/core/errors.js';
import { createHttpClient, type HttpClient } from '../../../../src/core/http/index.js';
import { downloadFile } from '../../../../src/core/export/download.js';
import type { ExportEvent, ExportSession, PlannedFile } from '../../../../src/core/export/types.js';
import { tempDir } from '../../../helpers/tmp.js';

const line = (i: number) => JSON.stringify({ resourceType: 'Patient', id: `p${i}` }) + '\n';
const body = (n: number) => Array.from({ length: n }, (_, i) => line(i)).join('');

let base = '';
const seen: Array<{ path: string; authorization?: string }> = [];
const hits = new Map<string, number>();
let server: ReturnType<typeof createServer>;
let http: HttpClient;

function handle(req: IncomingMessage, res: ServerResponse) {
  const path = req.url ?? '/';
  seen.push({ path, authorization: req.headers.authorization });
  const n = (hits.get(path) ?? 0) + 1;
  hits.set(path, n);
  const ndjson = { 'content-type': 'application/fhir+ndjson' };
  switch (path) {
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

beforeAll(async () => {
  server = createServer(handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  http = await createHttpClient({ retries: 0 });
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
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
    const { p, outDir } = download('/stall', {}, true, { idleTimeoutMs: 100, retries: 1 });
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
});
