import type { OutStream } from '../context.js';
import type { SearchStats } from '../core/fhir/index.js';
import { formatDuration } from '../core/duration.js';
import { formatCount } from './export-progress.js';
import { terminalWidth } from './format.js';
import type { RenderablePages } from './stream.js';

const FRAME_MS = 100;
const CLEAR = '\r\x1b[K';

/** The progress line of a paged search: `page 3 · 1,200 of 5,000 resources · 850/s · 1.4 s`. */
export function pagingLine(stats: SearchStats, elapsedMs: number): string {
  const secs = Math.max(0.001, elapsedMs / 1000);
  const of = stats.total !== undefined ? ` of ${formatCount(stats.total)}` : '';
  return (
    `page ${formatCount(Math.max(1, stats.pages))} · ${formatCount(stats.matches)}${of} resources · ` +
    `${formatCount(Math.round(stats.matches / secs))}/s · ${formatDuration(elapsedMs, 'clock')}`
  );
}

export interface PagingProgress {
  /** The same pages; the line is redrawn as each one arrives. */
  pages: RenderablePages;
  /** Where data goes: stdout, which first clears the line when it shares the terminal. */
  stdout: OutStream;
  /** Clear the line before a message on stderr (it is redrawn at the next page or tick). */
  clear(): void;
  /** Stop and clear the line (call it in a finally). */
  finish(): void;
}

/**
 * One line on stderr (a terminal) that updates while a search pages: pages fetched, resources
 * so far and their rate. It is redrawn at each page and every 100 ms, cleared at the end, and
 * cleared before anything is written to stdout on the same terminal.
 */
export function pagingProgress(
  pages: RenderablePages,
  streams: { stdout: OutStream; stderr: OutStream },
  now: () => number = Date.now,
): PagingProgress {
  const { stderr } = streams;
  const start = now();
  let drawn = false;
  let done = false;
  const clear = () => {
    if (drawn) stderr.write(CLEAR);
    drawn = false;
  };
  const draw = () => {
    if (done) return;
    const width = Math.max(20, terminalWidth(stderr) - 1);
    const line = pagingLine(pages.stats, now() - start);
    stderr.write(CLEAR + (line.length > width ? `${line.slice(0, width - 1)}…` : line));
    drawn = true;
  };
  const timer = setInterval(draw, FRAME_MS);
  timer.unref();

  const stdout = streams.stdout.isTTY
    ? (new Proxy(streams.stdout, {
        get(target, prop) {
          if (prop === 'write') {
            return (...args: Parameters<OutStream['write']>) => {
              clear();
              return target.write(...args);
            };
          }
          const value: unknown = Reflect.get(target, prop, target);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      }) as OutStream)
    : streams.stdout;

  return {
    pages: {
      stats: pages.stats,
      async *[Symbol.asyncIterator]() {
        for await (const page of pages) {
          draw();
          yield page;
        }
      },
    },
    stdout,
    clear,
    finish() {
      done = true;
      clearInterval(timer);
      clear();
    },
  };
}
