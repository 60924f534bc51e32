import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UrlSigner } from '../../../src/sandbox/export.js';
import { type SandboxHandle, startSandbox } from '../../../src/sandbox/index.js';
import { type TestKey, getToken, json, makeKey, register, serveJwks } from './helpers.js';

const ASYNC = { accept: 'application/fhir+json', prefer: 'respond-async' };

interface Manifest {
  requiresAccessToken: boolean;
  output: { type: string; url: string; count: number }[];
  error: { type: string; url: string; count: number }[];
}

let key: TestKey;
let jwks: Awaited<ReturnType<typeof serveJwks>>;
let sb: SandboxHandle;
const lines: string[] = [];

beforeAll(async () => {
  key = await makeKey('RS384');
  jwks = await serveJwks([key.publicJwk]);
  sb = await startSandbox({
    port: 0,
    exportFileSize: 5,
    exportDelayMs: 0,
    exportRequiresAccessToken: false,
    log: (l) => lines.push(l),
  });
});
afterAll(async () => {
  await sb.close();
  await jwks.close();
});

/** Kick-off and poll with the token; the manifest and the response that carried it. */
async function exportWith(sandbox: SandboxHandle, client: string, query = '_type=Observation') {
  await register(sandbox, client, jwks.url);
  const token = await getToken(sandbox, key, client);
  const auth = { authorization: `Bearer ${token}` };
  const k = await fetch(`${sandbox.fhirUrl}/$export?${query}`, { headers: { ...auth, ...ASYNC } });
  expect(k.status).toBe(202);
  const location = k.headers.get('content-location')!;
  // exportDelayMs: 0 and no exportMinPolls: the first poll has the manifest.
  const res = await fetch(location, { headers: auth });
  expect(res.status).toBe(200);
  return { manifest: (await json(res)) as Manifest, res, location, auth };
}

/** Log entries of this export's file downloads (the job id is in the path). */
const fileOf = (location: string) => {
  const prefix = `/fhir/$export-file/${location.split('/').pop()}/`;
  return (r: { path: string }) => r.path.startsWith(prefix);
};
const countLines = (text: string) => text.split('\n').filter(Boolean).length;

describe('$export with exportRequiresAccessToken: false', () => {
  it('the manifest says requiresAccessToken: false and gives pre-signed file URLs with an Expires', async () => {
    const { manifest, res } = await exportWith(sb, 'signed', '_type=Observation,Nope');
    expect(manifest.requiresAccessToken).toBe(false);
    expect(manifest.output.length).toBeGreaterThan(1);
    expect(manifest.error).toHaveLength(1);
    for (const f of [...manifest.output, ...manifest.error]) {
      const u = new URL(f.url);
      expect(u.pathname).toMatch(/^\/fhir\/\$export-file\/[\w-]+\/[\w-]+\.ndjson$/);
      expect(u.searchParams.get('sig')).toMatch(/^[\w-]{43}$/);
      expect(Number(u.searchParams.get('exp')) * 1000).toBeGreaterThan(Date.now());
    }
    const sigs = manifest.output.map((f) => new URL(f.url).searchParams.get('sig'));
    expect(new Set(sigs).size).toBe(sigs.length);
    const expires = Date.parse(res.headers.get('expires') ?? '');
    expect(expires).toBeGreaterThan(Date.now());
    expect(expires).toBe(Number(new URL(manifest.output[0]!.url).searchParams.get('exp')) * 1000);
  });

  it('serves every file without a token, and with one too; the log says which carried one', async () => {
    const { manifest, location } = await exportWith(sb, 'signed2');
    for (const f of manifest.output) {
      const res = await fetch(f.url);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/application\/fhir\+ndjson/);
      expect(countLines(await res.text())).toBe(f.count);
    }
    // A token sent along (even a stale one) neither helps nor hurts.
    const withToken = await fetch(manifest.output[0]!.url, {
      headers: { authorization: 'Bearer not-a-real-token' },
    });
    expect(withToken.status).toBe(200);
    expect(countLines(await withToken.text())).toBe(manifest.output[0]!.count);
    // Each entry is logged as its response ends: wait for the last one.
    const isFile = fileOf(location);
    await sb.logged(isFile, manifest.output.length + 1);

    const files = sb.requests.filter(isFile);
    expect(files).toHaveLength(manifest.output.length + 1);
    expect(files.slice(0, -1).every((r) => r.authorization === false && r.status === 200)).toBe(
      true,
    );
    expect(files.at(-1)).toMatchObject({ authorization: true, status: 200 });
    // Signed requests are attributed to the export's client; the signature is never logged.
    expect(files.every((r) => r.clientId === 'signed2')).toBe(true);
    for (const r of files) expect(r.path).toMatch(/\?exp=\d+&sig=\*\*\*$/);
    for (const f of manifest.output) {
      const sig = new URL(f.url).searchParams.get('sig')!;
      expect(lines.join('\n') + JSON.stringify(sb.requests)).not.toContain(sig);
    }
    // Kick-off, polls and token requests: as they came.
    const kick = sb.requests.find((r) => r.path.startsWith('/fhir/$export?'))!;
    expect(kick.authorization).toBe(true);
    expect(sb.requests.filter((r) => r.path.startsWith('/fhir/$export-status/'))).not.toEqual([]);
    expect(
      sb.requests
        .filter((r) => r.path.startsWith('/fhir/$export-status/'))
        .every((r) => r.authorization),
    ).toBe(true);
    expect(sb.requests.find((r) => r.path === '/auth/token')!.authorization).toBe(false);
  });

  it('a URL that was not signed by the sandbox opens nothing', async () => {
    const { manifest, location, auth } = await exportWith(sb, 'signed3');
    const [a, b] = manifest.output as [Manifest['output'][0], Manifest['output'][0]];
    const ua = new URL(a.url);
    const ub = new URL(b.url);

    const forged = new URL(ua);
    forged.searchParams.set(
      'sig',
      ua.searchParams.get('sig')!.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')),
    );
    const later = new URL(ua);
    later.searchParams.set('exp', String(Number(ua.searchParams.get('exp')) + 3600));
    const swapped = new URL(ub);
    swapped.searchParams.set('sig', ua.searchParams.get('sig')!);
    const noExp = new URL(ua);
    noExp.searchParams.delete('exp');
    for (const u of [forged, later, swapped, noExp]) {
      const res = await fetch(u);
      expect(res.status, u.search).toBe(403);
      const oo = await json(res);
      expect(oo.resourceType).toBe('OperationOutcome');
      expect(oo.issue[0].diagnostics).toMatch(/signature .* does not match/);
    }
    // Without the signature the file is behind the token, as usual.
    const bare = `${ua.origin}${ua.pathname}`;
    expect((await fetch(bare)).status).toBe(401);
    expect((await fetch(bare, { headers: auth })).status).toBe(200);
    // A deleted export takes its files with it.
    expect((await fetch(location, { method: 'DELETE', headers: auth })).status).toBe(202);
    expect((await fetch(a.url)).status).toBe(404);
  });

  it('by default files need the token and their URLs carry nothing', async () => {
    const plain = await startSandbox({ port: 0, exportFileSize: 5, exportDelayMs: 0 });
    try {
      const { manifest, res, auth, location } = await exportWith(plain, 'plain');
      expect(manifest.requiresAccessToken).toBe(true);
      expect(res.headers.get('expires')).toBeNull();
      const url = manifest.output[0]!.url;
      expect(new URL(url).search).toBe('');
      expect((await fetch(url)).status).toBe(401);
      expect((await fetch(url, { headers: auth })).status).toBe(200);
      // Signatures are not a way around the token when the sandbox never issued any.
      expect((await fetch(`${url}?exp=9999999999&sig=${'A'.repeat(43)}`)).status).toBe(403);
      const isFile = fileOf(location);
      await plain.logged(isFile, 3);
      const files = plain.requests.filter(isFile);
      expect(files.map((r) => r.authorization)).toEqual([false, true, false]);
    } finally {
      await plain.close();
    }
  });
});

describe('UrlSigner', () => {
  it('accepts its own signature until exp, then calls it expired', () => {
    let now = 1_700_000_000_000;
    const signer = new UrlSigner(Buffer.alloc(32, 7), () => now);
    const path = '/fhir/$export-file/job/Patient-1.ndjson';
    const exp = now / 1000 + 60;
    const q = new URLSearchParams(signer.sign(path, exp));
    expect(signer.check(path, q)).toBe('ok');
    now += 59_000;
    expect(signer.check(path, q)).toBe('ok');
    now += 1_000;
    expect(signer.check(path, q)).toBe('expired');
    expect(signer.check('/fhir/$export-file/job/Patient-2.ndjson', q)).toBe('bad');
  });

  it('rejects another secret, a malformed exp or no signature', () => {
    const path = '/fhir/$export-file/job/x.ndjson';
    const exp = Math.floor(Date.now() / 1000) + 60;
    const mine = new UrlSigner(Buffer.alloc(32, 1));
    const theirs = new UrlSigner(Buffer.alloc(32, 2));
    expect(mine.check(path, new URLSearchParams(theirs.sign(path, exp)))).toBe('bad');
    const q = new URLSearchParams(mine.sign(path, exp));
    q.set('exp', `${exp}.0`);
    expect(mine.check(path, q)).toBe('bad');
    expect(mine.check(path, new URLSearchParams({ exp: String(exp) }))).toBe('bad');
    expect(mine.check(path, new URLSearchParams())).toBe('bad');
  });
});
