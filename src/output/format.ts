export { OUTPUT_FORMATS, type OutputFormat } from './render.js';

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
