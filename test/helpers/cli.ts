import { execa } from 'execa';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import type { Clock } from '../../src/core/clock.js';
import { tempDir } from './tmp.js';

export const ROOT = resolve(import.meta.dirname, '../..');
export const BIN = join(ROOT, 'bin', 'smart.cjs');

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export interface Workspace {
  home: string;
  config: string;
  cache: string;
  env: Record<string, string>;
}

/** A temp HOME with XDG dirs: each test gets a clean config and cache. */
export function makeWorkspace(): Workspace {
  const home = tempDir('smart-e2e-');
  const config = join(home, '.config');
  const cache = join(home, '.cache');
  mkdirSync(config, { recursive: true });
  mkdirSync(cache, { recursive: true });
  return {
    home,
    config,
    cache,
    env: { HOME: home, XDG_CONFIG_HOME: config, XDG_CACHE_HOME: cache },
  };
}

export interface RunOptions {
  ws?: Workspace;
  env?: Record<string, string | undefined>;
  input?: string;
  cwd?: string;
  timeout?: number;
  /** runSmart only: the run's clock (see testClock), so waits move time instead of taking it. */
  clock?: Clock;
  /** smart only: options for node itself, before bin/smart.cjs (`--require` a preload). */
  nodeArgs?: string[];
}

/** The environment a run gets: PATH, NO_COLOR, the workspace's dirs, then `options.env`. */
function runEnv(ws: Workspace, options: RunOptions): Record<string, string | undefined> {
  return { PATH: process.env.PATH, NO_COLOR: '1', ...ws.env, ...options.env };
}

/**
 * Run `node bin/smart.cjs` as a process, with a scrubbed environment; never throws on a non-zero
 * exit. For what only a process shows: the exit status the shell sees, signals, a closed pipe,
 * the installed package. Everything else runs in-process through runSmart (same arguments).
 */
export async function smart(args: string[], options: RunOptions = {}): Promise<RunResult> {
  const ws = options.ws ?? makeWorkspace();
  const env = runEnv(ws, options);
  const r = await execa(process.execPath, [...(options.nodeArgs ?? []), BIN, ...args], {
    env: env as Record<string, string>,
    extendEnv: false,
    reject: false,
    cwd: options.cwd ?? ws.home,
    input: options.input,
    stdin: options.input === undefined ? 'ignore' : undefined,
    timeout: options.timeout ?? 60_000,
    stripFinalNewline: false,
  });
  return { stdout: r.stdout as string, stderr: r.stderr as string, exitCode: r.exitCode ?? -1 };
}

/** A stream that keeps what is written to it (not a terminal, like a pipe). */
function sink(): { stream: PassThrough; text(): string } {
  const chunks: Buffer[] = [];
  const stream = Object.assign(new PassThrough(), { isTTY: false });
  stream.on('data', (c: Buffer) => chunks.push(Buffer.from(c)));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

/**
 * Run smart in this process: the entry bin/smart.cjs reaches through src/cli.cts (the fast path
 * for a bare `smart token`, else program.ts's run()), with in-memory stdin/stdout/stderr, the
 * same scrubbed environment and working dir as smart(), and the exit code run() returns (the
 * one cli.cts would set). Stdin is not a terminal: `input`, or empty. About 200 ms of CPU less
 * than a process per call.
 */
export async function runSmart(args: string[], options: RunOptions = {}): Promise<RunResult> {
  const ws = options.ws ?? makeWorkspace();
  const env = runEnv(ws, options);
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  const stdout = sink();
  const stderr = sink();
  const stdin = Object.assign(new PassThrough(), { isTTY: false });
  stdin.end(options.input);
  const [{ fastRun }, { run }] = await Promise.all([
    import('../../src/fast.js'),
    import('../../src/program.js'),
  ]);
  const controller = new AbortController();
  // Like execa's timeout (SIGTERM): the run stops cleanly instead of hanging the test.
  const timer = setTimeout(() => controller.abort('SIGTERM'), options.timeout ?? 60_000);
  try {
    const exitCode = await (fastRun(args) ?? run)({
      argv: args,
      io: { stdout: stdout.stream, stderr: stderr.stream, stdin },
      env,
      cwd: options.cwd ?? ws.home,
      signal: controller.signal,
      clock: options.clock,
    });
    // Let the streams hand over what was written in the last tick.
    await new Promise((r) => setImmediate(r));
    return { stdout: stdout.text(), stderr: stderr.text(), exitCode };
  } finally {
    clearTimeout(timer);
  }
}

export interface TestClock extends Clock {
  /** Every wait asked for, in ms, in order. */
  waits: number[];
}

/**
 * A clock whose waits take no time: sleep(ms) notes `ms` and moves this clock's time forward by
 * it (the wall clock still runs underneath). Give the same clock to the sandbox (`now`) and to
 * runSmart (`clock`), and a "Retry-After: 5" is waited for, as far as both can tell, at once.
 */
export function testClock(): TestClock {
  let offset = 0;
  const waits: number[] = [];
  return {
    waits,
    now: () => Date.now() + offset,
    sleep: async (ms, signal) => {
      signal?.throwIfAborted();
      waits.push(ms);
      offset += ms;
      await new Promise((r) => setImmediate(r));
      signal?.throwIfAborted();
    },
  };
}

/** Parse the JSON a command printed, with the raw text in the failure message. */
export function json<T = unknown>(r: RunResult): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`stdout is not JSON (exit ${r.exitCode}):\n${r.stdout}\nstderr:\n${r.stderr}`);
  }
}
