import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Pacer } from '../../../src/sandbox/http.js';
import { type SandboxHandle, parseFaultSpec, startSandbox } from '../../../src/sandbox/index.js';
import { basic, json } from './helpers.js';

const ASYNC = { accept: 'application/fhir+json', prefer: 'respond-async' };

interface Timed {
  text: string;
  bytes: number;
  ms: number;
  /** [ms since the request, bytes so far] per chunk received. */
  timeline: [number, number][];
}

/** Reads a body chunk by chunk, noting when each byte count arrived. */
async function timedGet(url: string, headers: Record<string, string>): Promise<Timed> {
  const t0 = performance.now();
  const res = await fetch(url, { headers });
  expect(res.status).toBe(200);
  const reader = res.body!.getReader();
  const chunks: Uint8Array[] = [];
  const timeline: [number, number][] = [];
  let bytes = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    bytes += value.length;
    timeline.push([performance.now() - t0, bytes]);
  }
  return {
    text: Buffer.concat(chunks).toString('utf8'),
    bytes,
    ms: performance.now() - t0,
    timeline,
  };
}

/** Bytes received by `ms` after the request. */
function bytesBy(t: Timed, ms: number): number {
  return t.timeline.filter(([at]) => at <= ms).pop()?.[1] ?? 0;
}

/** A system export as the admin; the manifest once it is ready. */
async function exportManifest(sb: SandboxHandle, type: string) {
  const auth = { authorization: basic(sb) };
  const k = await fetch(`${sb.fhirUrl}/$export?_type=${type}`, { headers: { ...auth, ...ASYNC } });
  expect(k.status).toBe(202);
  // exportDelayMs: 0 and no exportMinPolls: the first poll has the manifest.
  const res = await fetch(k.headers.get('content-location')!, { headers: auth });
  expect(res.status).toBe(200);
  return (await json(res)) as { output: { type: string; url: string; count: number }[] };
}

describe('parseFaultSpec: throttle', () => {
  it('reads throttle:<path>:rate=<bytes per second>', () => {
    expect(parseFaultSpec('throttle:/fhir/$export-file:rate=65536')).toEqual({
      path: '/fhir/$export-file',
      action: { throttleBytesPerSec: 65536 },
    });
    expect(parseFaultSpec('throttle:/fhir/Observation:2:rate=100:method=get')).toEqual({
      path: '/fhir/Observation',
      nth: [2],
      method: 'GET',
      action: { throttleBytesPerSec: 100 },
    });
  });

  it('needs a positive whole rate', () => {
    expect(() => parseFaultSpec('throttle:/x')).toThrow(/rate=<bytes per second>/);
    expect(() => parseFaultSpec('throttle:/x:rate=0')).toThrow(/rate=/);
    expect(() => parseFaultSpec('throttle:/x:rate=fast')).toThrow(/rate=/);
    expect(() => parseFaultSpec('throttle:/x:rate=1.5')).toThrow(/rate=/);
    expect(() => parseFaultSpec('418:/x')).toThrow(/drop, delay or throttle/);
  });

  it('addFault rejects a throttle that is not a positive number', async () => {
    const sb = await startSandbox({ port: 0 });
    try {
      expect(() => sb.addFault({ path: '/x', action: { throttleBytesPerSec: 0 } })).toThrow(
        /invalid fault action/,
      );
      expect(() => sb.addFault({ path: '/x', action: { throttleBytesPerSec: NaN } })).toThrow(
        /invalid fault action/,
      );
    } finally {
      await sb.close();
    }
  });
});

describe('the throttle fault', () => {
  let sb: SandboxHandle | undefined;
  afterEach(async () => {
    await sb?.close();
    sb = undefined;
  });

  it('streams an export file at about the given rate, whole', async () => {
    sb = await startSandbox({ port: 0, generate: 100, exportFileSize: 100_000, exportDelayMs: 0 });
    const manifest = await exportManifest(sb, 'Observation');
    const file = manifest.output[0]!;
    const auth = { authorization: basic(sb) };
    const fast = await timedGet(file.url, auth);
    expect(fast.bytes).toBeGreaterThan(256 * 1024); // big enough to measure

    // Two seconds' worth at this rate (the first slice goes at once).
    const rate = Math.ceil(fast.bytes / 2);
    sb.addFault(parseFaultSpec(`throttle:/fhir/$export-file:1:rate=${rate}`));
    const slow = await timedGet(file.url, auth);
    expect(slow.text).toBe(fast.text);
    expect(slow.ms).toBeGreaterThanOrEqual(1000);
    expect(slow.ms).toBeLessThan(15_000);
    // Bytes arrive over time, not in one burst at the end nor all at the start.
    expect(bytesBy(slow, 500)).toBeGreaterThan(0);
    expect(bytesBy(slow, 500)).toBeLessThan(0.6 * slow.bytes);
    expect(slow.timeline.length).toBeGreaterThanOrEqual(10);
    // The log entry follows the body: the second file request's.
    const files = (r: { path: string }) => r.path.startsWith('/fhir/$export-file/');
    expect(await sb.logged(files, 2)).toMatchObject({ status: 200, fault: 'throttle' });
    // The rule hit only its first request.
    const again = await timedGet(file.url, auth);
    expect(again.bytes).toBe(fast.bytes);
    expect((await sb.logged(files, 3)).fault).toBeUndefined();
  });

  it('throttles a plain JSON response (with Content-Length) too', async () => {
    sb = await startSandbox({ port: 0, generate: 100 });
    const url = `${sb.fhirUrl}/Observation?_count=1000`;
    const auth = { authorization: basic(sb) };
    const fast = await timedGet(url, auth);
    expect(fast.bytes).toBeGreaterThan(256 * 1024);
    sb.addFault({
      path: '/fhir/Observation',
      times: 1,
      action: { throttleBytesPerSec: Math.ceil(fast.bytes / 2) },
    });
    const slow = await timedGet(url, auth);
    expect(JSON.parse(slow.text)).toEqual(JSON.parse(fast.text));
    expect(slow.ms).toBeGreaterThanOrEqual(1000);
    expect(bytesBy(slow, 500)).toBeLessThan(0.6 * slow.bytes);
  });

  it('with drop: sends about half, slowly, then cuts the connection', async () => {
    sb = await startSandbox({ port: 0, generate: 100, exportFileSize: 100_000, exportDelayMs: 0 });
    const manifest = await exportManifest(sb, 'Observation');
    const url = manifest.output[0]!.url;
    const auth = { authorization: basic(sb) };
    const full = (await timedGet(url, auth)).bytes;
    sb.addFault(parseFaultSpec(`throttle:/fhir/$export-file:1:rate=${Math.ceil(full / 2)}`));
    sb.addFault(parseFaultSpec('drop:/fhir/$export-file:1'));
    const t0 = performance.now();
    const res = await fetch(url, { headers: auth });
    await expect(res.text()).rejects.toThrow();
    // Half the file at two seconds per file: about one second.
    expect(performance.now() - t0).toBeGreaterThanOrEqual(500);
    const files = (r: { path: string }) => r.path.startsWith('/fhir/$export-file/');
    expect((await sb.logged(files, 2)).fault).toBe('throttle,drop');
  });

  it('stops writing as soon as the client goes away, and logs the request as aborted', async () => {
    const lines: string[] = [];
    sb = await startSandbox({
      port: 0,
      generate: 100,
      exportFileSize: 100_000,
      exportDelayMs: 0,
      log: (l) => lines.push(l),
    });
    const manifest = await exportManifest(sb, 'Observation');
    // 16 KiB/s: the whole file would take well over ten seconds.
    sb.addFault(parseFaultSpec('throttle:/fhir/$export-file:rate=16384'));
    const controller = new AbortController();
    const t0 = performance.now();
    const res = await fetch(manifest.output[0]!.url, {
      headers: { authorization: basic(sb) },
      signal: controller.signal,
    });
    const reader = res.body!.getReader();
    let got = 0;
    while (got < 20_000) got += (await reader.read()).value?.length ?? 0;
    controller.abort();
    const entry = await sb.logged((r) => r.path.startsWith('/fhir/$export-file/'));
    expect(entry).toBe(sb.requests.at(-1));
    expect(entry.fault).toBe('throttle,aborted');
    expect(entry.ms).toBeLessThan(5000);
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(lines.at(-1)).toMatch(/ fault=throttle,aborted$/);
    expect(lines.join('\n')).not.toMatch(/^error:/m);
    // The sandbox goes on serving and closes promptly (no writer left behind).
    expect((await fetch(`${sb.fhirUrl}/metadata`)).status).toBe(200);
    const closing = performance.now();
    await sb.close();
    sb = undefined;
    expect(performance.now() - closing).toBeLessThan(1000);
  });
});

describe('Pacer', () => {
  function fakeResponse() {
    const res = new EventEmitter() as EventEmitter & { destroyed: boolean };
    res.destroyed = false;
    return res;
  }

  it('lets the first slice go at once, then waits for the bytes already sent', async () => {
    // The pacer's time (performance.now) and its timer are the test's: no real wait, and no
    // bound that a loaded machine could break.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    try {
      const pacer = new Pacer(20_000);
      expect(pacer.slice).toBe(1000); // 50 ms of data
      const res = fakeResponse() as unknown as ServerResponse;
      expect(await pacer.ready(res)).toBe(true);
      expect(vi.getTimerCount()).toBe(0); // at once: no timer
      pacer.sentBytes(4000); // 200 ms worth
      let ready = false;
      const next = pacer.ready(res).then((r) => {
        ready = true;
        return r;
      });
      await vi.advanceTimersByTimeAsync(199);
      expect(ready).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      expect(await next).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });

  it('wakes up when the response closes, answers false and leaves no listener behind', async () => {
    const pacer = new Pacer(1000);
    const fake = fakeResponse();
    const res = fake as unknown as ServerResponse;
    expect(await pacer.ready(res)).toBe(true);
    pacer.sentBytes(10_000); // ten seconds ahead
    const t0 = performance.now();
    const waiting = pacer.ready(res);
    // Closed while the pacer waits (it listens for 'close' from the start of its wait).
    expect(fake.listenerCount('close')).toBe(1);
    fake.destroyed = true;
    fake.emit('close');
    expect(await waiting).toBe(false);
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(fake.listenerCount('close')).toBe(0);
    expect(await pacer.ready(res)).toBe(false);
  });
});
