import fc from 'fast-check';
import { statSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SmartError } from '../../../src/core/errors.js';
import type { HttpRequest, HttpResponse } from '../../../src/core/http/index.js';
import { buildKickoff, isFhirInstant, kickOff } from '../../../src/core/export/kickoff.js';
import { LineCounter } from '../../../src/core/export/lines.js';
import { planFiles, safeTypeName } from '../../../src/core/export/naming.js';
import {
  isTransientFailure,
  parseManifest,
  pollUntilComplete,
  quoteArg,
} from '../../../src/core/export/poll.js';
import { StateFile, readState } from '../../../src/core/export/state.js';
import { pollDelay } from '../../../src/core/export/timing.js';
import { prepareOutDir } from '../../../src/core/export/index.js';
import type {
  ExportEvent,
  ExportSession,
  ExportState,
  Manifest,
} from '../../../src/core/export/types.js';
import { tempDir } from '../../helpers/tmp.js';

const tmp = () => tempDir('smart-export-unit-');

function response(
  status: number,
  body: unknown = '',
  headers: Record<string, string> = {},
  url = 'http://fhir.test/fhir/$export-status/1',
): HttpResponse {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return {
    status,
    ok: status >= 200 && status < 300,
    url,
    headers: new Headers(headers),
    contentType: headers['content-type'] ?? 'application/json',
    text,
    json<T>() {
      return JSON.parse(text) as T;
    },
  };
}

/** A session answering from a script; records what was asked. */
function fakeSession(answers: Array<HttpResponse | Error>) {
  const calls: Array<{ url: string; init: HttpRequest }> = [];
  const session: ExportSession = {
    async request(url, init = {}) {
      calls.push({ url, init });
      const next = answers.shift();
      if (!next) throw new Error('no more answers');
      if (next instanceof Error) throw next;
      return { ...next, url };
    },
    resolve(p) {
      if (/^https?:/.test(p)) {
        if (new URL(p).origin !== 'http://fhir.test') throw new SmartError('usage', 'foreign');
        return p;
      }
      return `http://fhir.test/fhir/${p}`;
    },
    error(res, method = 'GET') {
      return new SmartError(
        res.status === 403 ? 'auth' : 'fhir',
        `${method} answered ${res.status}`,
        {
          status: res.status,
        },
      );
    },
  };
  return { session, calls };
}

const OO = (code: string, diagnostics = `x ${code}`) => ({
  resourceType: 'OperationOutcome',
  issue: [{ severity: 'error', code, diagnostics }],
});

describe('pollDelay (Retry-After clamping)', () => {
  const now = Date.parse('2024-06-01T00:00:00Z');
  it('takes delta-seconds, clamped to [1 s, 60 s]', () => {
    expect(pollDelay('5', 0, now)).toBe(5000);
    expect(pollDelay('0', 0, now)).toBe(1000);
    expect(pollDelay('0.2', 0, now)).toBe(1000);
    expect(pollDelay('3600', 0, now)).toBe(60_000);
  });
  it('takes an HTTP date', () => {
    expect(pollDelay(new Date(now + 7000).toUTCString(), 0, now)).toBe(7000);
    expect(pollDelay(new Date(now - 7000).toUTCString(), 0, now)).toBe(1000);
  });
  it('backs off exponentially without (or with a bad) Retry-After', () => {
    expect([0, 1, 2, 3, 10].map((a) => pollDelay(undefined, a, now))).toEqual([
      1000, 2000, 4000, 8000, 60_000,
    ]);
    expect(pollDelay('soon', 2, now)).toBe(4000);
  });
  it('honours other bounds (tests use a small minimum)', () => {
    expect(pollDelay('0', 0, now, { minMs: 10, maxMs: 50 })).toBe(10);
    expect(pollDelay('1', 0, now, { minMs: 10, maxMs: 50 })).toBe(50);
  });
});

describe('file naming', () => {
  const manifest: Manifest = {
    transactionTime: 't',
    request: 'r',
    requiresAccessToken: true,
    output: [
      { type: 'Patient', url: 'http://x/a/../../etc/passwd', count: 2 },
      { type: 'Observation', url: 'http://x/2' },
      { type: 'Patient', url: 'http://x/3', count: 1 },
      { type: '../../evil', url: 'http://x/4' },
    ],
    error: [{ type: 'OperationOutcome', url: 'http://x/e' }],
    deleted: [{ type: 'Bundle', url: 'http://x/d', count: 3 }],
  };
  it('names files by type and index, never by URL', () => {
    expect(planFiles(manifest).map((f) => f.name)).toEqual([
      'Patient.000.ndjson',
      'Observation.000.ndjson',
      'Patient.001.ndjson',
      'unknown______evil.000.ndjson',
      'error/OperationOutcome.000.ndjson',
      'deleted/Bundle.000.ndjson',
    ]);
    expect(planFiles(manifest)[0]).toMatchObject({ kind: 'output', count: 2 });
    expect(planFiles(manifest)[1]!.count).toBeUndefined();
  });
  it('widens the index past 1000 files of a type, and knows gzip', () => {
    const many: Manifest = {
      ...manifest,
      output: Array.from({ length: 1001 }, (_, i) => ({
        type: 'Observation',
        url: `http://x/${i}`,
      })),
      error: [],
      deleted: undefined,
    };
    const names = planFiles(many, 'application/fhir+ndjson+gzip').map((f) => f.name);
    expect(names[0]).toBe('Observation.0000.ndjson.gz');
    expect(names[1000]).toBe('Observation.1000.ndjson.gz');
  });
  it('cleans types', () => {
    expect(safeTypeName('Patient')).toBe('Patient');
    expect(safeTypeName('')).toBe('unknown');
    expect(safeTypeName(undefined)).toBe('unknown');
    expect(safeTypeName('a/b')).toBe('a_b');
  });
});

describe('LineCounter', () => {
  const count = (chunks: string[]) => {
    const c = new LineCounter();
    for (const s of chunks) c.push(Buffer.from(s));
    return c.end();
  };
  it('counts lines across chunk boundaries', () => {
    expect(count(['{"a":1}\n{"a"', ':2}\n'])).toBe(2);
    expect(count(['{"a":1}', '\n', '{"b":2}'])).toBe(2); // last line without a newline
    expect(count([''])).toBe(0);
    expect(count(['\n\n\n'])).toBe(0);
    expect(count(['a\r\n', '\r\n', 'b\r', '\n'])).toBe(2);
    expect(count(['a\n\nb\n'])).toBe(2);
    expect(count(['\r', '\r\n', ' \t', '\n'])).toBe(0); // blank however it is cut
    expect(count([' ', '{}', ' \n'])).toBe(1);
  });
  it('agrees with a split of the whole text, however it is chunked', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom('a', '{', '"', '\n', '\r', 'é', ' '), { maxLength: 200 }),
        fc.array(fc.nat(200), { maxLength: 10 }),
        (chars, cuts) => {
          const text = chars.join('');
          const buf = Buffer.from(text);
          const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
          const c = new LineCounter();
          let prev = 0;
          for (const p of [...points, buf.length]) {
            c.push(buf.subarray(prev, p));
            prev = p;
          }
          const expected = text.split('\n').filter((l) => /[^ \t\r]/.test(l)).length;
          expect(c.end()).toBe(expected);
          expect(c.bytes).toBe(buf.length);
        },
      ),
    );
  });
});

describe('state file', () => {
  const state: ExportState = {
    version: 1,
    statusUrl: 'http://fhir.test/fhir/$export-status/1',
    kickoff: {
      url: 'http://fhir.test/fhir/$export',
      method: 'GET',
      params: { level: { kind: 'system' }, method: 'GET' },
    },
    startedAt: '2024-06-01T00:00:00.000Z',
    status: 'in-progress',
  };
  it('round-trips through export.json, private to the user', async () => {
    const dir = tmp();
    const f = new StateFile(dir, structuredClone(state));
    await f.flush();
    expect(await readState(dir)).toEqual(state);
    expect(statSync(join(dir, 'export.json')).mode & 0o777).toBe(0o600);
  });
  it('coalesces touches and settles the last state', async () => {
    const dir = tmp();
    const f = new StateFile(dir, structuredClone(state), 10_000);
    await f.flush();
    f.state.status = 'downloading';
    f.touch();
    f.state.status = 'complete';
    f.touch();
    expect((await readState(dir)).status).toBe('in-progress');
    await f.settle();
    expect((await readState(dir)).status).toBe('complete');
  });
  it('names the problem in a missing or bad file', async () => {
    const dir = tmp();
    await expect(readState(dir)).rejects.toMatchObject({
      kind: 'usage',
      code: 'no_export_state',
      message: expect.stringContaining('not an export directory'),
    });
    writeFileSync(join(dir, 'export.json'), '{oops');
    await expect(readState(dir)).rejects.toMatchObject({ code: 'bad_export_state' });
    writeFileSync(join(dir, 'export.json'), JSON.stringify({ ...state, version: 9 }));
    await expect(readState(dir)).rejects.toThrow(/unsupported version 9/);
    writeFileSync(
      join(dir, 'export.json'),
      JSON.stringify({ ...state, files: [{ name: '../x', url: 'http://x' }] }),
    );
    await expect(readState(dir)).rejects.toThrow(/leaves the export directory/);
  });
  it('accepts only a new or empty --out', async () => {
    const dir = tmp();
    await prepareOutDir(join(dir, 'new', 'nested'));
    expect(statSync(join(dir, 'new', 'nested')).isDirectory()).toBe(true);
    await prepareOutDir(join(dir, 'new', 'nested')); // empty: fine
    mkdirSync(join(dir, 'full'));
    writeFileSync(join(dir, 'full', 'export.json'), '{}');
    await expect(prepareOutDir(join(dir, 'full'))).rejects.toMatchObject({
      kind: 'usage',
      message: expect.stringContaining('is not empty'),
      hint: expect.stringContaining('--resume'),
    });
    writeFileSync(join(dir, 'file'), 'x');
    await expect(prepareOutDir(join(dir, 'file'))).rejects.toThrow(/is a file/);
  });
});

describe('kick-off', () => {
  it('builds a GET with the parameters in the query', () => {
    const r = buildKickoff({
      level: { kind: 'group', id: 'g 1' },
      method: 'GET',
      types: ['Patient', 'Observation'],
      since: '2024-06-01T00:00:00Z',
      typeFilters: ['Observation?code=4548-4', 'Patient?gender=female'],
    });
    expect(r.method).toBe('GET');
    expect(r.headers).toEqual({ accept: 'application/fhir+json', prefer: 'respond-async' });
    const u = new URL(r.path, 'http://x/');
    expect(u.pathname).toBe('/Group/g%201/$export');
    expect(u.searchParams.get('_type')).toBe('Patient,Observation');
    expect(u.searchParams.get('_since')).toBe('2024-06-01T00:00:00Z');
    expect(u.searchParams.getAll('_typeFilter')).toEqual([
      'Observation?code=4548-4',
      'Patient?gender=female',
    ]);
  });
  it('builds a POST with a Parameters body', () => {
    const r = buildKickoff({
      level: { kind: 'patient' },
      method: 'POST',
      types: ['Patient', 'Condition'],
      since: '2024-06-01T00:00:00Z',
      outputFormat: 'application/fhir+ndjson',
    });
    expect(r.path).toBe('Patient/$export');
    expect(r.headers['content-type']).toBe('application/fhir+json');
    expect(JSON.parse(r.body!)).toEqual({
      resourceType: 'Parameters',
      parameter: [
        { name: '_outputFormat', valueString: 'application/fhir+ndjson' },
        { name: '_since', valueInstant: '2024-06-01T00:00:00Z' },
        { name: '_type', valueString: 'Patient' },
        { name: '_type', valueString: 'Condition' },
      ],
    });
  });
  it('validates FHIR instants', () => {
    for (const ok of [
      '2024-06-01T00:00:00Z',
      '2024-06-01T10:20:30.123+02:00',
      '2024-02-29T00:00:00Z',
    ])
      expect(isFhirInstant(ok), ok).toBe(true);
    for (const bad of [
      '2024-06-01',
      '2024-06-01T00:00Z',
      '2024-06-01T00:00:00',
      'yesterday',
      '2024-13-01T00:00:00Z',
    ])
      expect(isFhirInstant(bad), bad).toBe(false);
  });
  it('resolves a relative Content-Location against the kick-off URL', async () => {
    const { session, calls } = fakeSession([
      response(202, '', { 'content-location': '../fhir/$export-status/42' }),
    ]);
    const r = await kickOff(session, { level: { kind: 'system' }, method: 'GET' });
    expect(r.statusUrl).toBe('http://fhir.test/fhir/$export-status/42');
    expect(calls[0]!.init).toMatchObject({ method: 'GET', retry: false });
  });
  it('429 at kick-off: waits as Retry-After says, capped at 5 minutes, within the deadline', async () => {
    const params = { level: { kind: 'system' as const }, method: 'GET' as const };
    let now = 1_000_000;
    const slept: number[] = [];
    const waits: string[] = [];
    const wait = {
      deadline: now + 400_000,
      now: () => now,
      sleep: async (ms: number) => {
        slept.push(ms);
        now += ms;
      },
      onWait: (w: { reason: string }) => waits.push(w.reason),
    };
    const { session } = fakeSession([
      response(429, OO('throttled'), { 'retry-after': '3600' }),
      response(429, OO('throttled'), { 'retry-after': '3600' }),
      response(202, '', { 'content-location': 'http://fhir.test/fhir/$export-status/1' }),
    ]);
    // The first wait is capped at 5 minutes; a second would pass the deadline: the 429 stands.
    await expect(kickOff(session, params, undefined, wait)).rejects.toMatchObject({
      code: 'export_busy',
    });
    expect(slept).toEqual([300_000]);
    expect(waits).toHaveLength(1);
  });
  it('fails clearly: no Content-Location, 429, 403, a foreign status URL', async () => {
    const params = { level: { kind: 'system' as const }, method: 'GET' as const };
    await expect(kickOff(fakeSession([response(202)]).session, params)).rejects.toMatchObject({
      code: 'no_content_location',
    });
    await expect(
      kickOff(fakeSession([response(429, OO('throttled'))]).session, params),
    ).rejects.toMatchObject({ code: 'export_busy', hint: expect.stringContaining('cancel') });
    await expect(
      kickOff(fakeSession([response(403, OO('forbidden'))]).session, params),
    ).rejects.toMatchObject({
      kind: 'auth',
    });
    await expect(
      kickOff(
        fakeSession([response(202, '', { 'content-location': 'http://evil.test/status' })]).session,
        params,
      ),
    ).rejects.toThrow(/foreign/);
  });
});

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
