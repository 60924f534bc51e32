import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bundle, Resource } from '../../src/core/fhir/index.js';
import { json, runSmart } from '../helpers/cli.js';
import { startQueryFlow, type QueryFlow } from './query-flow.js';

let flow: QueryFlow;
let run: (args: string[], env?: Record<string, string>) => ReturnType<typeof runSmart>;
/** Every Patient, read without --where: what the filters are checked against. */
let patients: Array<Resource & { gender?: string; birthDate?: string }>;

const FEMALE = "gender = 'female'";
const fhirRequests = (from: number) =>
  flow.sandbox.requests.slice(from).filter((r) => r.path.startsWith('/fhir/Patient'));

beforeAll(async () => {
  flow = await startQueryFlow();
  run = (args, env = {}) => runSmart(args, { ws: flow.ws, env: { ...flow.env, ...env } });
  const all = await run(['query', 'Patient', '--all', '-o', 'ndjson']);
  expect(all.exitCode, all.stderr).toBe(0);
  patients = all.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as (typeof patients)[number]);
});
afterAll(() => flow?.close());

describe('smart query --where', () => {
  it('keeps the resources for which the expression is true, page after page (ndjson)', async () => {
    const female = patients.filter((p) => p.gender === 'female').map((p) => p.id);
    // The filter must matter, and the pages must be several.
    expect(female.length).toBeGreaterThan(0);
    expect(female.length).toBeLessThan(patients.length);
    const from = flow.sandbox.requests.length;
    const r = await run([
      'query',
      'Patient',
      '--all',
      '--count',
      '2',
      '-o',
      'ndjson',
      '--where',
      FEMALE,
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    const kept = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Resource);
    expect(kept.map((p) => p.id)).toEqual(female);
    expect(fhirRequests(from).length).toBe(Math.ceil(patients.length / 2));
  });

  it('filters csv and table rows the same way, and says how many it kept', async () => {
    const female = patients.filter((p) => p.gender === 'female');
    const csv = await run(['query', 'Patient', '--all', '-o', 'csv', '--where', FEMALE]);
    expect(csv.exitCode, csv.stderr).toBe(0);
    const rows = csv.stdout.split('\r\n').filter(Boolean);
    expect(rows[0]).toBe('id,name,gender,birthDate');
    expect(rows.slice(1).map((l) => l.split(',')[0])).toEqual(female.map((p) => p.id));
    for (const row of rows.slice(1)) expect(row).toContain(',female,');

    const table = await run(['query', 'Patient', '-o', 'table', '--where', FEMALE], {
      COLUMNS: '200',
    });
    expect(table.exitCode, table.stderr).toBe(0);
    const body = table.stdout.split('\n').filter((l) => l.startsWith('│') && !l.includes('│ id '));
    expect(body.length).toBe(female.length);
    expect(table.stdout).not.toMatch(/│ male /);
    expect(table.stderr).toBe(`--where kept ${female.length} of ${patients.length} fetched\n`);
  });

  it('-o json: one searchset Bundle of the kept entries, without the server total', async () => {
    const born = patients.filter((p) => (p.birthDate ?? '9999') < '1970').map((p) => p.id);
    expect(born.length).toBeGreaterThan(0);
    const r = await run(['query', 'Patient', '-o', 'json', '--where', 'birthDate < @1970-01-01']);
    expect(r.exitCode, r.stderr).toBe(0);
    const bundle = json<Bundle>(r);
    expect(bundle).toMatchObject({ resourceType: 'Bundle', type: 'searchset' });
    expect(bundle.total).toBeUndefined();
    expect((bundle.entry ?? []).map((e) => e.resource?.id)).toEqual(born);
  });

  it('a read is shown only when it matches', async () => {
    const alicia = patients.find((p) => p.gender === 'female')!;
    const yes = await run(['query', `Patient/${alicia.id}`, '--where', FEMALE]);
    expect(json<Resource>(yes).id).toBe(alicia.id);
    const no = await run(['query', `Patient/${alicia.id}`, '--where', "gender = 'male'"]);
    expect(no).toMatchObject({ exitCode: 0, stdout: '' });
    expect(no.stderr).toContain('does not match');
  });

  it.each([
    ['name.family.where(', /--where: cannot use the FHIRPath expression "name\.family\.where\("/],
    ['nosuchfn()', /"nosuchfn\(\)"/],
    ['  ', /--where is empty/],
  ])('--where %j is exit 2 before any request', async (expression, message) => {
    const from = flow.sandbox.requests.length;
    const r = await run(['query', 'Patient', '--all', '--where', expression]);
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/^error: .*\nhint: /);
    expect(flow.sandbox.requests.length).toBe(from);
  });
});
