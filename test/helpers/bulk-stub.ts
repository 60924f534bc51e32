import type { ServerResponse } from 'node:http';
import type { Workspace } from './cli.js';
import { sendJson, startStubServer, type StubRequest, type StubServer } from '../e2e/query-flow.js';

/**
 * A scripted Bulk Data server for the disk and download failure tests: kick-off at
 * /fhir/$export (202), status at /fhir/status/job-1, files under /files/<name>. Each piece can
 * misbehave in one precise way through the hooks.
 */
export interface BulkFile {
  body: Buffer;
  /** Resources in the manifest (default: the lines of the body). */
  count?: number;
  /** Send `Accept-Ranges: bytes` and answer a Range request with 206. */
  ranges?: boolean;
  /** For the n-th request of this file (1-based), send this many bytes and cut the connection. */
  cut?: Record<number, number>;
  /** For the n-th request of this file, send this many bytes and then nothing (held open). */
  stall?: Record<number, number>;
}

export interface BulkStubOptions {
  files?: Record<string, BulkFile>;
  /** Runs at the kick-off, before the 202 is sent. */
  onKickoff?: () => void | Promise<void>;
  /** Answer the n-th status request (1-based) yourself; return false to send the manifest. */
  status?: (n: number, res: ServerResponse, origin: string) => boolean;
}

export interface BulkStub extends StubServer {
  /** Requests of one file, with their Range header. */
  fileRequests(name: string): Array<{ range?: string }>;
}

export async function startBulkStub(ws: Workspace, o: BulkStubOptions = {}): Promise<BulkStub> {
  const files = o.files ?? {
    'patients.ndjson': { body: Buffer.from('{"resourceType":"Patient","id":"a"}\n') },
  };
  const hits = new Map<string, Array<{ range?: string }>>();
  let polls = 0;
  const stub = await startStubServer(ws, (req: StubRequest, res, origin) => {
    const url = req.url;
    if (url.startsWith('/fhir/$export')) {
      void Promise.resolve(o.onKickoff?.()).then(() =>
        res.writeHead(202, { 'content-location': `${origin}/fhir/status/job-1` }).end(),
      );
      return;
    }
    if (url === '/fhir/status/job-1') {
      polls++;
      if (o.status?.(polls, res, origin)) return;
      return sendJson(
        res,
        200,
        {
          transactionTime: '2024-06-01T00:00:00Z',
          request: `${origin}/fhir/$export`,
          requiresAccessToken: true,
          output: Object.entries(files).map(([name, f]) => ({
            type: 'Patient',
            url: `${origin}/files/${name}`,
            count: f.count ?? f.body.toString('utf8').split('\n').filter(Boolean).length,
          })),
          error: [],
        },
        'application/json',
      );
    }
    const name = url.startsWith('/files/') ? url.slice('/files/'.length) : undefined;
    const f = name !== undefined ? files[name] : undefined;
    if (name !== undefined && f) {
      const list = hits.get(name) ?? [];
      const range = req.headers.range;
      list.push(range ? { range } : {});
      hits.set(name, list);
      const n = list.length;
      const m = f.ranges && range ? /^bytes=(\d+)-$/.exec(range) : null;
      const start = m ? Number(m[1]) : 0;
      const headers: Record<string, string> = { 'content-type': 'application/fhir+ndjson' };
      if (f.ranges) headers['accept-ranges'] = 'bytes';
      let body = f.body;
      if (m && start < f.body.length) {
        body = f.body.subarray(start);
        headers['content-range'] = `bytes ${start}-${f.body.length - 1}/${f.body.length}`;
        res.writeHead(206, { ...headers, 'content-length': String(body.length) });
      } else {
        res.writeHead(200, { ...headers, 'content-length': String(body.length) });
      }
      const stall = f.stall?.[n];
      if (stall !== undefined) {
        res.write(body.subarray(0, stall));
        return;
      }
      const cut = f.cut?.[n];
      if (cut !== undefined) {
        res.write(body.subarray(0, cut), () => setTimeout(() => res.destroy(), 20));
        return;
      }
      res.end(body);
      return;
    }
    sendJson(res, 404, { resourceType: 'OperationOutcome', issue: [] });
  });
  return { ...stub, fileRequests: (name) => hits.get(name) ?? [] };
}
