import { Transform, type TransformCallback } from 'node:stream';

const LF = 0x0a;
const CR = 0x0d;

/**
 * Counts NDJSON lines in a byte stream, chunk by chunk, without holding more than one chunk:
 * a line is counted when its newline arrives, or at the end when the last line has no newline.
 * Empty lines (and a lone CR of a CRLF file) are not resources and are not counted.
 */
export class LineCounter {
  lines = 0;
  bytes = 0;
  /** Bytes of the current, unfinished line that are not CR. */
  private pending = 0;

  push(chunk: Uint8Array): void {
    this.bytes += chunk.length;
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(LF, start);
      if (nl < 0) break;
      if (this.pending > 0 || contentBetween(chunk, start, nl)) this.lines++;
      this.pending = 0;
      start = nl + 1;
    }
    if (start < chunk.length && contentBetween(chunk, start, chunk.length)) this.pending++;
  }

  /** The count once the stream has ended (a last line without a newline counts). */
  end(): number {
    if (this.pending > 0) {
      this.lines++;
      this.pending = 0;
    }
    return this.lines;
  }
}

/** True when chunk[from, to) holds something other than a carriage return. */
function contentBetween(chunk: Uint8Array, from: number, to: number): boolean {
  const len = to - from;
  if (len <= 0) return false;
  return len > 1 || chunk[from] !== CR;
}

/** A pass-through stream that counts lines and reports each chunk. */
export function countingStream(counter: LineCounter, onChunk: () => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      counter.push(chunk);
      onChunk();
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      counter.end();
      cb();
    },
  });
}
