import type { IncomingMessage, ServerResponse } from 'node:http';

/** One request being served. */
export interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
  method: string;
  /** The request URL made absolute with the origin the client used (its Host header). */
  url: URL;
  /** Decoded pathname (`%24export` -> `$export`). */
  pathname: string;
  /** The origin the client used, for links and file URLs. */
  origin: string;
  /** Set once known: the client id of the token, assertion or admin credentials. */
  clientId?: string;
  /** Fault injection: send part of the body, then destroy the socket. */
  drop: boolean;
  /** Fault injection: send the body at this pace. */
  throttle?: Pacer;
}

export type Headers = Record<string, string | number>;

export const FHIR_JSON = 'application/fhir+json; charset=utf-8';
export const JSON_TYPE = 'application/json; charset=utf-8';
export const NDJSON = 'application/fhir+ndjson';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly headers: Headers = {},
    readonly contentType: string = FHIR_JSON,
  ) {
    super(`HTTP ${status}`);
  }
}

export interface OperationOutcome {
  resourceType: 'OperationOutcome';
  id?: string;
  issue: { severity: string; code: string; diagnostics: string }[];
}

export function outcome(
  code: string,
  diagnostics: string,
  severity = 'error',
  id?: string,
): OperationOutcome {
  const oo: OperationOutcome = { resourceType: 'OperationOutcome', issue: [] };
  if (id) oo.id = id;
  oo.issue.push({ severity, code, diagnostics });
  return oo;
}

/** An HttpError carrying an OperationOutcome. */
export function fhirError(status: number, code: string, diagnostics: string, headers?: Headers) {
  return new HttpError(status, outcome(code, diagnostics), headers);
}

export function send(
  ex: Exchange,
  status: number,
  body: unknown,
  contentType: string = FHIR_JSON,
  headers: Headers = {},
): void {
  const buf = Buffer.isBuffer(body)
    ? body
    : Buffer.from(
        body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body) + '\n',
        'utf8',
      );
  const all: Headers = { ...headers, 'Content-Length': buf.length };
  if (buf.length > 0) all['Content-Type'] = contentType;
  ex.res.writeHead(status, all);
  if (ex.drop && buf.length > 0) {
    dropAfter(ex, buf.subarray(0, Math.max(1, Math.floor(buf.length / 2)))).catch(() =>
      ex.res.destroy(),
    );
    return;
  }
  if (ex.throttle && buf.length > 0) {
    void writeBody(ex, buf).then(
      (open) => open && ex.res.end(),
      () => ex.res.destroy(),
    );
    return;
  }
  ex.res.end(buf);
}

/** Writes what was promised so far, then cuts the connection so the client sees a short body. */
async function dropAfter(ex: Exchange, part: Buffer): Promise<void> {
  if (ex.throttle) {
    // All but the last slice at the throttled pace; the last one below, as without throttle.
    const cut = Math.max(0, part.length - ex.throttle.slice);
    if (!(await writeBody(ex, part.subarray(0, cut)))) return;
    if (!(await ex.throttle.ready(ex.res))) return;
    part = part.subarray(cut);
  }
  ex.res.write(part, () => {
    ex.res.socket?.destroy();
  });
}

/**
 * The throttle fault: a body sent at `bytesPerSec`, in slices of about 50 ms of data, each
 * written once the bytes before it have had their time. The first slice goes at once.
 */
export class Pacer {
  /** Bytes per write. */
  readonly slice: number;
  private start: number | undefined;
  private sent = 0;
  constructor(readonly bytesPerSec: number) {
    this.slice = Math.max(1, Math.min(64 * 1024, Math.floor(bytesPerSec / 20)));
  }
  /** Waits until the next slice is due; false when the client has gone meanwhile. */
  async ready(res: ServerResponse): Promise<boolean> {
    if (res.destroyed) return false;
    const now = performance.now();
    this.start ??= now;
    const due = this.start + (this.sent / this.bytesPerSec) * 1000;
    if (due > now) await pause(due - now, res);
    return !res.destroyed;
  }
  sentBytes(n: number): void {
    this.sent += n;
  }
}

/** Sleeps, but wakes up (and drops its timer) as soon as the response closes. */
function pause(ms: number, res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      res.off('close', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    res.on('close', done);
  });
}

/**
 * Writes part of a body with backpressure, at the throttled pace when the fault applies.
 * Resolves false once the client has gone (nothing more should be written).
 */
async function writeBody(ex: Exchange, data: string | Buffer): Promise<boolean> {
  const { res } = ex;
  const pacer = ex.throttle;
  if (!pacer) {
    if (res.destroyed) return false;
    if (!res.write(data)) await waitDrain(res);
    return !res.destroyed;
  }
  const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  for (let at = 0; at < buf.length; at += pacer.slice) {
    if (!(await pacer.ready(res))) return false;
    const part = buf.subarray(at, at + pacer.slice);
    const flowing = res.write(part);
    pacer.sentBytes(part.length);
    if (!flowing) await waitDrain(res);
  }
  return !res.destroyed;
}

/**
 * Streams lines (each already ending in a newline) with backpressure. With the drop fault,
 * about half of the lines are sent before the socket is destroyed; with the throttle fault,
 * at its pace.
 */
export async function sendLines(
  ex: Exchange,
  status: number,
  contentType: string,
  total: number,
  line: (i: number) => string,
  headers: Headers = {},
): Promise<void> {
  const { res } = ex;
  res.writeHead(status, { ...headers, 'Content-Type': contentType });
  const stopAt = ex.drop ? Math.floor(total / 2) : total;
  let chunk = '';
  for (let i = 0; i < stopAt; i++) {
    chunk += line(i);
    if (chunk.length >= 64 * 1024) {
      if (!(await writeBody(ex, chunk))) return;
      chunk = '';
    }
  }
  if (ex.drop) {
    if (total === 1) chunk = line(0).slice(0, Math.max(1, Math.floor(line(0).length / 2)));
    await dropAfter(ex, Buffer.from(chunk, 'utf8'));
    return;
  }
  if (ex.throttle) {
    if (await writeBody(ex, chunk)) res.end();
    return;
  }
  res.end(chunk);
}

function waitDrain(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

export function readBody(ex: Exchange, limit = 1024 * 1024): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    ex.req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(fhirError(413, 'too-costly', `request body larger than ${limit} bytes`));
        ex.req.destroy();
        return;
      }
      chunks.push(c);
    });
    ex.req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    ex.req.on('error', reject);
  });
}

/** The media type of the request body, lower case, without parameters. */
export function mediaType(value: string | undefined): string {
  return (value ?? '').split(';')[0]!.trim().toLowerCase();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
