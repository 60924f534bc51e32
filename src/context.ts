import { readFileSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { sleep, type Clock } from './core/clock.js';
import type { HttpClient } from './core/http/index.js';
import type { Settings } from './core/settings.js';
import type { GlobalFlags } from './core/settings/table.js';
import { SmartError } from './core/errors.js';
import { escapeControls } from './output/escape.js';

let version: string | undefined;

/**
 * smart's version, from package.json, read on first need: a request (User-Agent) and Commander's
 * --version need it, a cached token does not (a file read and this module's file URL less).
 */
export function smartVersion(): string {
  version ??= (
    JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version: string;
    }
  ).version;
  return version;
}

import type { OutputFormat } from './output/format.js';

export type { OutputFormat };

export type OutStream = Writable & { isTTY?: boolean; columns?: number };
export type InStream = Readable & { isTTY?: boolean };

export interface Streams {
  stdout: OutStream;
  stderr: OutStream;
  stdin: InStream;
}

/**
 * Global options as Commander parsed them (flags only; the resolver adds env and profile). The
 * settings' flags come from the settings table (src/core/settings/table.ts).
 */
export interface GlobalOptions extends GlobalFlags {
  output?: OutputFormat;
  json?: boolean;
  verbose?: boolean;
  debug?: boolean;
  color?: boolean;
  input?: boolean;
  /** `smart export --trust-origin`, repeatable. */
  trustOrigin?: string[];
}

export interface Logger {
  /** Progress and information for a person; always on stderr. */
  info(message: string): void;
  warn(message: string): void;
  /** Shown only with --verbose (one line per HTTP request and similar). */
  verbose(message: string): void;
  /** Shown only with --debug. */
  debug(message: string): void;
}

/**
 * One context per run: created by cli.cts (tests build their own), passed to every command.
 * Settings and the HTTP client are built lazily so that `--help` costs nothing.
 */
export interface Context {
  io: Streams;
  env: Record<string, string | undefined>;
  cwd: string;
  version: string;
  /** Milliseconds since the epoch: `clock.now`. */
  now(): number;
  /** The run's clock: every wait (HTTP retries, the token endpoint, export polls) uses it. */
  clock: Clock;
  /** Aborted on SIGINT/SIGTERM: long-running work stops cleanly. */
  readonly signal: AbortSignal;
  globals: GlobalOptions;
  log: Logger;
  /** True when a prompt may be shown: stdin is a TTY and --no-input was not given. */
  interactive(): boolean;
  settings(): Promise<Settings>;
  http(): Promise<HttpClient>;
}

/** What one run of the CLI is given. */
export interface RunOptions {
  argv: string[];
  io: Streams;
  env: Record<string, string | undefined>;
  cwd: string;
  /** Injectable for tests: the time, and the waits (a test clock may move time instead). */
  clock?: Clock;
  /** The time only (waits stay real); `clock` wins. */
  now?: () => number;
  signal?: AbortSignal;
}

/**
 * The context of one run (cli.cts via program.ts or fast.ts; tests build their own). `signal`
 * may be given as a function, called when the context's signal is first asked for: a run that
 * never waits on anything (a cached token) then never makes it (an AbortSignal's first listener
 * costs ~0.5 ms of start-up).
 */
export function createContext(
  opts: RunOptions,
  signal: AbortSignal | (() => AbortSignal),
): Context {
  const { io, env } = opts;
  let runAbort = typeof signal === 'function' ? undefined : signal;
  const signalOf = () => (runAbort ??= (signal as () => AbortSignal)());
  const clock: Clock = opts.clock ?? { now: opts.now ?? (() => Date.now()), sleep };
  const ctx: Context = {
    io,
    env,
    cwd: opts.cwd,
    get version() {
      return smartVersion();
    },
    now: clock.now,
    clock,
    get signal() {
      return signalOf();
    },
    globals: {},
    // Log lines can quote a server (file names, OperationOutcomes, URLs): escaped for the terminal.
    log: {
      info: (m) => void io.stderr.write(escapeControls(m) + '\n'),
      warn: (m) => void io.stderr.write(`warning: ${escapeControls(m)}\n`),
      verbose: (m) => {
        if (ctx.globals.verbose || ctx.globals.debug) io.stderr.write(`* ${escapeControls(m)}\n`);
      },
      debug: (m) => {
        if (ctx.globals.debug) io.stderr.write(`debug: ${escapeControls(m)}\n`);
      },
    },
    interactive: () => Boolean(io.stdin.isTTY) && ctx.globals.input !== false,
    settings: (() => {
      let cached: ReturnType<Context['settings']> | undefined;
      return () => {
        cached ??= import('./core/settings.js').then(({ resolveSettings }) =>
          resolveSettings({ flags: ctx.globals, env, cwd: opts.cwd }),
        );
        return cached;
      };
    })(),
    http: (() => {
      let cached: ReturnType<Context['http']> | undefined;
      return () => {
        cached ??= (async () => {
          const settings = await ctx.settings();
          const [{ createHttpClient, maxResponseBytesOf }, { isTrue }] = await Promise.all([
            import('./core/http/index.js'),
            import('./core/settings.js'),
          ]);
          return createHttpClient({
            timeoutMs: settings.timeoutMs,
            userAgent: `smart/${smartVersion()}`,
            caFile: settings.caFile,
            allowInsecureHttp: isTrue(settings.insecure),
            maxResponseBytes: maxResponseBytesOf(settings.maxResponse),
            env,
            signal: signalOf(),
            now: clock.now,
            sleep: clock.sleep,
            onRequest: (e) => {
              // Only --verbose and --debug print it: no line (and no redaction) otherwise.
              if (!ctx.globals.verbose && !ctx.globals.debug) return;
              ctx.log.verbose(
                `${e.method} ${e.url} ${e.status ?? e.error ?? '-'} ${e.ms}ms${e.attempt > 1 ? ` (attempt ${e.attempt})` : ''}`,
              );
            },
          });
        })();
        return cached;
      };
    })(),
  };
  return ctx;
}

/**
 * The signal of one run: aborted, with an "interrupted" error, when `outer` is (Ctrl-C), also
 * when `outer` was aborted before this was made (createContext makes it on first need).
 */
export function runSignal(outer?: AbortSignal): AbortSignal {
  const controller = new AbortController();
  const abort = () =>
    controller.abort(
      new SmartError('runtime', 'interrupted', {
        code: 'interrupted',
        // SIGTERM exits 143, SIGINT (Ctrl-C) 130: 128 + the signal's number, as shells do.
        details: { signal: outer?.reason === 'SIGTERM' ? 'SIGTERM' : 'SIGINT' },
      }),
    );
  if (outer?.aborted) abort();
  else outer?.addEventListener('abort', abort, { once: true });
  return controller.signal;
}
