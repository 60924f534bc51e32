import type { RunOptions } from './context.js';

// Command lines served without Commander and the command manifest, for the calls scripts make
// again and again: `$(smart token)`, `smart api /Patient`, `smart query Observation code=x -o
// json`. Anything else, and every error, goes through program.ts as usual. This file only
// decides: every command line loads it, so it loads nothing.

/** The commands whose plain command lines fast-run.ts runs. */
const PLAIN = new Set(['query', 'api']);

/**
 * `<command> <word>...` where the words hold no option but the output format (`-o <format>`,
 * `--output <format>`, `--output=<format>`, `--json`, each at most once): what Commander would
 * parse without a question. Anything else (another option, `--`, a word starting with `-`, a
 * command without its argument) is left to Commander. The format is checked by the runner.
 */
export interface PlainCommandLine {
  command: string;
  words: string[];
  output?: string;
  json?: true;
}

export function plainCommandLine(argv: string[]): PlainCommandLine | undefined {
  const [command, ...rest] = argv;
  if (command === undefined || !PLAIN.has(command)) return undefined;
  const line: PlainCommandLine = { command, words: [] };
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (!a.startsWith('-')) {
      line.words.push(a);
      continue;
    }
    if (a === '--json' && !line.json) {
      line.json = true;
      continue;
    }
    const value = a.startsWith('--output=')
      ? a.slice('--output='.length)
      : (a === '-o' || a === '--output') && i + 1 < rest.length
        ? rest[++i]!
        : undefined;
    if (value === undefined || line.output !== undefined) return undefined;
    line.output = value;
  }
  return line.words.length ? line : undefined;
}

/** The runner for `argv` when it is one of the fast command lines. */
export function fastRun(argv: string[]): ((opts: RunOptions) => Promise<number>) | undefined {
  if (argv.length === 1 && argv[0] === 'token')
    return async (opts) => (await import('./fast-run.js')).runToken(opts);
  const line = plainCommandLine(argv);
  if (line) return async (opts) => (await import('./fast-run.js')).runPlain(opts, line);
  return undefined;
}
