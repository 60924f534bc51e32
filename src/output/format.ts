/**
 * The output formats `-o` takes. A new format is one more name here, one line in the registry
 * of src/output/render.ts and its renderer file under src/output/formats/ (the compiler then
 * names every result the file does not render yet).
 */
export const OUTPUT_FORMATS = ['table', 'json', 'ndjson', 'csv'] as const;

export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

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
