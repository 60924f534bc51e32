import { afterEach, describe, expect, it } from 'vitest';
import { type SandboxHandle, parseFaultSpec, startSandbox } from '../../../src/sandbox/index.js';
import { basic, getToken, makeKey, register, serveJwks, json } from './helpers.js';

describe('parseFaultSpec', () => {
  it('reads the documented forms', () => {
    expect(parseFaultSpec('429:/fhir/$export-status:2,3:retry-after=1')).toEqual({
      path: '/fhir/$export-status',
      nth: [2, 3],
      action: { status: 429, retryAfter: '1' },
    });
    expect(parseFaultSpec('503:/auth/token:1')).toEqual({
      path: '/auth/token',
      nth: [1],
      action: { status: 503 },
    });
    expect(parseFaultSpec('drop:/fhir/$export-file:method=get:times=2')).toEqual({
      path: '/fhir/$export-file',
      method: 'GET',
      times: 2,
      action: { drop: 'mid-body' },
    });
    expect(parseFaultSpec('delay:/fhir/Observation:ms=250')).toEqual({
      path: '/fhir/Observation',
      action: { delayMs: 250 },
    });
    const re = parseFaultSpec('500:~^/fhir/(Patient|Group)$');
    expect(re.path).toBeInstanceOf(RegExp);
    expect((re.path as RegExp).test('/fhir/Group')).toBe(true);
  });

  it('rejects what it cannot read, naming the problem', () => {
    expect(() => parseFaultSpec('418:/x')).toThrow(/unknown action '418'/);
    expect(() => parseFaultSpec('429')).toThrow(/expected/);
    expect(() => parseFaultSpec('429:fhir')).toThrow(/must start with '\/'/);
    expect(() => parseFaultSpec('delay:/x')).toThrow(/ms=/);
    expect(() => parseFaultSpec('429:/x:0')).toThrow(/start at 1/);
    expect(() => parseFaultSpec('429:/x:colour=red')).toThrow(/unknown option 'colour'/);
    expect(() => parseFaultSpec('500:~(')).toThrow(/regular expression/);
  });
});

describe('fault injection', () => {
  let sb: SandboxHandle | undefined;
  afterEach(async () => {
    await sb?.close();
    sb = undefined;
  });

  it('answers the nth matching requests with 429 + Retry-After, the others normally', async () => {
    sb = await startSandbox({
      port: 0,
      faults: [parseFaultSpec('429:/fhir/metadata:2,3:retry-after=1')],
    });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${sb.fhirUrl}/metadata`);
      statuses.push(res.status);
      if (res.status === 429) {
        expect(res.headers.get('retry-after')).toBe('1');
        expect((await json(res)).issue[0].code).toBe('throttled');
      } else await res.arrayBuffer();
    }
    expect(statuses).toEqual([200, 429, 429, 200]);
    // Other paths are not counted nor hit.
    expect((await fetch(`${sb.url}/.well-known/smart-configuration`)).status).toBe(200);
    expect(sb.requests.filter((r) => r.fault === '429')).toHaveLength(2);
  });

  it('503 on the token endpoint answers OAuth-style; method filters and addFault at run time', async () => {
    sb = await startSandbox({ port: 0 });
    sb.addFault({
      path: '/auth/token',
      method: 'POST',
      times: 1,
      action: { status: 503, retryAfter: '2' },
    });
    sb.addFault({ path: '/fhir/Patient', action: { status: 500 } });
    const get = await fetch(sb.tokenUrl);
    expect(get.status).toBe(405); // GET does not match the POST-only rule
    const post = await fetch(sb.tokenUrl, { method: 'POST' });
    expect(post.status).toBe(503);
    expect(post.headers.get('retry-after')).toBe('2');
    expect(await json(post)).toMatchObject({ error: 'temporarily_unavailable' });
    const again = await fetch(sb.tokenUrl, { method: 'POST' });
    expect(again.status).toBe(400); // the real endpoint: no form
    const patient = await fetch(`${sb.fhirUrl}/Patient/x`);
    expect(patient.status).toBe(500);
    expect(patient.headers.get('retry-after')).toBeNull();
  });

  it('drops the connection in the middle of a body, then serves the retry', async () => {
    sb = await startSandbox({ port: 0, faults: [parseFaultSpec('drop:/fhir/metadata:1')] });
    await expect(fetch(`${sb.fhirUrl}/metadata`).then((r) => r.text())).rejects.toThrow();
    const ok = await fetch(`${sb.fhirUrl}/metadata`);
    expect((await json(ok)).resourceType).toBe('CapabilityStatement');
  });

  it('drops an export file download mid-body; the next download is complete', async () => {
    const key = await makeKey('RS384');
    const jwks = await serveJwks([key.publicJwk]);
    try {
      sb = await startSandbox({ port: 0, exportDelayMs: 0, generate: 100 });
      await register(sb, 'bulk', jwks.url);
      const token = await getToken(sb, key, 'bulk');
      const auth = { authorization: `Bearer ${token}` };
      const k = await fetch(`${sb.fhirUrl}/$export?_type=Observation`, {
        headers: { ...auth, accept: 'application/fhir+json', prefer: 'respond-async' },
      });
      expect(k.status).toBe(202);
      const manifest = await json(
        await fetch(k.headers.get('content-location')!, { headers: auth }),
      );
      const file = manifest.output[0];
      sb.addFault(parseFaultSpec('drop:/fhir/$export-file:1'));
      const res = await fetch(file.url, { headers: auth });
      expect(res.status).toBe(200); // headers arrive...
      await expect(res.text()).rejects.toThrow(); // ...the body does not
      const full = await (await fetch(file.url, { headers: auth })).text();
      expect(full.trim().split('\n')).toHaveLength(file.count);
      expect(await sb.logged((r) => r.fault === 'drop')).toMatchObject({ status: 200 });
    } finally {
      await jwks.close();
    }
  });

  it('delay faults and latencyMs slow responses down', async () => {
    sb = await startSandbox({
      port: 0,
      latencyMs: 100,
      faults: [{ path: '/fhir/metadata', nth: [1], action: { delayMs: 300 } }],
    });
    expect((await fetch(`${sb.fhirUrl}/metadata`)).status).toBe(200);
    expect((await fetch(`${sb.fhirUrl}/metadata`)).status).toBe(200);
    // The log entry follows the response: wait for the second one. Entries are in the order
    // the responses ended, so each is found by what it is.
    await sb.logged(undefined, 2);
    const first = sb.requests.find((r) => r.fault === 'delay');
    const second = sb.requests.find((r) => r !== first);
    // Server-side durations (a timer never fires early, so lower bounds hold under any load):
    // the first request got delay + latency, the second latency only, with no fault applied.
    expect(first!.ms).toBeGreaterThanOrEqual(390);
    expect(second!.ms).toBeGreaterThanOrEqual(95);
    expect(second!.fault).toBeUndefined();
    expect(sb.requests).toHaveLength(2);
  });
});

describe('request log', () => {
  it('has one entry and one line per request, with client id and never a secret', async () => {
    const lines: string[] = [];
    const key = await makeKey('RS384');
    const jwks = await serveJwks([key.publicJwk]);
    const sb = await startSandbox({
      port: 0,
      log: (l) => lines.push(l),
      adminSecret: 'hunter2-admin',
    });
    try {
      await register(sb, 'logged', jwks.url);
      const token = await getToken(sb, key, 'logged');
      await fetch(`${sb.fhirUrl}/Patient?_count=1&access_token=${token}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      await fetch(`${sb.url}/Client/logged`, { headers: { authorization: basic(sb) } });
      await sb.logged((r) => r.method === 'GET' && r.path === '/Client/logged');
      expect(lines).toHaveLength(sb.requests.length);
      expect(lines).toHaveLength(5); // PUT Client, PUT AccessPolicy, token, search, GET Client
      const search = sb.requests.find((r) => r.path.startsWith('/fhir/Patient'))!;
      expect(search).toMatchObject({ method: 'GET', status: 200, clientId: 'logged' });
      expect(search.path).toBe('/fhir/Patient?_count=1&access_token=***');
      expect(sb.requests.find((r) => r.path === '/auth/token')).toMatchObject({
        method: 'POST',
        status: 200,
        clientId: 'logged',
      });
      expect(lines.join('\n')).toMatch(/^GET \/Client\/logged 200 \d+ms client=root$/m);
      const all = lines.join('\n') + JSON.stringify(sb.requests);
      expect(all).not.toContain(token);
      expect(all).not.toContain(token.split('.')[2]);
      expect(all).not.toContain('hunter2-admin');
    } finally {
      await sb.close();
      await jwks.close();
    }
  });

  it('logged() and received(): entries already there or yet to come, the n-th, and none after close', async () => {
    const sb = await startSandbox({
      port: 0,
      faults: [{ path: '/fhir/Patient', action: { delayMs: 60_000 } }],
    });
    let never: Promise<unknown> | undefined;
    try {
      await (await fetch(`${sb.fhirUrl}/metadata`)).arrayBuffer();
      const first = await sb.logged();
      expect(first).toMatchObject({ method: 'GET', path: '/fhir/metadata', status: 200 });
      expect(await sb.received()).toMatchObject({ method: 'GET', path: '/fhir/metadata' });
      const secondMetadata = sb.logged((r) => r.path === '/fhir/metadata', 2);
      await (await fetch(`${sb.fhirUrl}/metadata?_format=json`)).arrayBuffer();
      await (await fetch(`${sb.fhirUrl}/metadata`)).arrayBuffer();
      expect(sb.requests.map((r) => r.path)).toContain('/fhir/metadata?_format=json');
      expect(await secondMetadata).toBe(sb.requests.at(-1));
      await expect(sb.logged(undefined, 0)).rejects.toThrow(/positive integer/);

      // A request held by a delay fault has arrived but is not logged yet.
      const controller = new AbortController();
      const slow = fetch(`${sb.fhirUrl}/Patient`, { signal: controller.signal }).catch(
        (e: unknown) => e,
      );
      expect(await sb.received((r) => r.path === '/fhir/Patient')).toMatchObject({
        method: 'GET',
        fault: 'delay',
      });
      expect(sb.requests.some((r) => r.path === '/fhir/Patient')).toBe(false);
      never = sb.logged((r) => r.path === '/nowhere');
      const aborted = sb.logged((r) => r.path === '/fhir/Patient');
      controller.abort();
      await slow;
      expect(await aborted).toMatchObject({ fault: 'delay,aborted' });
    } finally {
      await sb.close();
    }
    await expect(never).rejects.toThrow(/closed before/);
    await expect(sb.received((r) => r.path === '/nowhere')).rejects.toThrow(/closed before/);
  });
});
