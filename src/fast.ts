import type { RunOptions } from './context.js';

// Command lines served without Commander and the command manifest, for the calls scripts make
// again and again: `$(smart token)`. Anything else, and every error, goes through program.ts
// as usual. This file only decides: every command line loads it, so it loads nothing.

/** The runner for `argv` when it is one of the fast command lines. */
export function fastRun(argv: string[]): ((opts: RunOptions) => Promise<number>) | undefined {
  if (argv.length === 1 && argv[0] === 'token')
    return async (opts) => (await import('./fast-token.js')).runToken(opts);
  return undefined;
}
