import { describe, expect, it } from 'vitest';
import { SmartError } from '../../../../src/core/errors.js';
import type { HttpResponse } from '../../../../src/core/http/index.js';
import {
  isTransientFailure,
  parseManifest,
  pollUntilComplete,
  quoteArg,
} from '../../../../src/core/export/poll.js';
import type { ExportEvent } from '../../../../src/core/export/types.js';
import { OO, fakeSession, response } from './helpers.js';

describe('polling', () => {
  const manifest = {
    transactionTime: '2024-06-01T00:00:00Z',
    request: 'http://fhir.test/fhir/$export',
    requiresAccessToken: true,
    output: [{ type: 'Patient', url: 'http://fhir.test/files/1', count: 3 }],
    error: [],
  };
  const run = (answers: Array<HttpResponse | Error>, waitMs = 600_000) => {
    const { session, calls } = fakeSession(answers);
    const events: ExportEvent[] = [];
    const sleeps: number[] = [];
    let clock = 0;
    const p = pollUntilComplete({
      session,
      statusUrl: 'http://fhir.test/fhir/$export-status/1',
      waitMs,
      now: () => clock,
      onEvent: (e) => events.push(e),
      sleep: async (ms) => {
        sleeps.push(ms);
        clock += ms;
      },
    });
    return { p, events, sleeps, calls };
  };

  it('waits through 202, 429 and a transient 503, then returns the manifest', async () => {
    const { p, events, sleeps, calls } = run([
      response(202, '', { 'x-progress': '10%', 'retry-after': '2' }),
      response(429, OO('throttled'), { 'retry-after': '3' }),
      response(503, OO('transient')),
      response(500, OO('exception')),
      new SmartError('network', 'connection reset', { code: 'ECONNRESET' }),
      response(202, '', { 'x-progress': '90%' }),
      response(200, manifest),
    ]);
    const r = await p;
    expect(r.state).toBe('complete');
    expect(r.state === 'complete' && r.manifest.output).toHaveLength(1);
    expect(sleeps).toEqual([2000, 3000, 2000, 4000, 8000, 2000]);
    expect(
      events.filter((e) => e.event === 'status').map((e) => e.event === 'status' && e.progress),
    ).toEqual(['10%', '90%']);
    expect(
      events.filter((e) => e.event === 'wait').map((e) => e.event === 'wait' && e.status),
    ).toEqual([429, 503, 500, undefined]);
    // Our loop is the only one that waits: the HTTP client's retries are off.
    expect(calls.every((c) => c.init.retry === false)).toBe(true);
    expect(calls[0]!.init.headers).toEqual({ accept: 'application/json' });
  });
  it('retries a non-transient error 5 times in a row (waits capped at 10 s), then fails naming the URL and the text', async () => {
    const fail = () => response(500, OO('processing', 'the export job crashed'));
    const { p, sleeps, calls } = run(Array.from({ length: 7 }, fail));
    await expect(p).rejects.toMatchObject({
      kind: 'fhir',
      code: 'export_status_failed',
      message: expect.stringMatching(
        /status URL http:\/\/fhir\.test\/fhir\/\$export-status\/1 answered 500 6 times in a row: .*the export job crashed/,
      ),
      hint: expect.stringContaining('--resume'),
    });
    expect(calls).toHaveLength(6);
    expect(sleeps).toEqual([1000, 2000, 4000, 8000, 10_000]);
    // A Retry-After over the cap is capped too; a 202 in between starts the count again.
    const {
      p: p2,
      sleeps: s2,
      calls: c2,
    } = run([
      response(400, OO('invalid'), { 'retry-after': '120' }),
      response(502, '<html>bad gateway</html>'),
      response(202, ''),
      ...Array.from({ length: 6 }, () => response(400, OO('invalid'))),
    ]);
    await expect(p2).rejects.toMatchObject({ code: 'export_status_failed', status: 400 });
    expect(c2).toHaveLength(9);
    expect(s2.slice(0, 2)).toEqual([10_000, 2000]);
  });
  it('waits through 429, 503 and transient outcomes as long as --wait allows', async () => {
    const answers = [
      ...Array.from({ length: 12 }, (_, i) =>
        i % 3 === 0
          ? response(503, 'busy')
          : i % 3 === 1
            ? response(500, OO('transient'))
            : response(429, OO('throttled')),
      ),
      response(200, manifest),
    ];
    const { p } = run(answers, 3_600_000);
    expect((await p).state).toBe('complete');
  });
  it('fails at once when the status request is refused (403)', async () => {
    const { p, calls } = run([response(403, OO('forbidden'))]);
    await expect(p).rejects.toThrow(/the export failed/);
    expect(calls).toHaveLength(1);
  });
  it('reports a job that is gone', async () => {
    const { p } = run([response(404, OO('not-found'))]);
    expect((await p).state).toBe('gone');
  });
  it('gives up after --wait', async () => {
    const answers = Array.from({ length: 20 }, () => response(202, '', { 'retry-after': '30' }));
    const { p } = run(answers, 100_000);
    await expect(p).rejects.toMatchObject({ kind: 'network', code: 'export_timeout' });
  });
  it('knows transient failures', () => {
    expect(isTransientFailure(response(503, OO('transient')))).toBe(true);
    expect(isTransientFailure(response(500, OO('timeout')))).toBe(true);
    expect(isTransientFailure(response(500, OO('processing')))).toBe(false);
    expect(isTransientFailure(response(503, '<html>unavailable</html>'))).toBe(true);
    expect(isTransientFailure(response(502, '<html>bad gateway</html>'))).toBe(false);
    expect(isTransientFailure(response(500, '<html>oops</html>'))).toBe(false);
    expect(isTransientFailure(response(400, OO('transient')))).toBe(false);
  });
  it('checks the manifest', () => {
    expect(() => parseManifest({}, 'u')).toThrow(/"output" is missing/);
    expect(() => parseManifest({ output: [{ type: 'P' }] }, 'u')).toThrow(/output\[0\]\.url/);
    expect(() => parseManifest({ output: [{ type: 'P', url: '/rel' }] }, 'u')).toThrow(/not a URL/);
    expect(
      parseManifest({ output: [{ type: 'P', url: '../files/1' }] }, 'http://h/fhir/status/1')
        .output[0]!.url,
    ).toBe('http://h/fhir/files/1');
    const m = parseManifest({ output: [] }, 'u');
    expect(m).toMatchObject({ error: [], requiresAccessToken: false });
  });
});

describe('quoteArg', () => {
  it('quotes only when needed', () => {
    expect(quoteArg('./export-1')).toBe('./export-1');
    expect(quoteArg('/tmp/my export')).toBe("'/tmp/my export'");
    expect(quoteArg("it's")).toBe(`'it'\\''s'`);
  });
});
