import type { OutStream } from '../context.js';
import { usageError } from '../core/errors.js';
import { PIPED_FORMAT, type Result, type ResultKind, type Results } from './results.js';

/** What a renderer may use: stdout for data, the logger for lines on stderr. */
export interface RenderIO {
  io: { stdout: OutStream };
  env: Record<string, string | undefined>;
  log: {
    info(message: string): void;
    warn(message: string): void;
    verbose(message: string): void;
  };
}

export type Renderer<R> = (result: R, io: RenderIO) => Promise<void>;

/** A format that makes no sense for a kind of result (a CSV of `discover`): exit 2. */
export const UNSUPPORTED = 'unsupported';
export type Unsupported = typeof UNSUPPORTED;

/**
 * One format's renderers: one per kind of result, none optional, so that a new kind or a new
 * format does not typecheck until every pair is rendered or marked unsupported.
 */
export type FormatRenderers = { [K in ResultKind]: Renderer<Results[K]> | Unsupported } & {
  /** `smart export`'s progress: JSON events on stdout (true), or lines for a person on stderr. */
  progressOnStdout: boolean;
};

/**
 * Every format `-o` takes, and where its renderers are (loaded only when used). A new format is
 * its file under formats/ and one line here; the compiler then names every kind of result the
 * file does not render yet.
 */
const FORMATS = {
  table: () => import('./formats/table.js').then((m) => m.renderers),
  json: () => import('./formats/json.js').then((m) => m.renderers),
  ndjson: () => import('./formats/ndjson.js').then((m) => m.renderers),
  csv: () => import('./formats/csv.js').then((m) => m.renderers),
} satisfies Record<string, () => Promise<FormatRenderers>>;

export type OutputFormat = keyof typeof FORMATS;

/** The formats, in -o order (the choices of -o, the lists of an unsupported-format error). */
export const OUTPUT_FORMATS = Object.keys(FORMATS) as OutputFormat[];

/** The renderers of one format. */
export function renderersOf(format: OutputFormat): Promise<FormatRenderers> {
  return FORMATS[format]();
}

/** The formats that can show this kind of result, in -o order. */
export async function formatsFor(kind: ResultKind): Promise<OutputFormat[]> {
  const all = await Promise.all(OUTPUT_FORMATS.map((f) => renderersOf(f)));
  return OUTPUT_FORMATS.filter((_, i) => all[i]![kind] !== UNSUPPORTED);
}

function unsupported(command: string, format: OutputFormat, supported: OutputFormat[]) {
  const list =
    supported.length > 1
      ? `${supported.slice(0, -1).join(', ')} or ${supported[supported.length - 1]}`
      : supported.join('');
  return usageError(`${command} cannot print ${format}: use -o ${list}`, undefined, {
    code: 'unsupported_format',
    details: { format, supported },
  });
}

/**
 * THE output format decision, made once per run before any work: -o wins, then --json; with
 * neither, a table on a terminal and, piped, the kind's own default (JSON for data). A format the
 * result cannot be shown in is a usage error (exit 2) that lists the ones it can.
 */
export async function decideFormat(
  kind: ResultKind,
  command: string,
  flags: { output?: OutputFormat; json?: boolean },
  stdoutIsTTY: boolean,
): Promise<OutputFormat> {
  const format = flags.output ?? (flags.json ? 'json' : stdoutIsTTY ? 'table' : PIPED_FORMAT[kind]);
  if ((await renderersOf(format))[kind] === UNSUPPORTED) {
    throw unsupported(command, format, await formatsFor(kind));
  }
  return format;
}

/** Show a result in the decided format. */
export async function render(result: Result, format: OutputFormat, io: RenderIO): Promise<void> {
  const renderer = (await renderersOf(format))[result.kind] as Renderer<Result> | Unsupported;
  if (renderer === UNSUPPORTED) {
    throw unsupported(result.kind, format, await formatsFor(result.kind));
  }
  await renderer(result, io);
}
