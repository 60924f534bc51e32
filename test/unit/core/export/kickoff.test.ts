import { describe, expect, it } from 'vitest';
import { buildKickoff, isFhirInstant, kickOff } from '../../../../src/core/export/kickoff.js';
import { OO, fakeSession, response } from './helpers.js';

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
