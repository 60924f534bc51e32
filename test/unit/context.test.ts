import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createContext, runSignal, type RunOptions } from '../../src/context.js';
import { SmartError } from '../../src/core/errors.js';

const options = (): RunOptions => ({
  argv: [],
  io: {
    stdout: new PassThrough(),
    stderr: new PassThrough(),
    stdin: new PassThrough(),
  } as unknown as RunOptions['io'],
  env: {},
  cwd: process.cwd(),
});

describe("a run's signal", () => {
  it('is made when first asked for, once', () => {
    let made = 0;
    const outer = new AbortController();
    const ctx = createContext(options(), () => {
      made++;
      return runSignal(outer.signal);
    });
    expect(made).toBe(0);
    const signal = ctx.signal;
    expect(ctx.signal).toBe(signal);
    expect(made).toBe(1);
    expect(signal.aborted).toBe(false);
  });

  it('is aborted with "interrupted" when the outer signal is: SIGINT, SIGTERM', () => {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      const outer = new AbortController();
      const signal = runSignal(outer.signal);
      outer.abort(sig);
      expect(signal.aborted).toBe(true);
      expect(signal.reason).toBeInstanceOf(SmartError);
      expect((signal.reason as SmartError).code).toBe('interrupted');
      expect((signal.reason as SmartError).details).toEqual({ signal: sig });
    }
  });

  it('made after Ctrl-C, it is aborted already', () => {
    const outer = new AbortController();
    const ctx = createContext(options(), () => runSignal(outer.signal));
    outer.abort('SIGTERM');
    expect(ctx.signal.aborted).toBe(true);
    expect((ctx.signal.reason as SmartError).details).toEqual({ signal: 'SIGTERM' });
  });

  it('can be given as is (tests, the library)', () => {
    const controller = new AbortController();
    const ctx = createContext(options(), controller.signal);
    expect(ctx.signal).toBe(controller.signal);
  });
});
