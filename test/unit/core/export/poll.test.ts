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
import { testClock } from '../../../helpers/cli.js';
import { reply, type Handler } from '../http/harness.js';
import { OO, fakeSession, response, useSessionServer } from './helpers.js';

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

describe('pollUntilComplete against a server', () => {
  const { srv, session } = useSessionServer();
  const fhirJson = { 'content-type': 'application/fhir+json' };
  const manifest = (base: string) => ({
    transactionTime: '2024-06-01T00:00:00Z',
    request: `${base}/fhir/$export`,
    requiresAccessToken: true,
    output: [{ type: 'Patient', url: `${base}/files/1`, count: 3 }],
    error: [],
  });
  const complete: Handler = (_req, res) =>
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify(manifest(srv.base)));
  /** Answers in turn; the last one for every further request. */
  const script =
    (...handlers: Handler[]): Handler =>
    (req, res, n) =>
      handlers[Math.min(n, handlers.length) - 1]!(req, res, n);

  function poll(
    extra: { waitMs?: number; signal?: AbortSignal; outDir?: string; statusUrl?: string } = {},
  ) {
    const clock = testClock();
    const events: ExportEvent[] = [];
    const p = pollUntilComplete({
      session,
      statusUrl: extra.statusUrl ?? `${srv.base}/fhir/status/1`,
      waitMs: extra.waitMs ?? 3_600_000,
      signal: extra.signal,
      outDir: extra.outDir,
      now: clock.now,
      sleep: clock.sleep,
      onEvent: (e) => events.push(e),
    });
    return { p, clock, events };
  }

  it('asks with Accept application/json and the token; reports X-Progress (bounded), or none', async () => {
    srv.handler = script(
      reply(202, { 'x-progress': 'Patient: 10 of 200', 'retry-after': '3' }),
      reply(202, { 'x-progress': 'x'.repeat(500) }),
      reply(202, { 'x-progress': '' }),
      complete,
    );
    const { p, clock, events } = poll();
    const r = await p;
    expect(r.state).toBe('complete');
    expect(srv.hits[0]!.headers).toMatchObject({
      accept: 'application/json',
      authorization: 'Bearer test-token',
    });
    const status = events.filter((e) => e.event === 'status');
    expect(status.map((e) => e.progress)).toEqual([
      'Patient: 10 of 200',
      'x'.repeat(200),
      undefined,
    ]);
    expect(status.map((e) => e.nextPollMs)).toEqual([3_000, 2_000, 4_000]);
    expect(clock.waits).toEqual([3_000, 2_000, 4_000]);
    // Time as this clock tells it: the waits it was asked for.
    expect(status[2]!.elapsedMs).toBeGreaterThanOrEqual(5_000);
  });

  it('Retry-After as an HTTP date, clamped to [1 s, 60 s]', async () => {
    const { p, clock } = poll();
    const at = (ms: number) => new Date(clock.now() + ms).toUTCString();
    srv.handler = script(
      reply(202, { 'retry-after': at(10_000) }),
      reply(202, { 'retry-after': at(-60_000) }),
      reply(202, { 'retry-after': at(3_600_000) }),
      complete,
    );
    await p;
    expect(clock.waits[0]).toBeGreaterThan(8_000);
    expect(clock.waits[0]).toBeLessThanOrEqual(10_000);
    expect(clock.waits.slice(1)).toEqual([1_000, 60_000]);
  });

  it('the manifest text is returned as sent, its relative URLs read against the status URL', async () => {
    const text = JSON.stringify({
      ...manifest(srv.base),
      output: [{ type: 'Patient', url: '../files/1' }],
      deleted: [{ type: 'Bundle', url: `${srv.base}/files/d` }],
    });
    srv.handler = (_req, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(text);
    const r = await poll().p;
    expect(r.state === 'complete' && r.text).toBe(text);
    expect(r.state === 'complete' && r.manifest).toMatchObject({
      output: [{ url: `${srv.base}/fhir/files/1` }],
      deleted: [{ type: 'Bundle' }],
    });
  });

  it.each([
    ['not JSON', 'text/html', '<html>oops</html>', /the export manifest: /],
    ['a list', 'application/json', '[]', /not valid: expected a JSON object/],
    ['null', 'application/json', 'null', /not valid: expected a JSON object/],
    ['no output', 'application/json', '{"error":[]}', /"output" is missing or not a list/],
    ['error not a list', 'application/json', '{"output":[],"error":{}}', /"error" is not a list/],
    [
      'a deleted entry without url',
      'application/json',
      '{"output":[],"deleted":[{"type":"Patient"}]}',
      /deleted\[0\]\.url is missing/,
    ],
    [
      'an output url that is a number',
      'application/json',
      '{"output":[{"type":"Patient","url":7}]}',
      /output\[0\]\.url is missing/,
    ],
  ])(
    'a 200 that is not a manifest (%s): bad_manifest, naming the status URL',
    async (_what, type, body, message) => {
      srv.handler = reply(200, { 'content-type': type }, body);
      const e = await poll().p.catch((x: unknown) => x);
      expect(e).toMatchObject({
        kind: 'http',
        exitCode: 1,
        code: 'bad_manifest',
        message: expect.stringMatching(message),
      });
      expect(srv.hits).toHaveLength(1);
    },
  );

  it('fills what a lenient reader expects: no error list, requiresAccessToken only when true', async () => {
    srv.handler = reply(
      200,
      { 'content-type': 'application/json' },
      JSON.stringify({ output: [], requiresAccessToken: 'true', transactionTime: 5 }),
    );
    const r = await poll().p;
    expect(r.state === 'complete' && r.manifest).toMatchObject({
      transactionTime: '',
      request: '',
      requiresAccessToken: false,
      error: [],
    });
    expect(r.state === 'complete' && 'deleted' in r.manifest).toBe(false);
  });

  it('tolerates 8 network failures in a row, not 9', async () => {
    const reset: Handler = (req) => req.socket.destroy();
    srv.handler = script(...Array<Handler>(8).fill(reset), complete);
    const first = poll();
    expect((await first.p).state).toBe('complete');
    expect(first.events.filter((e) => e.event === 'wait' && e.status === undefined)).toHaveLength(
      8,
    );
    srv.hits = [];
    srv.handler = reset;
    await expect(poll().p).rejects.toMatchObject({ kind: 'network', exitCode: 4 });
    expect(srv.hits).toHaveLength(9);
  });

  it('a 202 starts the count of network failures again', async () => {
    const reset: Handler = (req) => req.socket.destroy();
    srv.handler = script(
      ...Array<Handler>(8).fill(reset),
      reply(202),
      ...Array<Handler>(8).fill(reset),
      complete,
    );
    expect((await poll().p).state).toBe('complete');
    expect(srv.hits).toHaveLength(18);
  });

  it('Ctrl-C while waiting between polls: stops with the reason, asks no more', async () => {
    const controller = new AbortController();
    const reason = new Error('interrupted');
    srv.handler = reply(202, { 'retry-after': '5' });
    const clock = testClock();
    const p = pollUntilComplete({
      session,
      statusUrl: `${srv.base}/fhir/status/1`,
      waitMs: 3_600_000,
      signal: controller.signal,
      now: clock.now,
      sleep: clock.sleep,
      onEvent: (e) => {
        if (e.event === 'status') controller.abort(reason);
      },
    });
    await expect(p).rejects.toBe(reason);
    expect(srv.hits).toHaveLength(1);
    expect(clock.waits).toEqual([]);
  });

  it('Ctrl-C while a status request is on the wire: stops with the reason', async () => {
    const controller = new AbortController();
    const reason = new Error('interrupted');
    srv.handler = () => controller.abort(reason); // never answers
    await expect(poll({ signal: controller.signal }).p).rejects.toBe(reason);
  });

  it('401 (even with a new token) ends it: the session words it, exit 3', async () => {
    srv.handler = reply(401, fhirJson, JSON.stringify(OO('login')));
    await expect(poll().p).rejects.toMatchObject({
      kind: 'auth',
      exitCode: 3,
      status: 401,
      code: 'export_failed',
      message: expect.stringMatching(/^the export failed: GET .* answered 401/),
      hint: expect.stringContaining('--token-url'),
    });
    expect(srv.hits).toHaveLength(1);
  });

  it('410: the job is gone, with the answer for the caller', async () => {
    srv.handler = reply(410, fhirJson, JSON.stringify(OO('deleted')));
    const r = await poll().p;
    expect(r.state).toBe('gone');
    expect(r.state === 'gone' && r.response.status).toBe(410);
  });

  it('--wait over: exit 4, the time, the last progress, and how to go on (the dir quoted)', async () => {
    srv.handler = reply(202, { 'retry-after': '50', 'x-progress': '50%' });
    const { p, clock } = poll({ waitMs: 120_000, outDir: '/tmp/my export' });
    await expect(p).rejects.toMatchObject({
      kind: 'network',
      exitCode: 4,
      code: 'export_timeout',
      message: expect.stringMatching(
        /^the export is not complete after .* \(limit 120 s\); last status: 50%$/,
      ),
      hint: expect.stringContaining("smart export --resume '/tmp/my export'"),
    });
    expect(clock.waits).toEqual([50_000, 50_000]);
  });

  it('a 429 wait that --wait has no room for ends it, with the server text', async () => {
    srv.handler = reply(
      429,
      { 'retry-after': '60', 'content-type': 'text/plain' },
      'quota used up',
    );
    await expect(poll({ waitMs: 30_000 }).p).rejects.toMatchObject({
      code: 'export_timeout',
      message: expect.stringContaining(
        'last status: the server asked to slow down (429): text/plain: quota used up',
      ),
    });
  });

  it('a 4xx without an OperationOutcome, 6 times: an HTTP error (exit 1), with how to go on', async () => {
    srv.handler = reply(400, { 'content-type': 'text/plain' }, 'bad request');
    await expect(poll({ outDir: 'out' }).p).rejects.toMatchObject({
      kind: 'http',
      exitCode: 1,
      status: 400,
      code: 'export_status_failed',
      hint: expect.stringContaining('`smart export cancel out`'),
    });
    expect(srv.hits).toHaveLength(6);
  });

  it('a status URL on another origin never gets the token: fails at once', async () => {
    await expect(poll({ statusUrl: 'http://127.0.0.2:9/status' }).p).rejects.toMatchObject({
      code: 'foreign_origin',
    });
  });
});
