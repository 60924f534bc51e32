import {
  createContext,
  runSignal,
  type Context,
  type GlobalOptions,
  type RunOptions,
} from './context.js';
import type { ApiOptions } from './commands/api.js';
import type { QueryOptions } from './commands/query.js';
import type { PlainCommandLine } from './fast.js';
import type { OutputFormat } from './output/format.js';

// The command lines src/fast.ts picks, run without Commander: what program.ts would do for
// them, with the options Commander would have given (test/unit/fast.test.ts holds the two side
// by side). Anything unexpected goes to program.ts.

/** What Commander's optsWithGlobals() gives when no option is on the command line. */
const NO_OPTIONS: GlobalOptions = { color: true, input: true };

/** Run an action as program.ts would, with these options: its errors printed, its exit code. */
async function runWith(
  opts: RunOptions,
  globals: GlobalOptions,
  action: (ctx: Context) => Promise<void>,
): Promise<number> {
  const ctx = createContext(opts, () => runSignal(opts.signal));
  ctx.globals = globals;
  try {
    await action(ctx);
    return 0;
  } catch (e) {
    const { failed } = await import('./program.js');
    return failed(ctx, e);
  }
}

/** A bare `smart token`. */
export function runToken(opts: RunOptions): Promise<number> {
  return runWith(opts, { ...NO_OPTIONS }, async (ctx) => {
    const { printToken } = await import('./commands/token.js');
    await printToken(ctx, { cache: true });
  });
}

export type PlainInvocation = { globals: GlobalOptions } & (
  | { command: 'query'; target: string; params: string[]; opts: QueryOptions }
  | { command: 'api'; words: string[]; opts: ApiOptions }
);

/**
 * What the command's action gets from Commander for a plain command line: the global options
 * (with the command's own, which optsWithGlobals() merges in) and the action's arguments.
 * Undefined when Commander would refuse the line (an output format it does not know).
 */
export async function plainInvocation(
  line: PlainCommandLine,
): Promise<PlainInvocation | undefined> {
  const { OUTPUT_FORMATS } = await import('./output/format.js');
  if (line.output !== undefined && !(OUTPUT_FORMATS as readonly string[]).includes(line.output))
    return undefined;
  const globals: GlobalOptions = {
    ...NO_OPTIONS,
    ...(line.output !== undefined ? { output: line.output as OutputFormat } : {}),
    ...(line.json ? { json: true } : {}),
  };
  if (line.command === 'query') {
    const [target, ...params] = line.words;
    return { command: 'query', globals, target: target!, params, opts: {} };
  }
  if (line.command === 'api') {
    // -H collects into a list that starts empty.
    const opts: ApiOptions = { header: [] };
    return { command: 'api', globals: { ...globals, ...opts }, words: line.words, opts };
  }
  return undefined;
}

/** `smart query <words>` or `smart api <words>`, with at most the output format. */
export async function runPlain(opts: RunOptions, line: PlainCommandLine): Promise<number> {
  const call = await plainInvocation(line);
  if (!call) return (await import('./program.js')).run(opts);
  return runWith(opts, call.globals, async (ctx) => {
    if (call.command === 'query') {
      const { runQuery } = await import('./commands/query.js');
      await runQuery(ctx, call.target, call.params, call.opts);
    } else {
      const { runApi } = await import('./commands/api.js');
      await runApi(ctx, call.words, call.opts);
    }
  });
}
