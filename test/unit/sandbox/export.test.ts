import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SandboxHandle, startSandbox } from '../../../src/sandbox/index.js';
import { type TestKey, getToken, makeKey, register, serveJwks, json } from './helpers.js';

let sb: SandboxHandle;
let key: TestKey;
let jwks: Awaited<ReturnType<typeof serveJwks>>;
const tokens: Record<string, string> = {};
/** The Retry-After time the polls have "waited", on the sandbox's clock. */
let waited = 0;
const COHORT = [
  'a6a91d7e-7ded-4325-9dbe-42a088e7e039',
  '3f2b8c1e-5d4a-4e8b-9c7f-1a2b3c4d5e6f',
  '7c9d0e1f-2a3b-4c5d-8e9f-0a1b2c3d4e5f',
];

beforeAll(async () => {
  key = await makeKey('RS384');
  jwks = await serveJwks([key.publicJwk]);
  // The sandbox's clock: a client that waits the Retry-After of a 202 moves it on (no real wait).
  sb = await startSandbox({
    port: 0,
    exportFileSize: 5,
    exportDelayMs: 250,
    exportMinPolls: 1,
    now: () => Date.now() + waited,
  });
  // One client per test group, since a client runs one export at a time.
  for (const id of ['sys', 'post', 'pat', 'grp', 'errs', 'busy', 'narrow', 'other']) {
    await register(sb, id, jwks.url);
    tokens[id] = await getToken(sb, key, id, id === 'narrow' ? 'system/Patient.read' : undefined);
  }
});
afterAll(async () => {
  await sb.close();
  await jwks.close();
});

const ASYNC = { accept: 'application/fhir+json', prefer: 'respond-async' };

async function kickoff(
  client: string,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: unknown } = {},
) {
  const res = await fetch(`${sb.fhirUrl}/${path}`, {
    method: init.method ?? 'GET',
    headers: {
      ...ASYNC,
      authorization: `Bearer ${tokens[client]}`,
      ...(init.body ? { 'content-type': 'application/fhir+json' } : {}),
      ...init.headers,
    },
    body: init.body ? JSON.stringify(init.body) : undefined,
  });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    body: text ? JSON.parse(text) : undefined,
    location: res.headers.get('content-location') ?? '',
  };
}

interface Manifest {
  transactionTime: string;
  request: string;
  requiresAccessToken: boolean;
  output: { type: string; url: string; count: number }[];
  error: { type: string; url: string; count: number }[];
}

async function waitForManifest(client: string, location: string) {
  let polls202 = 0;
  for (;;) {
    const res = await fetch(location, { headers: { authorization: `Bearer ${tokens[client]}` } });
    if (res.status === 202) {
      polls202++;
      expect(polls202, 'the export never completes').toBeLessThan(10);
      expect(res.headers.get('x-progress')).toMatch(/in progress/);
      const retryAfter = Number(res.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      await res.arrayBuffer();
      waited += retryAfter * 1000;
      continue;
    }
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    return { manifest: (await json(res)) as Manifest, polls202 };
  }
}

async function download(client: string, url: string) {
  const res = await fetch(url, { headers: { authorization: `Bearer ${tokens[client]}` } });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/application\/fhir\+ndjson/);
  const text = await res.text();
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { resourceType: string; id: string; [k: string]: unknown });
}

async function exportAll(client: string, path: string, init?: Parameters<typeof kickoff>[2]) {
  const k = await kickoff(client, path, init);
  expect(k.status, JSON.stringify(k.body)).toBe(202);
  const { manifest, polls202 } = await waitForManifest(client, k.location);
  const byType: Record<string, { resourceType: string; id: string; [k: string]: unknown }[]> = {};
  for (const o of manifest.output) {
    const lines = await download(client, o.url);
    expect(lines).toHaveLength(o.count);
    expect(lines.every((r) => r.resourceType === o.type)).toBe(true);
    (byType[o.type] ??= []).push(...lines);
  }
  return { kick: k, manifest, polls202, byType };
}

describe('$export', () => {
  it('system export by GET: 202 polls, then a manifest of split NDJSON files needing the token', async () => {
    const { kick, manifest, polls202, byType } = await exportAll('sys', '$export');
    expect(kick.location).toMatch(new RegExp(`^${sb.fhirUrl}/\\$export-status/[\\w-]+$`));
    expect(polls202).toBeGreaterThanOrEqual(1);
    expect(manifest.requiresAccessToken).toBe(true);
    expect(manifest.request).toBe(`${sb.fhirUrl}/$export`);
    expect(Date.parse(manifest.transactionTime)).not.toBeNaN();
    expect(manifest.error).toEqual([]);
    for (const [type, n] of Object.entries(sb.counts)) {
      expect(byType[type]?.length, type).toBe(n);
      expect(new Set(byType[type]!.map((r) => r.id)).size).toBe(n);
    }
    // 15 Observations at 5 per file -> 3 files.
    const obsFiles = manifest.output.filter((o) => o.type === 'Observation');
    expect(obsFiles.map((o) => o.count)).toEqual([5, 5, 5]);
    expect(obsFiles[0]!.url).toMatch(new RegExp(`^${sb.fhirUrl}/\\$export-file/`));

    const url = manifest.output[0]!.url;
    expect((await fetch(url)).status).toBe(401);
    const foreign = await fetch(url, { headers: { authorization: `Bearer ${tokens.other}` } });
    expect(foreign.status).toBe(404);
    const polled = await fetch(kick.location, {
      headers: { authorization: `Bearer ${tokens.other}` },
    });
    expect(polled.status).toBe(404);
  });

  it('POST with a Parameters body: _type and _outputFormat', async () => {
    const { manifest, byType } = await exportAll('post', '$export', {
      method: 'POST',
      body: {
        resourceType: 'Parameters',
        parameter: [
          { name: '_type', valueString: 'Patient,Observation' },
          { name: '_outputFormat', valueString: 'application/fhir+ndjson' },
        ],
      },
    });
    expect(Object.keys(byType).sort()).toEqual(['Observation', 'Patient']);
    expect(byType.Patient).toHaveLength(sb.counts.Patient!);
    expect(manifest.request).toBe(`${sb.fhirUrl}/$export`);
  });

  it('Patient-level export: patients and the resources that reference them', async () => {
    const { byType } = await exportAll('pat', 'Patient/$export?_outputFormat=ndjson');
    expect(byType.Organization).toBeUndefined();
    expect(byType.Practitioner).toBeUndefined();
    expect(byType.Group).toBeUndefined();
    expect(byType.Patient).toHaveLength(sb.counts.Patient!);
    expect(byType.Observation).toHaveLength(sb.counts.Observation!);
    expect(byType.AllergyIntolerance).toHaveLength(1);
  });

  it('Group-level export: only the members and their resources; _type and _since', async () => {
    const { byType } = await exportAll('grp', 'Group/diabetes-cohort/$export');
    expect(byType.Patient!.map((p) => p.id).sort()).toEqual([...COHORT].sort());
    const subjects = new Set(
      byType.Observation!.map((o) => (o.subject as { reference: string }).reference),
    );
    expect([...subjects].sort()).toEqual(COHORT.map((id) => `Patient/${id}`).sort());
    expect(byType.Observation).toHaveLength(10);
    expect(byType.Immunization).toBeUndefined(); // Lucía is not in the group

    const typed = await exportAll('grp', 'Group/diabetes-cohort/$export?_type=Condition');
    expect(Object.keys(typed.byType)).toEqual(['Condition']);
    expect(typed.byType.Condition).toHaveLength(4);

    // Only the two walkthrough Observations changed after June 2024.
    const since = await exportAll('grp', '$export?_since=2024-06-01T00:00:00Z');
    expect(Object.keys(since.byType)).toEqual(['Observation']);
    expect(since.byType.Observation).toHaveLength(2);

    const missing = await kickoff('grp', 'Group/no-such-group/$export');
    expect(missing.status).toBe(404);
  });

  it('POST kick-off at the Patient and Group levels: _type, _since and patient from Parameters', async () => {
    const post = (parameter: Record<string, unknown>[]) => ({
      method: 'POST',
      body: { resourceType: 'Parameters', parameter },
    });
    const pat = await exportAll(
      'pat',
      'Patient/$export',
      post([
        { name: '_type', valueString: 'Patient' },
        { name: '_type', valueString: 'Condition' },
        { name: '_outputFormat', valueString: 'application/ndjson' },
        { name: 'patient', valueReference: { reference: `Patient/${COHORT[0]}` } },
      ]),
    );
    expect(pat.manifest.request).toBe(`${sb.fhirUrl}/Patient/$export`);
    expect(Object.keys(pat.byType).sort()).toEqual(['Condition', 'Patient']);
    expect(pat.byType.Patient!.map((p) => p.id)).toEqual([COHORT[0]]);
    expect(pat.byType.Condition!.length).toBeGreaterThan(0);

    const grp = await exportAll(
      'grp',
      'Group/diabetes-cohort/$export',
      post([{ name: '_since', valueInstant: '2024-06-01T00:00:00Z' }]),
    );
    expect(grp.manifest.request).toBe(`${sb.fhirUrl}/Group/diabetes-cohort/$export`);
    expect(Object.keys(grp.byType)).toEqual(['Observation']);
    expect(grp.byType.Observation!.map((o) => o.id).sort()).toEqual([
      '00592410-ec4a-4d64-a674-f0bfb244a978',
      '01e57d19-35b7-47d0-9c3b-29d14d16d3f5',
    ]);

    // The headers are required for POST too.
    const noPrefer = await kickoff('grp', 'Group/diabetes-cohort/$export', {
      ...post([]),
      headers: { prefer: '' },
    });
    expect(noPrefer.status).toBe(400);
    const notParameters = await kickoff('grp', 'Patient/$export', {
      method: 'POST',
      body: { resourceType: 'Patient' },
    });
    expect(notParameters.status).toBe(400);
    expect(JSON.stringify(notParameters.body)).toMatch(/Parameters/);
  });

  it('_typeFilter narrows a type', async () => {
    const q = encodeURIComponent('Observation?code=4548-4');
    const { byType } = await exportAll('grp', `$export?_type=Observation,Patient&_typeFilter=${q}`);
    expect(byType.Observation).toHaveLength(6);
    expect(byType.Patient).toHaveLength(sb.counts.Patient!);
  });

  it('an unknown _type ends up in error[] while the rest is exported', async () => {
    const { manifest, byType } = await exportAll('errs', '$export?_type=Patient,Frobnicator');
    expect(Object.keys(byType)).toEqual(['Patient']);
    expect(manifest.error).toHaveLength(1);
    expect(manifest.error[0]).toMatchObject({ type: 'OperationOutcome', count: 1 });
    const [oo] = await download('errs', manifest.error[0]!.url);
    expect(oo!.resourceType).toBe('OperationOutcome');
    expect(JSON.stringify(oo)).toMatch(/Frobnicator/);
  });

  it('kick-off checks: Accept, Prefer, _outputFormat, unsupported parameters, token, scopes', async () => {
    const noAccept = await kickoff('errs', '$export', { headers: { accept: 'application/json' } });
    expect(noAccept.status).toBe(400);
    expect(noAccept.body.resourceType).toBe('OperationOutcome');
    expect(JSON.stringify(noAccept.body)).toMatch(/Accept/);
    const noPrefer = await kickoff('errs', '$export', { headers: { prefer: '' } });
    expect(noPrefer.status).toBe(400);
    expect(JSON.stringify(noPrefer.body)).toMatch(/respond-async/);
    const csv = await kickoff('errs', '$export?_outputFormat=text/csv');
    expect(csv.status).toBe(400);
    expect(JSON.stringify(csv.body)).toMatch(/text\/csv/);
    const elements = await kickoff('errs', '$export?_elements=id');
    expect(elements.status).toBe(400);
    const res = await fetch(`${sb.fhirUrl}/$export`, { headers: ASYNC });
    expect(res.status).toBe(401);

    const outOfScope = await kickoff('narrow', '$export?_type=Observation');
    expect(outOfScope.status).toBe(403);
    const { byType } = await exportAll('narrow', '$export');
    expect(Object.keys(byType)).toEqual(['Patient']);
  });

  it('a second kick-off while one runs gets 429 + Retry-After; DELETE cancels (202) then 404', async () => {
    const first = await kickoff('busy', '$export');
    expect(first.status).toBe(202);
    const second = await kickoff('busy', 'Patient/$export');
    expect(second.status).toBe(429);
    expect(Number(second.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const auth = { authorization: `Bearer ${tokens.busy}` };
    const del = await fetch(first.location, { method: 'DELETE', headers: auth });
    expect(del.status).toBe(202);
    const poll = await fetch(first.location, { headers: auth });
    expect(poll.status).toBe(404);
    expect((await json(poll)).resourceType).toBe('OperationOutcome');
    // The cancelled export no longer blocks a new one.
    const third = await exportAll('busy', '$export?_type=Group');
    expect(third.manifest.output).toHaveLength(1);
    // Deleting a completed export removes its files.
    const fileUrl = third.manifest.output[0]!.url;
    expect((await fetch(third.kick.location, { method: 'DELETE', headers: auth })).status).toBe(
      202,
    );
    expect((await fetch(fileUrl, { headers: auth })).status).toBe(404);
  });

  it('the lenient handling preference ignores unsupported parameters', async () => {
    const k = await kickoff('post', '$export?_type=Group&_elements=id', {
      headers: { prefer: 'respond-async, handling=lenient' },
    });
    expect(k.status).toBe(202);
    await waitForManifest('post', k.location);
  });
});

describe('$export with exportMinPolls', () => {
  it('answers that many polls 202 before the manifest, however late they come', async () => {
    const slow = await startSandbox({ port: 0, exportDelayMs: 0, exportMinPolls: 2 });
    try {
      await register(slow, 'mp', jwks.url);
      const token = await getToken(slow, key, 'mp');
      const auth = { authorization: `Bearer ${token}` };
      const k = await fetch(`${slow.fhirUrl}/$export?_type=Patient`, {
        headers: { ...ASYNC, ...auth },
      });
      await k.arrayBuffer();
      expect(k.status).toBe(202);
      const location = k.headers.get('content-location')!;
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) {
        const res = await fetch(location, { headers: auth });
        await res.arrayBuffer();
        statuses.push(res.status);
      }
      expect(statuses).toEqual([202, 202, 200]);
    } finally {
      await slow.close();
    }
  });
});
