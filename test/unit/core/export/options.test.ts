import { describe, expect, it } from 'vitest';
import { createHttpClient } from '../../../../src/core/http/index.js';
import { DEFAULT_PARALLEL, DEFAULT_WAIT_MS, makeRun } from '../../../../src/core/export/options.js';
import { DirectorySink } from '../../../../src/core/export/sinks/directory.js';
import type { ExportEvent } from '../../../../src/core/export/types.js';
import { httpSession } from './helpers.js';

const session = httpSession(
  () => 'http://127.0.0.1:9',
  () => {
    throw new Error('no request in these tests');
  },
);
const http = () => createHttpClient({ retries: 0 });

describe('export run options', () => {
  it('the README defaults: 4 downloads at once, --wait 3600 s', () => {
    expect(DEFAULT_PARALLEL).toBe(4);
    expect(DEFAULT_WAIT_MS).toBe(3600 * 1000);
  });

  it('makeRun: a directory sink for outDir, the wall clock, events dropped', () => {
    const before = Date.now();
    const run = makeRun({ session, http, outDir: '/tmp/smart-never-created' });
    expect(run.sink).toBeInstanceOf(DirectorySink);
    expect(run.sink).toMatchObject({ kind: 'directory', location: '/tmp/smart-never-created' });
    expect(run.started).toBeGreaterThanOrEqual(before);
    expect(run.started).toBeLessThanOrEqual(Date.now());
    expect(run.now).toBe(Date.now);
    expect(() => run.emit({ event: 'warning', message: 'nobody listens' })).not.toThrow();
  });

  it('makeRun: the given sink, clock and event listener; started when made', () => {
    let t = 1_000;
    const events: ExportEvent[] = [];
    const sink = new DirectorySink('/tmp/smart-other');
    const run = makeRun({
      session,
      http,
      outDir: 's3://bucket/prefix',
      sink,
      now: () => t,
      onEvent: (e) => events.push(e),
    });
    t = 5_000;
    expect(run.sink).toBe(sink);
    expect(run.started).toBe(1_000);
    expect(run.now()).toBe(5_000);
    run.emit({ event: 'warning', message: 'heard' });
    expect(events).toEqual([{ event: 'warning', message: 'heard' }]);
    expect(run.o.outDir).toBe('s3://bucket/prefix');
  });
});
