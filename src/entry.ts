import type { RunOptions } from './context.js';

// The entry of the CLI's bundle (scripts/bundle-cli.mjs, run by src/compile-cache.ts): what
// src/cli.cts, the process, asks for once it knows the command line is not `--version` or
// `--help`. Everything is loaded on demand from here, so that each command line runs only the
// chunks of its own modules.

export { fastRun } from './fast.js';

/** Every command line that fastRun() does not serve: Commander and the command's modules. */
export async function run(opts: RunOptions): Promise<number> {
  return (await import('./program.js')).run(opts);
}
