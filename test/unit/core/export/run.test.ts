import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SmartError } from '../../../../src/core/errors.js';
import { createHttpClient, type HttpClient } from '../../../../src/core/http/index.js';
import {
  prepareOutDir,
  startExport,
  type ExportEvent,
  type ExportSession,
} from '../../../../src/core/export/index.js';
import { tempDir } from '../../../helpers/tmp.js';

/**
 * startExport against a small Bulk Data server: what is on disk when, and how many downloads run
 * at once.
 */

const FILES = 10;
const line = (i: number) => JSON.stringify({ resourceType: 'Patient', id: `p${i}` }) + '\n';

let base = '';
let server: ReturnType<typeof createServer>;
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
