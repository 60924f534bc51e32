import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FIXTURES_DIR, Store, generate, loadDir } from '../../../src/sandbox/data.js';
import { startSandbox } from '../../../src/sandbox/index.js';
import type { Resource } from '../../../src/sandbox/index.js';
import { basic, json } from './helpers.js';

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

describe('fixtures', () => {
  it('are small and hold the walkthrough data, an Organization, a Practitioner and a Group', async () => {
    const store = new Store();
    await loadDir(store, FIXTURES_DIR, '2024-01-01T00:00:00Z');
    const file = join(FIXTURES_DIR, 'sandbox.json');
    expect((await stat(file)).size).toBeLessThan(200 * 1024);
    const a1c = store
      .all('Observation')
      .filter((o) => JSON.stringify(o.code).includes('"4548-4"'))
      .filter(
        (o) =>
          JSON.stringify(o.category).includes('laboratory') &&
          (o.valueQuantity as { unit: string }).unit === '%' &&
          (o.subject as { reference: string }).reference.startsWith('Patient/') &&
          (o.encounter as { reference: string }).reference.startsWith('Encounter/'),
      );
    expect(a1c.length).toBeGreaterThanOrEqual(3);
    expect((a1c[0]!.code as { coding: { display: string }[] }).coding[0]!.display).toBe(
      'Hemoglobin A1c/Hemoglobin.total in Blood',
    );
    expect(store.all('Organization').length).toBeGreaterThanOrEqual(1);
    expect(store.all('Practitioner').length).toBeGreaterThanOrEqual(1);
    const group = store.all('Group')[0]!;
    const members = group.member as { entity: { reference: string } }[];
    expect(members.length).toBeGreaterThan(0);
    for (const m of members) {
      expect(store.get('Patient', m.entity.reference.split('/')[1]!)).toBeDefined();
    }
    // Every reference inside the dataset resolves.
    const text = await readFile(file, 'utf8');
    for (const [, type, id] of text.matchAll(/"reference": "([A-Za-z]+)\/([^"]+)"/g)) {
      expect(store.get(type!, id!), `${type}/${id}`).toBeDefined();
    }
  });
});

/** The two HbA1c Observations of the Aidbox walkthrough response, exactly as published. */
const walkthrough = (id: string, encounter: string, effective: string, value: number) => ({
  category: [
    {
      coding: [
        {
          code: 'laboratory',
          system: 'http://terminology.hl7.org/CodeSystem/observation-category',
          display: 'laboratory',
        },
      ],
    },
  ],
  meta: {
    lastUpdated: '2024-08-29T15:51:05.117806Z',
    versionId: '74',
    extension: [
      {
        url: 'https://fhir.aidbox.app/fhir/StructureDefinition/created-at',
        valueInstant: '2024-08-29T15:51:05.117806Z',
      },
    ],
  },
  encounter: { reference: `Encounter/${encounter}` },
  valueQuantity: { code: '%', unit: '%', value, system: 'http://unitsofmeasure.org' },
  resourceType: 'Observation',
  effectiveDateTime: effective,
  status: 'final',
  id,
  code: {
    text: 'Hemoglobin A1c/Hemoglobin.total in Blood',
    coding: [
      {
        code: '4548-4',
        system: 'http://loinc.org',
        display: 'Hemoglobin A1c/Hemoglobin.total in Blood',
      },
    ],
  },
  issued: effective.replace(/(:\d\d)([+-])/, '$1.513$2'),
  subject: { reference: 'Patient/a6a91d7e-7ded-4325-9dbe-42a088e7e039' },
});

describe('the walkthrough example', () => {
  it('is served exactly as in the Aidbox docs: GET /fhir/Observation?code=4548-4&_count=2', async () => {
    const sb = await startSandbox({ port: 0 });
    try {
      const res = await fetch(`${sb.fhirUrl}/Observation?code=4548-4&_count=2`, {
        headers: { authorization: basic(sb) },
      });
      const bundle = await json(res);
      expect(bundle.entry.map((e: { resource: unknown }) => e.resource)).toStrictEqual([
        walkthrough(
          '00592410-ec4a-4d64-a674-f0bfb244a978',
          '67b8fa04-6e1b-4074-8b8c-3ec44bfec48f',
          '2014-05-11T12:39:55+04:00',
          2.856519918445372,
        ),
        walkthrough(
          '01e57d19-35b7-47d0-9c3b-29d14d16d3f5',
          'f1c8a70d-0dfa-47a6-b940-d441fdfd1323',
          '2018-01-14T11:39:55+03:00',
          3.1257055258079536,
        ),
      ]);
    } finally {
      await sb.close();
    }
  });
});

describe('--generate', () => {
  it('is deterministic', () => {
    const a = new Store();
    const b = new Store();
    generate(a, 40);
    generate(b, 40);
    const dump = (s: Store) => s.typeNames().map((t) => JSON.stringify(s.all(t)));
    expect(dump(a)).toEqual(dump(b));
    expect(a.all('Patient')).toHaveLength(40);
    expect(
      a.all('Observation').filter((o) => JSON.stringify(o.code).includes('4548-4')).length,
    ).toBe(80);
    expect(a.get('Group', 'gen-cohort')!.member).toHaveLength(4);
  });

  // How fast is for bench/export.mjs, which builds the same data: a timed test fails on a loaded machine.
  it('builds and serves ~100k resources, 1000 per page deep into the search', async () => {
    const sb = await startSandbox({ port: 0, generate: 8000 });
    try {
      const total = Object.values(sb.counts).reduce((a, b) => a + b, 0);
      expect(total).toBeGreaterThan(95_000);
      const res = await fetch(`${sb.fhirUrl}/Observation?code=4548-4&_count=1000&_page=10`, {
        headers: { authorization: basic(sb) },
      });
      const bundle = await json(res);
      expect(bundle.entry).toHaveLength(1000);
    } finally {
      await sb.close();
    }
  });
});

describe('--data', () => {
  it('loads Bundles and NDJSON from a folder instead of the fixtures', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sandbox-data-'));
    dirs.push(dir);
    const p = (id: string): Resource => ({ resourceType: 'Patient', id });
    await writeFile(
      join(dir, 'a.json'),
      JSON.stringify({
        resourceType: 'Bundle',
        type: 'collection',
        entry: [{ resource: p('p1') }],
      }),
    );
    await writeFile(
      join(dir, 'b.ndjson'),
      [p('p2'), p('p3')].map((r) => JSON.stringify(r)).join('\n') + '\n',
    );
    await writeFile(join(dir, 'notes.txt'), 'ignored');
    const sb = await startSandbox({ port: 0, dataDir: dir, generate: 2 });
    try {
      expect(sb.counts.Patient).toBe(5);
      expect(sb.counts.Observation).toBe(16);
      expect(sb.counts.Organization).toBeUndefined();
    } finally {
      await sb.close();
    }
  });

  it('names the file and line of invalid data', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sandbox-bad-'));
    dirs.push(dir);
    await writeFile(join(dir, 'x.ndjson'), '{"resourceType":"Patient","id":"a"}\n{oops\n');
    await expect(startSandbox({ port: 0, dataDir: dir })).rejects.toThrow(
      /x\.ndjson:2: invalid JSON/,
    );
    await expect(startSandbox({ port: 0, dataDir: join(dir, 'nope') })).rejects.toThrow(
      /does not exist/,
    );
  });

  it('reports a port in use as EADDRINUSE', async () => {
    const sb = await startSandbox({ port: 0 });
    try {
      const port = Number(new URL(sb.url).port);
      await expect(startSandbox({ port })).rejects.toMatchObject({ code: 'EADDRINUSE' });
    } finally {
      await sb.close();
    }
  });
});
