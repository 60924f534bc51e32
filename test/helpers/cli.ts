import { execa } from 'execa';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tempDir } from './tmp.js';

export const ROOT = resolve(import.meta.dirname, '../..');
export const BIN = join(ROOT, 'bin', 'smart.js');

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
}

/** Run `node bin/smart.js` with a scrubbed environment; never throws on a non-zero exit. */
export async function smart(args: string[], options: RunOptions = {}): Promise<RunResult> {
  const ws = options.ws ?? makeWorkspace();
  const env: Record<string, string | undefined> = {
    PATH: process.env.PATH,
    NO_COLOR: '1',
    ...ws.env,
    ...options.env,
  };
  const r = await execa(process.execPath, [BIN, ...args], {
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

/** Parse the JSON a command printed, with the raw text in the failure message. */
export function json<T = unknown>(r: RunResult): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`stdout is not JSON (exit ${r.exitCode}):\n${r.stdout}\nstderr:\n${r.stderr}`);
  }
}
