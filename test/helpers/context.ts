import { PassThrough } from 'node:stream';
import type { Context } from '../../src/context.js';
import { systemClock } from '../../src/core/clock.js';
import { ROOT } from './cli.js';

/**
 * A run context for building the Commander program in a test (help texts, the manifest, the
 * options): silent streams, no environment, and no settings or HTTP (they reject if used).
 */
export function quietContext(): Context {
  const io = { stdout: new PassThrough(), stderr: new PassThrough(), stdin: new PassThrough() };
  return {
    io,
    env: {},
    cwd: ROOT,
    version: '0.0.0',
    now: Date.now,
    clock: systemClock,
    signal: new AbortController().signal,
    globals: {},
    log: { info() {}, warn() {}, verbose() {}, debug() {} },
    interactive: () => false,
    settings: () => Promise.reject(new Error('not in this test')),
    http: () => Promise.reject(new Error('not in this test')),
  };
}
