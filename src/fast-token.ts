import { createContext, runSignal, type RunOptions } from './context.js';

// A bare `smart token`, without Commander (src/fast.ts decides when).

export async function runToken(opts: RunOptions): Promise<number> {
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
