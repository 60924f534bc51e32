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
