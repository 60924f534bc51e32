import { request } from 'node:http';
import { SignJWT, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SandboxHandle, startSandbox } from '../../../src/sandbox/index.js';
import {
  type TestKey,
  adminPut,
  basic,
  fhirGet,
  getToken,
  makeKey,
  register,
  serveJwks,
  signAssertion,
  tokenForm,
  json,
  movableClock,
} from './helpers.js';

let sb: SandboxHandle;
const clock = movableClock();
let key: TestKey;
let jwks: Awaited<ReturnType<typeof serveJwks>>;
let token: string;
const A1C_PATIENT = 'a6a91d7e-7ded-4325-9dbe-42a088e7e039';

beforeAll(async () => {
  key = await makeKey('RS384');
  jwks = await serveJwks([key.publicJwk]);
  // 150 generated patients on top of the fixtures: enough for several pages.
  sb = await startSandbox({ port: 0, generate: 150, now: clock.now });
  await register(sb, 'reader', jwks.url);
  token = await getToken(sb, key, 'reader');
});
afterAll(async () => {
  await sb.close();
  await jwks.close();
});

describe('discovery and metadata (no token needed)', () => {
  it('serves smart-configuration at the root and under /fhir', async () => {
    for (const path of [
      '/.well-known/smart-configuration',
      '/fhir/.well-known/smart-configuration',
    ]) {
      const res = await fetch(sb.url + path);
      expect(res.status).toBe(200);
      const conf = await json(res);
      expect(conf).toMatchObject({
        token_endpoint: sb.tokenUrl,
        token_endpoint_auth_methods_supported: ['private_key_jwt'],
        grant_types_supported: ['client_credentials'],
      });
      // RS384 only by default, as Aidbox documents.
      expect(conf.token_endpoint_auth_signing_alg_values_supported).toEqual(['RS384']);
      expect(conf.scopes_supported).toEqual(
        expect.arrayContaining(['system/*.rs', 'system/Observation.read', 'system/Patient.rs']),
      );
      expect(conf.capabilities).toEqual(
        expect.arrayContaining([
          'client-confidential-asymmetric',
          'permission-v1',
          'permission-v2',
        ]),
      );
      expect(conf.scopes_supported).toContain('system/*.read');
    }
  });

  it('serves an R4 CapabilityStatement with the SMART oauth-uris token extension', async () => {
    const r = await fhirGet(sb, 'metadata');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/application\/fhir\+json/);
    expect(r.body!.fhirVersion).toBe('4.0.1');
    const ext = r.body!.rest[0].security.extension[0];
    expect(ext.url).toBe('http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris');
    expect(ext.extension).toContainEqual({ url: 'token', valueUri: sb.tokenUrl });
  });

  it('publishes its token-signing public key without private parts', async () => {
    const res = await fetch(`${sb.url}/.well-known/jwks.json`);
    const body = await json(res);
    expect(body.keys).toHaveLength(1);
    expect(body.keys[0].kid).toBeTruthy();
    expect(body.keys[0].d).toBeUndefined();
  });
});

describe('FHIR authorization', () => {
  it('401 + WWW-Authenticate: Bearer + OperationOutcome without, with a bad, or an expired token', async () => {
    const none = await fhirGet(sb, 'Patient');
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(none.body!.resourceType).toBe('OperationOutcome');

    expect((await fhirGet(sb, 'Patient', 'garbage')).status).toBe(401);
    // A token signed by someone else, with the right claims.
    const { privateKey } = await generateKeyPair('ES256');
    const now = Math.floor(Date.now() / 1000);
    const forged = await new SignJWT({ scope: 'system/Patient.read' })
      .setProtectedHeader({ alg: 'ES256' })
      .setIssuer(sb.url)
      .setSubject('reader')
      .setIssuedAt(now)
      .setExpirationTime(now + 60)
      .sign(privateKey);
    const bad = await fhirGet(sb, 'Patient', forged);
    expect(bad.status).toBe(401);
    expect(bad.headers.get('www-authenticate')).toMatch(/invalid_token/);

    // An expired token of this sandbox: a client whose tokens live 60 s, then 61 s pass on the
    // sandbox's clock (a 1 s lifetime could run out on a loaded machine before the first use).
    await register(sb, 'brief', jwks.url, {
      auth: {
        client_credentials: {
          client_assertion_types: ['urn:ietf:params:oauth:client-assertion-type:jwt-bearer'],
          access_token_expiration: 60,
          token_format: 'jwt',
        },
      },
    });
    const short = await getToken(sb, key, 'brief');
    expect((await fhirGet(sb, 'Patient', short)).status).toBe(200);
    // Time moves on the sandbox's clock: no wall-clock wait, and no race with a loaded machine.
    clock.advance(61_000);
    const expired = await fhirGet(sb, 'Patient', short).finally(() => clock.advance(-61_000));
    expect(expired.status).toBe(401);
    expect(expired.body!.issue[0].diagnostics).toMatch(/expired/);
  });

  it('403 (Aidbox forbidden OperationOutcome) for a type outside the token scopes', async () => {
    const patientOnly = await getToken(sb, key, 'reader', 'system/Patient.read');
    expect((await fhirGet(sb, 'Patient', patientOnly)).status).toBe(200);
    const r = await fhirGet(sb, 'Observation', patientOnly);
    expect(r.status).toBe(403);
    expect(r.body).toMatchObject({
      resourceType: 'OperationOutcome',
      id: 'forbidden',
      issue: [{ severity: 'fatal', code: 'forbidden' }],
    });
    expect(r.body!.issue[0].diagnostics).toMatch(/system\/Patient\.read/);
    expect((await fhirGet(sb, `Observation/gen-obs-1-1-1`, patientOnly)).status).toBe(403);
  });

  it('v2 scopes: .s allows search but not read, .r read but not search', async () => {
    const searchOnly = await getToken(sb, key, 'reader', 'system/Patient.s');
    expect((await fhirGet(sb, 'Patient', searchOnly)).status).toBe(200);
    expect((await fhirGet(sb, `Patient/${A1C_PATIENT}`, searchOnly)).status).toBe(403);
    const readOnly = await getToken(sb, key, 'reader', 'system/Patient.r');
    expect((await fhirGet(sb, `Patient/${A1C_PATIENT}`, readOnly)).status).toBe(200);
    expect((await fhirGet(sb, 'Patient', readOnly)).status).toBe(403);
  });

  it('403 for a client without an allow AccessPolicy; deleting the policy revokes access', async () => {
    await register(sb, 'nopolicy', jwks.url, {}, false);
    const t = await getToken(sb, key, 'nopolicy');
    const r = await fhirGet(sb, 'Patient', t);
    expect(r.status).toBe(403);
    expect(r.body!.issue[0].diagnostics).toMatch(/AccessPolicy/);
    // A policy of another engine does not allow.
    await adminPut(sb, '/AccessPolicy/nopolicy', {
      engine: 'matcho',
      link: [{ resourceType: 'Client', id: 'nopolicy' }],
    });
    expect((await fhirGet(sb, 'Patient', t)).status).toBe(403);
    await adminPut(sb, '/AccessPolicy/nopolicy', {
      engine: 'allow',
      link: [{ reference: 'Client/nopolicy' }],
    });
    expect((await fhirGet(sb, 'Patient', t)).status).toBe(200);
    await fetch(`${sb.url}/AccessPolicy/nopolicy`, {
      method: 'DELETE',
      headers: { authorization: basic(sb) },
    });
    expect((await fhirGet(sb, 'Patient', t)).status).toBe(403);
  });

  it('a deleted or deactivated client loses its tokens (401)', async () => {
    await register(sb, 'temp', jwks.url);
    const t = await getToken(sb, key, 'temp');
    expect((await fhirGet(sb, 'Patient', t)).status).toBe(200);
    await fetch(`${sb.url}/Client/temp`, {
      method: 'DELETE',
      headers: { authorization: basic(sb) },
    });
    expect((await fhirGet(sb, 'Patient', t)).status).toBe(401);
  });

  it('the root admin may use /fhir over HTTP Basic', async () => {
    const res = await fetch(`${sb.fhirUrl}/Patient?_count=1`, {
      headers: { authorization: basic(sb) },
    });
    expect(res.status).toBe(200);
    const wrong = await fetch(`${sb.fhirUrl}/Patient`, {
      headers: { authorization: basic(sb, 'x') },
    });
    expect(wrong.status).toBe(401);
  });
});

type Bundle = {
  total: number;
  link: { relation: string; url: string }[];
  entry?: { fullUrl: string; resource: Record<string, any>; search: { mode: string } }[]; // eslint-disable-line @typescript-eslint/no-explicit-any
};
const next = (b: Bundle) => b.link.find((l) => l.relation === 'next')?.url;

async function search(query: string): Promise<Bundle> {
  const r = await fhirGet(sb, query, token);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body as Bundle;
}

async function ids(query: string): Promise<string[]> {
  const b = await search(query + (query.includes('?') ? '&' : '?') + '_count=1000');
  expect(b.total).toBe(b.entry?.length ?? 0);
  return (b.entry ?? []).map((e) => e.resource.id as string);
}

describe('FHIR search and read', () => {
  it('paging by next links walks every resource exactly once', async () => {
    const total = sb.counts.Observation!;
    expect(total).toBeGreaterThan(1000);
    const seen = new Set<string>();
    let url: string | undefined = `${sb.fhirUrl}/Observation?_count=97`;
    let pages = 0;
    while (url) {
      const r = await fhirGet(sb, url, token);
      expect(r.status).toBe(200);
      const b = r.body as Bundle;
      expect(b.total).toBe(total);
      for (const e of b.entry ?? []) {
        expect(seen.has(e.resource.id)).toBe(false);
        seen.add(e.resource.id);
        expect(e.search.mode).toBe('match');
        expect(e.fullUrl).toBe(`${sb.fhirUrl}/Observation/${e.resource.id}`);
      }
      url = next(b);
      if (url) expect(url.startsWith(sb.fhirUrl)).toBe(true);
      pages++;
    }
    expect(seen.size).toBe(total);
    expect(pages).toBe(Math.ceil(total / 97));
  });

  it('searchset Bundle shape: total, self link, default _count 100 (as Aidbox), max 1000', async () => {
    const b = await search('Observation');
    expect(b).toMatchObject({ resourceType: 'Bundle', type: 'searchset' });
    expect(b.entry).toHaveLength(100);
    expect(b.link.find((l) => l.relation === 'self')?.url).toBe(`${sb.fhirUrl}/Observation`);
    expect((await search('Observation?_count=5000')).entry).toHaveLength(1000);
    const count = await search('Observation?_summary=count');
    expect(count.total).toBe(sb.counts.Observation);
    expect(count.entry).toBeUndefined();
    expect((await fhirGet(sb, 'Observation?_count=abc', token)).status).toBe(400);
  });

  it('code, system|code, subject, patient', async () => {
    const a1c = await ids('Observation?code=4548-4');
    expect(a1c.length).toBeGreaterThanOrEqual(3 + 150 * 2);
    expect(await ids('Observation?code=http://loinc.org|4548-4')).toEqual(a1c);
    expect(await ids('Observation?code=http://snomed.info/sct|4548-4')).toEqual([]);
    const both = await ids('Observation?code=4548-4,8480-6');
    expect(both.length).toBeGreaterThan(a1c.length);
    const mine = await ids(`Observation?code=4548-4&subject=Patient/${A1C_PATIENT}`);
    expect(mine).toEqual([
      '00592410-ec4a-4d64-a674-f0bfb244a978',
      '01e57d19-35b7-47d0-9c3b-29d14d16d3f5',
    ]);
    expect(await ids(`Observation?code=4548-4&patient=${A1C_PATIENT}`)).toEqual(mine);
    expect(await ids('Condition?patient=gen-pat-1')).toEqual(
      expect.arrayContaining(['gen-cond-1-1']),
    );
    // The walkthrough example: the sample HbA1c resource with its references.
    const first = (await search('Observation?code=4548-4&_count=2')).entry![0]!.resource;
    expect(first).toMatchObject({
      category: [{ coding: [{ code: 'laboratory' }] }],
      valueQuantity: { unit: '%' },
      encounter: { reference: expect.stringMatching(/^Encounter\//) },
      subject: { reference: `Patient/${A1C_PATIENT}` },
    });
  });

  it('date with prefixes, _lastUpdated, status, category, _id', async () => {
    const after = await ids(
      'Observation?date=ge2023-01-01&_id=obs-chidi-a1c-2023,obs-chidi-a1c-2022,obs-jane-a1c-2020',
    );
    expect(after).toEqual(['obs-chidi-a1c-2023']);
    const before = await ids(
      'Observation?date=lt2021-01-01&code=4548-4&subject=Patient/d8e9f0a1-b2c3-4d4e-8f5a-6b7c8d9e0f1a',
    );
    expect(before).toEqual(['obs-jane-a1c-2020']);
    expect(
      await ids('Observation?date=2014-05-11&_id=00592410-ec4a-4d64-a674-f0bfb244a978'),
    ).toHaveLength(1);
    expect(
      await ids('Observation?date=2014-05-12&_id=00592410-ec4a-4d64-a674-f0bfb244a978'),
    ).toHaveLength(0);
    const between = await ids(
      'Encounter?date=ge2022-01-01&date=lt2023-01-01&_id=enc-chidi-2022,enc-chidi-2023',
    );
    expect(between).toEqual(['enc-chidi-2022']);
    expect((await fhirGet(sb, 'Observation?date=ge2020-13-45', token)).status).toBe(400);

    // Every prefix, around Chidi's HbA1c of 2022-07-19 and 2023-10-05 (day precision).
    const chidi = '_id=obs-chidi-a1c-2022,obs-chidi-a1c-2023';
    const day = async (prefix: string, date: string) =>
      ids(`Observation?date=${prefix}${date}&${chidi}`);
    const days = await Promise.all(
      ['2022', '2022-07', '2022-07-19', '2023-10-05'].map((d) =>
        ids(`Observation?date=${d}&${chidi}`),
      ),
    );
    expect(days).toEqual([
      ['obs-chidi-a1c-2022'],
      ['obs-chidi-a1c-2022'],
      ['obs-chidi-a1c-2022'],
      ['obs-chidi-a1c-2023'],
    ]);
    expect(await day('eq', '2022-07-19')).toEqual(['obs-chidi-a1c-2022']);
    expect(await day('eq', '2022-07-20')).toEqual([]);
    expect(await day('gt', '2022-07-19')).toEqual(['obs-chidi-a1c-2023']);
    expect(await day('ge', '2022-07-19')).toEqual(['obs-chidi-a1c-2022', 'obs-chidi-a1c-2023']);
    expect(await day('lt', '2022-07-19')).toEqual([]);
    expect(await day('lt', '2023-10-05')).toEqual(['obs-chidi-a1c-2022']);
    expect(await day('le', '2022-07-19')).toEqual(['obs-chidi-a1c-2022']);
    expect(await day('le', '2023-10-05')).toEqual(['obs-chidi-a1c-2022', 'obs-chidi-a1c-2023']);
    // A dateTime search value is a range of one second.
    expect(await day('eq', '2022-07-19T14:00:00Z')).toEqual(['obs-chidi-a1c-2022']);
    expect(await day('gt', '2022-07-19T14:00:00Z')).toEqual(['obs-chidi-a1c-2023']);
    expect(await day('lt', '2022-07-19T14:00:01Z')).toEqual(['obs-chidi-a1c-2022']);
    expect(await day('ge', '2022-07-19T16:00:00%2B02:00')).toEqual([
      'obs-chidi-a1c-2022',
      'obs-chidi-a1c-2023',
    ]);

    const lu = await ids('Observation?_lastUpdated=ge2024-08-29&_lastUpdated=lt2024-08-30');
    expect(lu).toEqual([
      '00592410-ec4a-4d64-a674-f0bfb244a978',
      '01e57d19-35b7-47d0-9c3b-29d14d16d3f5',
    ]);

    expect(await ids('Condition?_id=cond-jurgen-asthma&category=problem-list-item')).toHaveLength(
      1,
    );
    expect(await ids('Observation?category=vital-signs&code=4548-4')).toHaveLength(0);
    expect((await search('Observation?status=final&_summary=count')).total).toBe(
      sb.counts.Observation,
    );
    expect(await ids('Observation?status=preliminary')).toEqual([]);
  });

  it('Patient name, family, gender, birthdate', async () => {
    expect(await ids('Patient?family=kess')).toEqual([A1C_PATIENT]);
    expect(await ids('Patient?name=alicia')).toEqual([A1C_PATIENT]);
    expect(await ids('Patient?name=lucia')).toEqual(['c4d5e6f7-a8b9-4c0d-9e1f-2a3b4c5d6e7f']);
    const women = await ids('Patient?gender=female&birthdate=lt1970');
    expect(women).toContain(A1C_PATIENT);
    expect(women).toContain('d8e9f0a1-b2c3-4d4e-8f5a-6b7c8d9e0f1a');
    expect(await ids('Patient?birthdate=1968-03-14&gender=female')).toContain(A1C_PATIENT);
    expect(await ids('Patient?birthdate=1968-03-14&gender=male')).not.toContain(A1C_PATIENT);
  });

  it('unknown parameters are ignored, or 400 with Prefer: handling=strict', async () => {
    const all = await search('Patient?foo=bar&_count=1');
    expect(all.total).toBe(sb.counts.Patient);
    const res = await fetch(`${sb.fhirUrl}/Patient?foo=bar`, {
      headers: { authorization: `Bearer ${token}`, prefer: 'handling=strict' },
    });
    expect(res.status).toBe(400);
    expect(JSON.stringify(await json(res))).toMatch(/foo/);
  });

  it('POST _search with a form body', async () => {
    const res = await fetch(`${sb.fhirUrl}/Observation/_search`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: `code=4548-4&subject=Patient/${A1C_PATIENT}`,
    });
    expect(res.status).toBe(200);
    expect((await json(res)).total).toBe(2);
  });

  it('read by id; 404 OperationOutcome for an unknown id or type', async () => {
    const r = await fhirGet(sb, `Patient/${A1C_PATIENT}`, token);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ resourceType: 'Patient', id: A1C_PATIENT });
    const g = await fhirGet(sb, 'Group/diabetes-cohort', token);
    expect(g.body!.member.length).toBeGreaterThan(0);
    const missing = await fhirGet(sb, 'Patient/nope', token);
    expect(missing.status).toBe(404);
    expect(missing.body!.resourceType).toBe('OperationOutcome');
    const unknownType = await fhirGet(sb, 'Frobnicator', token);
    expect(unknownType.status).toBe(404);
    expect(unknownType.body!.issue[0].diagnostics).toMatch(/Frobnicator/);
    // A valid type without data is an empty searchset, not an error.
    const empty = await fetch(`${sb.fhirUrl}/Medication`, {
      headers: { authorization: basic(sb) },
    });
    expect(empty.status).toBe(200);
    expect((await json(empty)).total).toBe(0);
    // ...but outside a token whose wildcard was expanded to the types with data.
    expect((await fhirGet(sb, 'Medication', token)).status).toBe(403);
  });

  it('links are built from the Host the client used', async () => {
    const port = new URL(sb.url).port;
    // fetch() may not set Host; node:http may.
    const b = await new Promise<Bundle>((resolve, reject) => {
      const req = request(
        `${sb.fhirUrl}/Patient?_count=2`,
        { headers: { authorization: `Bearer ${token}`, host: `alias.test:${port}` } },
        (res) => {
          let text = '';
          res.on('data', (c) => (text += c));
          res.on('end', () => resolve(JSON.parse(text)));
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(next(b)).toBe(`http://alias.test:${port}/fhir/Patient?_count=2&_page=2`);
  });

  it('discovery names the origin the client used, and the token endpoint takes it as aud', async () => {
    const port = new URL(sb.url).port;
    const alias = `alias.test:${port}`;
    const conf = JSON.parse(
      (await raw('GET', `${sb.url}/.well-known/smart-configuration`, { host: alias })).body,
    );
    expect(conf.token_endpoint).toBe(`http://${alias}/auth/token`);
    const assertion = await signAssertion({
      key,
      clientId: 'reader',
      aud: `http://${alias}/auth/token`,
    });
    const form = new URLSearchParams(tokenForm(assertion, 'system/Patient.read')).toString();
    const r = await raw(
      'POST',
      sb.tokenUrl,
      {
        host: alias,
        'content-type': 'application/x-www-form-urlencoded',
      },
      form,
    );
    expect(r.status).toBe(200);
    // Any other aud is still refused.
    const other = await signAssertion({
      key,
      clientId: 'reader',
      aud: `http://other:1/auth/token`,
    });
    const form2 = new URLSearchParams(tokenForm(other)).toString();
    const r2 = await raw(
      'POST',
      sb.tokenUrl,
      {
        host: alias,
        'content-type': 'application/x-www-form-urlencoded',
      },
      form2,
    );
    expect(r2.status).toBe(401);
  });
});

/** node:http, since fetch() may not set the Host header. */
function raw(method: string, url: string, headers: Record<string, string>, body?: string) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
