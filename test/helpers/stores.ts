/**
 * Object stores for the export tests, real servers on 127.0.0.1: Azurite (Microsoft's Azure
 * Storage emulator, in memory) and s3rver (an S3 server on a temp directory). s3rver 3.7
 * completes multipart uploads (create, parts, complete) but cannot abort or list them
 * (AbortMultipartUpload answers 405, ListMultipartUploads 501). `s3AbortRecorder` is a proxy in
 * front of s3rver that adds the two missing behaviours: it answers AbortMultipartUpload and
 * ListMultipartUploads as S3 does, and records which multipart uploads were created, completed
 * and aborted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

/** Azurite's documented development account. */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface Azurite {
  blobEndpoint: string;
  connectionString: string;
  /** A connection string that authenticates with this SAS token instead of the key. */
  sasConnectionString(sas: string): string;
  close(): Promise<void>;
}

/** Start the Azurite blob service in memory on a free port (no telemetry, no disk). */
export async function startAzurite(): Promise<Azurite> {
  const bin = join(
    dirname(require.resolve('azurite/package.json')),
    'dist',
    'src',
    'blob',
    'main.js',
  );
  const child: ChildProcess = spawn(
    process.execPath,
    [
      bin,
      '--inMemoryPersistence',
      '--disableTelemetry',
      '--silent',
      '--skipApiVersionCheck',
      '--blobHost',
      '127.0.0.1',
      '--blobPort',
      '0',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /listens on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`azurite exited ${code}:\n${out}`)));
    child.once('error', reject);
  });
  const blobEndpoint = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
  return {
    blobEndpoint,
    connectionString: `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${blobEndpoint};`,
    sasConnectionString: (sas) => `BlobEndpoint=${blobEndpoint};SharedAccessSignature=${sas}`,
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

export interface S3rver {
  endpoint: string;
  /** Objects created so far, in order: how (Put, Post = a completed multipart upload, Copy). */
  created: Array<{ key: string; how: string }>;
  close(): Promise<void>;
}

/** Start s3rver on a free port with these (empty) buckets, on a temp directory it removes. */
export async function startS3rver(buckets: string[]): Promise<S3rver> {
  const { default: S3rverServer } = await import('s3rver');
  const directory = mkdtempSync(join(tmpdir(), 'smart-s3rver-'));
  const server = new S3rverServer({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    configureBuckets: buckets.map((name) => ({ name })),
  });
  const created: S3rver['created'] = [];
  server.on('event', (e) => {
    for (const r of e.Records) {
      const m = /^ObjectCreated:(\w+)$/.exec(r.eventName);
      if (m) created.push({ key: r.s3.object.key, how: m[1]! });
    }
  });
  const { port } = await server.run();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    created,
    close: async () => {
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

export interface S3AbortRecorder {
  /** The proxy's endpoint (path-style, like s3rver's). */
  endpoint: string;
  /** Upload ids in the order they were created (CreateMultipartUpload answered with one). */
  created: string[];
  /** Parts whose upload was answered 200 (UploadPart). */
  parts: Array<{ key: string; uploadId: string; partNumber: number }>;
  /** Upload ids that were completed (CompleteMultipartUpload answered 200). */
  completed: string[];
  /** The AbortMultipartUpload requests, answered 204 here (s3rver never sees them). */
  aborted: Array<{ bucket: string; key: string; uploadId: string }>;
  /** Resolves as soon as `ready()` holds, checked after each recorded request. */
  until(ready: () => boolean): Promise<void>;
  close(): Promise<void>;
}

/**
 * A node:http proxy on 127.0.0.1 in front of an S3 endpoint (s3rver): every request goes through
 * unchanged, bodies streamed both ways, except AbortMultipartUpload (`DELETE /<bucket>/<key>
 * ?uploadId=X`), which it records and answers 204 with an empty body, as S3 does, and
 * ListMultipartUploads (`GET /<bucket>?uploads[&prefix=P]`), which it answers 200 with the
 * uploads created through it and neither completed nor aborted.
 */
export async function s3AbortRecorder(upstream: string): Promise<S3AbortRecorder> {
  const target = new URL(upstream);
  const rec: Omit<S3AbortRecorder, 'endpoint' | 'until' | 'close'> = {
    created: [],
    parts: [],
    completed: [],
    aborted: [],
  };
  /** Bucket, key and time of each upload created, by id (for ListMultipartUploads). */
  const uploads = new Map<string, { bucket: string; key: string; initiated: string }>();
  const waiters = new Set<() => void>();
  const changed = () => {
    for (const w of [...waiters]) w();
  };
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const [, bucket = '', ...rest] = url.pathname.split('/');
    const key = rest.map(decodeURIComponent).join('/');
    const uploadId = url.searchParams.get('uploadId');
    if (req.method === 'DELETE' && uploadId !== null) {
      req.resume();
      req.on('end', () => {
        rec.aborted.push({ bucket: decodeURIComponent(bucket), key, uploadId });
        res.writeHead(204).end();
        changed();
      });
      return;
    }
    if (req.method === 'GET' && key === '' && url.searchParams.has('uploads')) {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/xml' });
        res.end(listUploads(decodeURIComponent(bucket), url.searchParams));
      });
      return;
    }
    const up = request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (ures: IncomingMessage) => {
        res.writeHead(ures.statusCode ?? 502, ures.rawHeaders);
        const ok = ures.statusCode === 200;
        const creating = req.method === 'POST' && url.searchParams.has('uploads');
        let body = '';
        if (creating) ures.on('data', (d: Buffer) => (body += d.toString('utf8')));
        ures.pipe(res);
        ures.on('end', () => {
          if (!ok) return;
          if (creating) {
            const id = /<UploadId>([^<]+)<\/UploadId>/.exec(body)?.[1];
            if (id) {
              rec.created.push(id);
              uploads.set(id, {
                bucket: decodeURIComponent(bucket),
                key,
                initiated: new Date().toISOString(),
              });
            }
          } else if (req.method === 'POST' && uploadId !== null) {
            rec.completed.push(uploadId);
          } else if (req.method === 'PUT' && uploadId !== null) {
            rec.parts.push({
              key,
              uploadId,
              partNumber: Number(url.searchParams.get('partNumber')),
            });
          }
          changed();
        });
      },
    );
    up.on('error', () => res.destroy());
    req.on('aborted', () => up.destroy());
    req.pipe(up);
  });
  /**
   * A ListMultipartUploadsResult of the uploads in `bucket` created here and neither completed
   * nor aborted, whose key starts with `prefix`, sorted by key then upload id, at most
   * `max-uploads` (default 1000) of them; markers and delimiter are not supported (a longer list
   * is cut and says IsTruncated).
   */
  const listUploads = (bucket: string, q: URLSearchParams): string => {
    const prefix = q.get('prefix') ?? '';
    const max = Math.min(Number(q.get('max-uploads') ?? 1000) || 1000, 1000);
    const done = new Set([...rec.completed, ...rec.aborted.map((a) => a.uploadId)]);
    const open = [...uploads]
      .filter(([id, u]) => !done.has(id) && u.bucket === bucket && u.key.startsWith(prefix))
      .sort(([ia, a], [ib, b]) =>
        a.key === b.key ? ia.localeCompare(ib) : a.key < b.key ? -1 : 1,
      );
    const page = open.slice(0, max);
    const esc = (v: string) => v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
    return [
      '<?xml version="1.0" encoding="UTF-8"?>',
      '<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
      `<Bucket>${esc(bucket)}</Bucket>`,
      '<KeyMarker></KeyMarker>',
      '<UploadIdMarker></UploadIdMarker>',
      `<Prefix>${esc(prefix)}</Prefix>`,
      `<MaxUploads>${max}</MaxUploads>`,
      `<IsTruncated>${open.length > page.length}</IsTruncated>`,
      ...page.map(
        ([id, u]) =>
          `<Upload><Key>${esc(u.key)}</Key><UploadId>${esc(id)}</UploadId>` +
          `<Initiated>${u.initiated}</Initiated><StorageClass>STANDARD</StorageClass></Upload>`,
      ),
      '</ListMultipartUploadsResult>',
    ].join('');
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    ...rec,
    until: (ready) =>
      new Promise<void>((resolve) => {
        const check = () => {
          if (!ready()) return;
          waiters.delete(check);
          resolve();
        };
        waiters.add(check);
        check();
      }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Resolves as soon as `ready()` holds, checked on each chunk of the child's stdout (after the
 * test's own listener has appended it); rejects if the child exits first.
 */
export function whenOutput(
  child: {
    stdout: NodeJS.ReadableStream | null;
    once(e: 'exit', l: () => void): unknown;
    off(e: 'exit', l: () => void): unknown;
  },
  ready: () => boolean,
  why: () => string,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const stop = () => {
      child.stdout?.off('data', check);
      child.off('exit', exited);
    };
    const check = () => {
      if (!ready()) return;
      stop();
      resolve();
    };
    const exited = () => {
      stop();
      reject(new Error(`the export ended before the expected output:\n${why()}`));
    };
    child.stdout?.on('data', check);
    child.once('exit', exited);
    check();
  });
}
