import type { Readable } from 'node:stream';

/** What a stream is waited for to say: text it contains, a pattern, or any test of all of it. */
export type Said = string | RegExp | ((text: string) => boolean);

/** What a stream (a child's stderr, a command's output) has said so far, and waits on what it will say. */
export interface StreamText {
  /** Everything read so far. */
  (): string;
  /**
   * Resolves with all the text so far once it `said` (at once if it already has); rejects, with
   * the text, when the stream ends first (the process exited without saying it).
   */
  until(said: Said): Promise<string>;
}

function holds(said: Said, text: string): boolean {
  if (typeof said === 'string') return text.includes(said);
  if (said instanceof RegExp) {
    said.lastIndex = 0;
    return said.test(text);
  }
  return said(text);
}

/** Reads `stream` as it comes: no polling, no timer; each chunk checks the waits open. */
export function streamText(stream: Readable): StreamText {
  let text = '';
  let ended = false;
  const waits = new Set<{ said: Said; resolve: (t: string) => void; reject: (e: Error) => void }>();
  const check = () => {
    for (const w of [...waits]) {
      if (holds(w.said, text)) {
        waits.delete(w);
        w.resolve(text);
      } else if (ended) {
        waits.delete(w);
        w.reject(new Error(`the stream ended without saying ${String(w.said)}:\n${text}`));
      }
    }
  };
  stream.on('data', (d: Buffer | string) => {
    text += d.toString();
    check();
  });
  const end = () => {
    ended = true;
    check();
  };
  stream.once('end', end);
  stream.once('close', end);
  const read = (() => text) as StreamText;
  read.until = (said) =>
    new Promise<string>((resolve, reject) => {
      waits.add({ said, resolve, reject });
      check();
    });
  return read;
}
