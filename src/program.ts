import { Command, CommanderError, Help, Option } from 'commander';
import {
  createContext,
  runSignal,
  smartVersion,
  type Context,
  type GlobalOptions,
  type RunOptions,
} from './context.js';
import { fileSystemError, isSmartError } from './core/errors.js';
import { redactText, shortId } from './core/redact.js';
import { escapeControls } from './output/escape.js';
import { OUTPUT_FORMATS } from './output/format.js';
import { SETTINGS } from './core/settings/table.js';
import { commandManifest, type CommandEntry } from './commands/index.js';
import { settingOption } from './commands/options.js';

export type { RunOptions };

/**
 * The command a command line runs: the first word that is not a global option or its value
 * (`help <command>` names the command too). Undefined for `smart --help` and the like.
 */
export function targetCommand(program: Command, argv: string[]): string | undefined {
  const takesValue = new Set<string>();
  for (const o of program.options) {
    if (o.required || o.optional) {
      if (o.long) takesValue.add(o.long);
      if (o.short) takesValue.add(o.short);
    }
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return argv[i + 1];
    if (a.startsWith('-')) {
      if (!a.includes('=') && takesValue.has(a)) i++;
      continue;
    }
    if (a === 'help') {
      const next = argv.slice(i + 1).find((x) => !x.startsWith('-'));
      return next;
    }
    return a;
  }
  return undefined;
}

/**
 * `smart help jwks serve` reads as `smart jwks serve --help`: Commander's help command takes one
 * name only and would show the group's help.
 */
export function helpForSubcommand(argv: string[]): string[] {
  const i = argv.indexOf('help');
  if (i < 0 || argv.slice(0, i).some((a) => !a.startsWith('-'))) return argv;
  const words = argv.slice(i + 1);
  if (words.length < 2 || words.some((a) => a.startsWith('-'))) return argv;
  return [...argv.slice(0, i), ...words, '--help'];
}

class NeedsFullProgram extends Error {}

/**
 * Build the program. With `argv`, only the command that will run is loaded; the others are
 * listed by name and description (the manifest), so that help and start-up stay fast.
 */
export async function buildProgram(ctx: Context, argv?: string[]): Promise<Command> {
  const program = new Command('smart');
  program
    .description(
      'SMART Backend Services from the terminal: keys, client registration, tokens, FHIR queries and bulk export.',
    )
    .version(smartVersion(), '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help for a command')
    .addHelpCommand('help [command]', 'show help for a command')
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => void ctx.io.stdout.write(s),
      writeErr: (s) => void ctx.io.stderr.write(s),
      // Commander's own parse errors are rewritten by run() into one line.
      outputError: () => undefined,
    })
    .addOption(settingOption('profile'))
    .addOption(
      new Option(
        '-o, --output <format>',
        'output format (default: table on a TTY, json when piped)',
      ).choices(OUTPUT_FORMATS),
    )
    .option('--json', 'shortcut for --output json');
  // Every other global setting, in the table's order: flags, help and env names from its rows.
  for (const s of SETTINGS)
    if (s.global && s.key !== 'profile') program.addOption(settingOption(s.key));
  program
    .option('--verbose', 'log one line per HTTP request on stderr (secrets redacted)')
    .option('--debug', 'show stack traces and error causes')
    .option('--no-color', 'disable colours (also NO_COLOR=1)')
    .option('--no-input', 'never prompt; a missing value is an error')
    .addHelpText(
      'after',
      `
Examples:
  $ smart demo                                  # the whole flow against a local sandbox
  $ smart keygen --alg RS384
  $ smart register-client my-client --jwks-uri https://example.org/jwks.json
  $ smart token
  $ smart query Observation code=4548-4 _count=2
  $ smart export --type Patient,Observation --out ./export

Exit codes: 0 ok, 1 runtime or server failure, 2 usage or input error,
3 authentication or authorization failure, 4 network failure or timeout,
70 a bug in smart (please report it), 130 interrupted (Ctrl-C), 143 stopped (SIGTERM).
Docs: README.md`,
    );

  program.hook('preAction', (_root, action) => {
    ctx.globals = action.optsWithGlobals() as GlobalOptions;
  });

  const target = argv === undefined ? undefined : targetCommand(program, argv);
  const terms = new Map<Command, string>();
  const registrations = await Promise.all(
    commandManifest.map(async (entry: CommandEntry) =>
      argv === undefined || entry.name === target ? entry.load() : undefined,
    ),
  );
  program.configureHelp({
    // One width everywhere, so help reads the same on a terminal, in a pipe and in the docs.
    helpWidth: 100,
    subcommandTerm(this: Help, cmd: Command): string {
      return terms.get(cmd) ?? Help.prototype.subcommandTerm.call(this, cmd);
    },
  });
  commandManifest.forEach((entry, i) => {
    const register = registrations[i];
    if (register) {
      register(program, ctx);
      return;
    }
    const stub = program
      .command(entry.name)
      .description(entry.description)
      .allowUnknownOption()
      .allowExcessArguments()
      .action(() => {
        throw new NeedsFullProgram(entry.name);
      });
    terms.set(stub, entry.term);
  });
  return program;
}

function commanderMessage(e: CommanderError): string {
  // "error: unknown command 'tokn'\n(Did you mean token?)" -> one line.
  const lines = e.message
    .replace(/^error:\s*/i, '')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const suggestion = lines.find((l) => /^\(Did you mean/i.test(l));
  const main = lines.filter((l) => l !== suggestion).join(' ');
  return suggestion ? `${main} ${suggestion.replace(/^\(Did you mean/, '(did you mean')}` : main;
}

/**
 * The hint for a usage error. An "unknown option" that cannot be one of ours (`-ys2nIAj…`, as a
 * server-assigned client id or a search value can start with a dash) is a value: it goes after
 * `--`, which ends the options.
 */
function usageHint(e: CommanderError): string {
  const option = /unknown option '([^']*)'/.exec(e.message)?.[1];
  if (option && !/^(-[a-zA-Z]|--[a-z][a-z0-9-]*)$/.test(option)) {
    return `if ${shortId(option)} is a value (an id or a search value that starts with "-"), put \`--\` before it: \`smart <command> [options] -- ${shortId(option)}\``;
  }
  return 'run `smart --help` (or `smart help <command>`) for usage';
}

export function printError(ctx: Context, e: unknown): number {
  const err = ctx.io.stderr;
  if (isSmartError(e)) {
    if (e.code === 'interrupted') {
      err.write('interrupted\n');
      return interruptCode(e);
    }
    // Messages quote servers (OperationOutcome diagnostics, bodies): one line, controls escaped.
    err.write(`error: ${escapeControls(e.message, { oneLine: true })}\n`);
    if (e.hint) err.write(`hint: ${escapeControls(e.hint, { oneLine: true })}\n`);
    if (ctx.globals.debug) {
      err.write(`${escapeControls(redactText(e.stack ?? ''))}\n`);
      let cause = (e as Error).cause;
      while (cause) {
        // A cause can quote what a server sent (newer V8s quote JSON.parse input): redact it too.
        err.write(
          `caused by: ${escapeControls(redactText(cause instanceof Error ? (cause.stack ?? cause.message) : String(cause)))}\n`,
        );
        cause = cause instanceof Error ? cause.cause : undefined;
      }
    }
    return e.exitCode;
  }
  if (e instanceof CommanderError) {
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return 0;
    // Help shown because something was missing (a group command without its subcommand).
    if (e.code === 'commander.help') return e.exitCode === 0 ? 0 : 2;
    if (e.code === 'commander.executeSubCommandAsync') return e.exitCode;
    err.write(`error: ${escapeControls(commanderMessage(e), { oneLine: true })}\n`);
    err.write(`hint: ${escapeControls(usageHint(e), { oneLine: true })}\n`);
    return 2;
  }
  // A file the environment will not let us read or write (a read-only or full disk, a file where
  // a directory should be) is not a bug: one line naming the path, exit 1.
  const fsError = fileSystemError(e);
  if (fsError) return printError(ctx, fsError);
  // Not ours: a bug. Keep the stack so it is never disguised as a user error.
  err.write(`smart: unexpected error (a bug, please report it):\n`);
  err.write(`${escapeControls(e instanceof Error ? (e.stack ?? e.message) : String(e))}\n`);
  return 70;
}

/** 130 after SIGINT (Ctrl-C), 143 after SIGTERM. */
function interruptCode(e: unknown): number {
  return isSmartError(e) && e.details?.signal === 'SIGTERM' ? 143 : 130;
}

/** Run the CLI; returns the exit code. Never calls process.exit. */
export async function run(opts: RunOptions): Promise<number> {
  const ctx = createContext(opts, () => runSignal(opts.signal));
  const argv = helpForSubcommand(opts.argv);
  try {
    const program = await buildProgram(ctx, argv);
    try {
      await program.parseAsync(argv, { from: 'user' });
    } catch (e) {
      // The argv scan guessed wrong (an unusual option order): load everything and parse again.
      if (!(e instanceof NeedsFullProgram)) throw e;
      await (await buildProgram(ctx)).parseAsync(argv, { from: 'user' });
    }
    return 0;
  } catch (e) {
    return failed(ctx, e);
  }
}

/** A run that threw: "interrupted" after Ctrl-C, else the error printed. The exit code. */
export function failed(ctx: Context, e: unknown): number {
  if (ctx.signal.aborted && !(isSmartError(e) && e.code !== 'interrupted')) {
    ctx.io.stderr.write('interrupted\n');
    return interruptCode(ctx.signal.reason);
  }
  return printError(ctx, e);
}
