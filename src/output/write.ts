import type { OutStream } from '../context.js';

// Apart from index.ts so that `smart token` loads no more of output/ than this.

export function writeOut(stream: OutStream, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const ok = stream.write(text, (err) => (err ? reject(err) : undefined));
    if (ok) resolve();
    else stream.once('drain', () => resolve());
  });
}

export function jsonText(value: unknown, pretty: boolean): string {
  return (pretty ? JSON.stringify(value, null, 2) : JSON.stringify(value)) + '\n';
}
