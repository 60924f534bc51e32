import { PassThrough, Writable } from 'node:stream';

/**
 * A write stream in front of an SDK's upload body whose end is held back: ending the write
 * stream hands over every byte but does not end the body, so the SDK cannot complete the upload
 * until `release()` (after the line count check). `fail()` breaks the body with an error, which
 * makes the SDK drop the upload instead of completing it with what it has.
 */
export interface Gate {
  /** Where the download writes (backpressure from the upload). */
  stream: Writable;
  /** What the SDK reads. */
  body: PassThrough;
  /** Bytes handed over so far. */
  readonly bytes: number;
  /** End the body: the SDK completes the upload. */
  release(): void;
  /** Break the body: the SDK aborts the upload. */
  fail(e: Error): void;
}

export function gate(highWaterMark = 64 * 1024): Gate {
  const body = new PassThrough({ highWaterMark });
  let bytes = 0;
  let waiting: ((e?: Error | null) => void) | undefined;
  const wake = (e?: Error | null) => {
    const cb = waiting;
    waiting = undefined;
    cb?.(e);
  };
  body.on('drain', () => wake());
  body.on('close', () => wake(body.errored ?? new Error('upload closed')));
  body.on('error', () => undefined);
  const stream = new Writable({
    highWaterMark,
    write(chunk: Buffer, _enc, cb) {
      if (body.destroyed) return cb(body.errored ?? new Error('upload closed'));
      bytes += chunk.length;
      if (body.write(chunk)) cb();
      else waiting = cb;
    },
    final(cb) {
      // Every byte is handed over; the end of the body waits for release().
      cb();
    },
  });
  // Failures reach the download through its pipeline and through commit(); a failure after the
  // pipeline finished (the SDK failing while the line check runs) must not be an unhandled event.
  stream.on('error', () => undefined);
  return {
    stream,
    body,
    get bytes() {
      return bytes;
    },
    release() {
      if (!body.destroyed) body.end();
    },
    fail(e: Error) {
      if (!body.destroyed) body.destroy(e);
      if (!stream.destroyed) stream.destroy(e);
    },
  };
}
