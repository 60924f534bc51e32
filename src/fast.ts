import { createContext, runSignal, type RunOptions } from './context.js';

// Command lines served without Commander and the command manifest (~40 ms less at start-up),
// for the calls scripts make again and again: `$(smart token)`. Anything else, and every
// error, goes through program.ts as usual. The build makes dist/fast.js one file with the
// modules a cached token needs (scripts/bundle-fast.mjs): keep them free of module state.

/** The runner for `argv` when it is one of the fast command lines. */
export function fastRun(argv: string[]): ((opts: RunOptions) => Promise<number>) | undefined {
  if (argv.length === 1 && argv[0] === 'token') return runToken;
  return undefined;
}

async function runToken(opts: RunOptions): Promise<number> {
  const ctx = createContext(opts, runSignal(opts.signal));
  // What Commander's optsWithGlobals() gives for `smart token` without flags.
  ctx.globals = { color: true, input: true };
  try {
    const { printToken } = await import('./commands/token.js');
    await printToken(ctx, { cache: true });
    return 0;
  } catch (e) {
    const { failed } = await import('./program.js');
    return failed(ctx, e);
  }
}
