import type { OutputFormat } from '../context.js';

export const OUTPUT_FORMATS: OutputFormat[] = ['table', 'json', 'ndjson', 'csv'];

/** --output wins, then --json; otherwise a table for a person and JSON for a pipe. */
export function chooseOutputFormat(
  opts: { output?: string; json?: boolean },
  stdoutIsTTY: boolean,
): OutputFormat {
  if (opts.output) return opts.output as OutputFormat;
  if (opts.json) return 'json';
  return stdoutIsTTY ? 'table' : 'json';
}

/** The width a table may take when nothing says otherwise. */
export const DEFAULT_WIDTH = 80;

/**
 * The terminal's width: the stream's own, else $COLUMNS (a table forced onto a pipe), else the
 * fallback (80).
 * `||`, not `??`: a pty whose size was never set reports 0 columns.
 */
export function terminalWidth(
  stream: { columns?: number } | undefined,
  env: Record<string, string | undefined> = {},
  fallback = DEFAULT_WIDTH,
): number {
  const fromEnv = Number(env.COLUMNS);
  return stream?.columns || (Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : fallback);
}
