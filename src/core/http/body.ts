import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { SmartError } from '../errors.js';
import { redactUrl } from '../redact.js';

/** Reading response bodies: content decoding, and the size caps every buffered answer obeys. */

/** A response body in the content coding the server applied, decoded (gzip, deflate, br). */
export async function decodedBody(res: IncomingMessage, method: string): Promise<Readable> {
  const coding = (res.headers['content-encoding'] ?? '').trim().toLowerCase();
  const status = res.statusCode ?? 0;
  if (!coding || coding === 'identity' || method === 'HEAD' || status === 204 || status === 304)
    return res;
  const zlib = await import('node:zlib');
  // Lenient about a truncated end, as browsers (and fetch) are.
  const flush = { flush: zlib.constants.Z_SYNC_FLUSH, finishFlush: zlib.constants.Z_SYNC_FLUSH };
  const decoder =
    coding === 'gzip' || coding === 'x-gzip'
      ? zlib.createGunzip(flush)
      : coding === 'deflate'
        ? zlib.createInflate(flush)
        : coding === 'br'
          ? zlib.createBrotliDecompress({
              flush: zlib.constants.BROTLI_OPERATION_FLUSH,
              finishFlush: zlib.constants.BROTLI_OPERATION_FLUSH,
            })
          : undefined;
  if (!decoder) return res;
  const { pipeline } = await import('node:stream');
  return pipeline(res, decoder, () => undefined);
}

const MIB = 1024 * 1024;
export const DEFAULT_MAX_RESPONSE_BYTES = 256 * MIB;
/** Token and discovery answers are a few hundred bytes: 1 MiB is plenty. */
export const SMALL_RESPONSE_BYTES = MIB;

/** A size cap in force for one response. */
export interface Cap {
  bytes: number;
  small: boolean;
}

/** "response from <url> is over N MiB", exit 1. */
export function responseTooLarge(url: string, cap: Cap): SmartError {
  const mib = Number((cap.bytes / MIB).toFixed(3));
  return new SmartError('http', `response from ${redactUrl(url)} is over ${mib} MiB`, {
    code: 'response_too_large',
    hint: cap.small
      ? 'a token or discovery answer is never this big: check the URL (is it the token endpoint or FHIR base?)'
      : `raise --max-response <MiB> (SMART_MAX_RESPONSE, now ${mib}), or use \`smart api\`, which streams the body`,
  });
}

/** Content-Length above the cap: no need to read a byte. */
export function checkDeclaredLength(
  length: string | null | undefined,
  url: string,
  cap?: Cap,
): void {
  if (!cap || !length || !/^\d+$/.test(length.trim())) return;
  if (Number(length) > cap.bytes) throw responseTooLarge(url, cap);
}

/**
 * The whole body, decoded as UTF-8 (a BOM dropped), as fetch's text() does. Past the cap,
 * `abort` frees the connection and the read fails: the memory held stays bounded.
 */
export async function readText(
  body: Readable,
  cap: Cap | undefined,
  url: string,
  abort: () => void,
): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    total += (chunk as Buffer).length;
    if (cap && total > cap.bytes) {
      chunks.length = 0;
      abort();
      body.destroy();
      throw responseTooLarge(url, cap);
    }
    chunks.push(chunk as Buffer);
  }
  return new TextDecoder().decode(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
}

/** The `maxResponse` setting (MiB, as text) in bytes; the default when unset. */
export function maxResponseBytesOf(mib: string | undefined): number {
  return mib ? Math.round(Number(mib) * MIB) : DEFAULT_MAX_RESPONSE_BYTES;
}

/**
 * A streamed body read whole (an error body shown by `smart api`), within `maxBytes` like any
 * buffered answer.
 */
export function readBodyCapped(body: Readable, url: string, maxBytes: number): Promise<string> {
  return readText(body, { bytes: maxBytes, small: false }, url, () => body.destroy());
}

/** A streamed body that fails (and frees the connection) once it passes the cap. */
export async function cappedStream(
  body: Readable,
  cap: Cap,
  url: string,
  abort: () => void,
): Promise<Readable> {
  const { Transform, pipeline } = await import('node:stream');
  let total = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      total += chunk.length;
      if (total > cap.bytes) {
        abort();
        body.destroy();
        done(responseTooLarge(url, cap));
        return;
      }
      done(null, chunk);
    },
  });
  // pipeline: destroying the result (a page released early) also frees the connection.
  return pipeline(body, counter, () => undefined);
}
