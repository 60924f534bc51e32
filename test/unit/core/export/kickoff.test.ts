import { describe, expect, it } from 'vitest';
import {
  MAX_KICKOFF_WAIT_MS,
  buildKickoff,
  isFhirInstant,
  kickOff,
  kickoffPath,
  type KickoffWait,
} from '../../../../src/core/export/kickoff.js';
import type { ExportParams } from '../../../../src/core/export/types.js';
import { testClock } from '../../../helpers/cli.js';
import { reply } from '../http/harness.js';
import { OO, fakeSession, response, useSessionServer } from './helpers.js';

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

describe('kick-off requests', () => {
  it('one path per level; a group id is one path segment', () => {
    expect(kickoffPath({ kind: 'system' })).toBe('$export');
    expect(kickoffPath({ kind: 'patient' })).toBe('Patient/$export');
    expect(kickoffPath({ kind: 'group', id: 'g1' })).toBe('Group/g1/$export');
    expect(kickoffPath({ kind: 'group', id: '../Patient/x?_type=y#z' })).toBe(
      'Group/..%2FPatient%2Fx%3F_type%3Dy%23z/$export',
    );
  });

  it('GET without parameters has no query; --output-format goes in the query', () => {
    expect(buildKickoff({ level: { kind: 'system' }, method: 'GET' })).toEqual({
      path: '$export',
      method: 'GET',
      headers: { accept: 'application/fhir+json', prefer: 'respond-async' },
    });
    expect(
      buildKickoff({ level: { kind: 'system' }, method: 'GET', types: [], outputFormat: 'ndjson' })
        .path,
    ).toBe('$export?_outputFormat=ndjson');
  });

  it('POST: every value its own parameter, _typeFilter included; none at all is an empty list', () => {
    const r = buildKickoff({
      level: { kind: 'group', id: 'g' },
      method: 'POST',
      typeFilters: ['Observation?code=4548-4', 'Patient?gender=female'],
    });
    expect(r.path).toBe('Group/g/$export');
    expect(r.headers).toEqual({
      accept: 'application/fhir+json',
      prefer: 'respond-async',
      'content-type': 'application/fhir+json',
    });
    expect(JSON.parse(r.body!).parameter).toEqual([
      { name: '_typeFilter', valueString: 'Observation?code=4548-4' },
      { name: '_typeFilter', valueString: 'Patient?gender=female' },
    ]);
    expect(JSON.parse(buildKickoff({ level: { kind: 'system' }, method: 'POST' }).body!)).toEqual({
      resourceType: 'Parameters',
      parameter: [],
    });
  });
});

describe('kickOff against a server', () => {
  // The client would retry a 503 three times: the kick-off must not let it.
  const { srv, session } = useSessionServer({ retries: 3, sleep: async () => undefined });
  const system: ExportParams = { level: { kind: 'system' }, method: 'GET' };
  const fhirJson = { 'content-type': 'application/fhir+json' };
  const accepted = () => reply(202, { 'content-location': `${srv.base}/fhir/status/9` });

  /** A --wait of `waitMs` on a test clock; the waits announced, in order. */
  function waitFor(waitMs: number) {
    const clock = testClock();
    const announced: Array<{ status: number; reason: string; delayMs: number }> = [];
    const wait: KickoffWait = {
      deadline: clock.now() + waitMs,
      now: clock.now,
      sleep: clock.sleep,
      onWait: (w) => announced.push(w),
    };
    return { clock, wait, announced };
  }

  it('GET: sends the parameters, Accept, Prefer and the token; returns the status URL', async () => {
    srv.handler = accepted();
    const r = await kickOff(session, {
      ...system,
      types: ['Patient'],
      since: '2024-06-01T00:00:00Z',
    });
    expect(r).toEqual({
      statusUrl: `${srv.base}/fhir/status/9`,
      url: `${srv.base}/fhir/$export?_since=2024-06-01T00%3A00%3A00Z&_type=Patient`,
    });
    expect(srv.hits).toHaveLength(1);
    expect(srv.hits[0]!.method).toBe('GET');
    expect(srv.hits[0]!.url).toBe('/fhir/$export?_since=2024-06-01T00%3A00%3A00Z&_type=Patient');
    expect(srv.hits[0]!.headers).toMatchObject({
      accept: 'application/fhir+json',
      prefer: 'respond-async',
      authorization: 'Bearer test-token',
    });
  });

  it('POST: the Parameters body reaches the server', async () => {
    let received = '';
    srv.handler = (req, res) => {
      req.setEncoding('utf8');
      req.on('data', (d: string) => (received += d));
      req.on('end', () => accepted()(req, res));
    };
    await kickOff(session, { level: { kind: 'patient' }, method: 'POST', types: ['Patient'] });
    expect(srv.hits[0]).toMatchObject({ method: 'POST', url: '/fhir/Patient/$export' });
    expect(srv.hits[0]!.headers['content-type']).toBe('application/fhir+json');
    expect(JSON.parse(received)).toEqual({
      resourceType: 'Parameters',
      parameter: [{ name: '_type', valueString: 'Patient' }],
    });
  });

  it('202 without Content-Location: a server bug, said so (exit 1)', async () => {
    srv.handler = reply(202);
    await expect(kickOff(session, system)).rejects.toMatchObject({
      kind: 'http',
      exitCode: 1,
      status: 202,
      code: 'no_content_location',
      message: `GET ${srv.base}/fhir/$export answered 202 without a Content-Location header`,
      hint: expect.stringContaining('this is a server bug'),
    });
  });

  it('429 without --wait: one request, the server text, and what to do', async () => {
    srv.handler = reply(
      429,
      { ...fhirJson, 'retry-after': '1' },
      JSON.stringify(OO('throttled', 'an export is already running')),
    );
    const e = await kickOff(session, system).catch((x: unknown) => x);
    expect(e).toMatchObject({
      kind: 'http',
      exitCode: 1,
      status: 429,
      code: 'export_busy',
      message: expect.stringMatching(
        /^GET \S+\/fhir\/\$export answered 429: .*an export is already running/,
      ),
      hint: expect.stringContaining('smart export cancel <dir>'),
    });
    expect((e as Error).message).not.toContain('--wait');
    expect(srv.hits).toHaveLength(1);
  });

  it('429 with Retry-After and --wait: waits as told, says why, then goes on', async () => {
    srv.handler = (req, res, n) =>
      n === 1
        ? reply(
            429,
            { ...fhirJson, 'retry-after': '12' },
            JSON.stringify(OO('throttled', 'busy now')),
          )(req, res)
        : accepted()(req, res);
    const { clock, wait, announced } = waitFor(60_000);
    const r = await kickOff(session, system, undefined, wait);
    expect(r.statusUrl).toBe(`${srv.base}/fhir/status/9`);
    expect(clock.waits).toEqual([12_000]);
    expect(announced).toEqual([
      { status: 429, reason: expect.stringContaining('busy now'), delayMs: 12_000 },
    ]);
    expect(srv.hits).toHaveLength(2);
  });

  it('429 with a Retry-After date, or none: the date, else 5 s', async () => {
    const { clock, wait } = waitFor(600_000);
    // An HTTP date has whole seconds: 20 to 21 s from now, not 19 and some when now ends in .999.
    const at = new Date(Math.ceil((clock.now() + 20_000) / 1000) * 1000).toUTCString();
    srv.handler = (req, res, n) =>
      n === 1
        ? reply(429, { 'retry-after': at })(req, res)
        : n === 2
          ? reply(429, { 'retry-after': 'whenever' })(req, res)
          : accepted()(req, res);
    await kickOff(session, system, undefined, wait);
    expect(clock.waits).toHaveLength(2);
    expect(clock.waits[0]).toBeGreaterThan(19_000);
    expect(clock.waits[0]).toBeLessThanOrEqual(21_000);
    expect(clock.waits[1]).toBe(5_000);
  });

  it('429 once --wait has no room for the wait: stops, and says --wait did not allow it', async () => {
    srv.handler = reply(429, { 'retry-after': '30', 'content-type': 'text/plain' }, 'slow down');
    const { clock, wait, announced } = waitFor(29_000);
    await expect(kickOff(session, system, undefined, wait)).rejects.toMatchObject({
      code: 'export_busy',
      message: expect.stringContaining(
        'answered 429 (and --wait does not allow another wait): text/plain: slow down',
      ),
    });
    expect(clock.waits).toEqual([]);
    expect(announced).toEqual([]);
    expect(srv.hits).toHaveLength(1);
    expect(MAX_KICKOFF_WAIT_MS).toBe(300_000);
  });

  it('Ctrl-C during a 429 wait stops at once, with the signal reason', async () => {
    const controller = new AbortController();
    srv.handler = reply(429, { 'retry-after': '5' });
    const { wait } = waitFor(600_000);
    const reason = new Error('interrupted');
    wait.onWait = () => controller.abort(reason);
    await expect(kickOff(session, system, controller.signal, wait)).rejects.toBe(reason);
    expect(srv.hits).toHaveLength(1);
  });

  it('200 or 201 instead of 202: not an asynchronous export', async () => {
    for (const status of [200, 201]) {
      srv.handler = reply(status, fhirJson, JSON.stringify({ resourceType: 'Bundle' }));
      await expect(kickOff(session, system)).rejects.toMatchObject({
        kind: 'http',
        status,
        code: 'not_async',
        message: `GET ${srv.base}/fhir/$export answered ${status} instead of 202 Accepted`,
        hint: expect.stringContaining('supports Bulk Data $export'),
      });
    }
  });

  it('another error: worded by the session, and never retried (a second job could start)', async () => {
    srv.handler = reply(503, fhirJson, JSON.stringify(OO('transient', 'maintenance')));
    await expect(kickOff(session, system)).rejects.toMatchObject({
      status: 503,
      message: expect.stringContaining('maintenance'),
    });
    expect(srv.hits).toHaveLength(1);
    srv.handler = reply(400, fhirJson, JSON.stringify(OO('invalid', '_type Foo is not supported')));
    await expect(
      kickOff(session, { ...system, method: 'POST', types: ['Foo'] }),
    ).rejects.toMatchObject({
      kind: 'fhir',
      exitCode: 1,
      status: 400,
      message: expect.stringMatching(/^POST .* answered 400: .*_type Foo is not supported/),
    });
  });
});
