import { Command } from 'commander';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { registerSandbox } from '../../../src/commands/sandbox.js';
import { createContext, type RunOptions } from '../../../src/context.js';
import { SmartError } from '../../../src/core/errors.js';
import { startSandbox } from '../../../src/sandbox/index.js';
import { streamText } from '../../helpers/wait.js';

function harness(format: 'json' | 'table' = 'json', env: Record<string, string> = {}) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out = streamText(stdout);
  const err = streamText(stderr);
  const controller = new AbortController();
  // The real context of a run (as program.ts builds it), with the -o flag already parsed.
  const ctx = createContext(
    {
      argv: [],
      io: { stdout, stderr, stdin: new PassThrough() } as unknown as RunOptions['io'],
      env,
      cwd: process.cwd(),
    },
    controller.signal,
  );
  ctx.globals.output = format;
  const program = new Command('smart').exitOverride();
  registerSandbox(program, ctx);
  // The streams end with the run, so that a wait for what it never said fails with its output.
  const run = (...args: string[]) =>
    program.parseAsync(['sandbox', ...args], { from: 'user' }).finally(() => {
      stdout.end();
      stderr.end();
    });
  return { run, stop: () => controller.abort(), out, err };
}

describe('smart sandbox', () => {
  it('prints the banner, a JSON line for scripts, logs requests and stops on abort', async () => {
    const h = harness('json', { SMART_SANDBOX_ADMIN_SECRET: 'from-env' });
    const done = h.run('--port', '0', '--generate', '3', '--fault', '503:/fhir/metadata:1');
    await h.out.until('\n');
    const info = JSON.parse(h.out());
    expect(info).toMatchObject({ adminClientId: 'root', adminSecret: 'from-env' });
    expect(info.tokenUrl).toBe(`${info.url}/auth/token`);
    expect(info.fhirUrl).toBe(`${info.url}/fhir`);
    for (const s of [info.url, info.tokenUrl, info.fhirUrl, 'root', 'from-env', '$ smart']) {
      expect(h.err()).toContain(s);
    }
    expect((await fetch(`${info.fhirUrl}/metadata`)).status).toBe(503);
    expect((await fetch(`${info.fhirUrl}/metadata`)).status).toBe(200);
    await h.err.until(/GET \/fhir\/metadata 200/);
    expect(h.err()).toMatch(/GET \/fhir\/metadata 503 \d+ms fault=503/);
    h.stop();
    await done;
    expect(h.err()).toMatch(/sandbox stopped\n$/);
    await expect(fetch(`${info.url}/fhir/metadata`)).rejects.toThrow();
  });

  it('prints no JSON on stdout for a table, and the flag secret wins over the environment', async () => {
    const h = harness('table', { SMART_SANDBOX_ADMIN_SECRET: 'from-env' });
    const done = h.run('--port', '0', '--admin-secret', 'from-flag');
    await h.err.until('Ctrl-C');
    expect(h.out()).toBe('');
    expect(h.err()).toContain('from-flag');
    h.stop();
    await done;
  });

  it('--export-no-token: pre-signed file URLs; --fault throttle is accepted', async () => {
    const h = harness('json');
    const done = h.run(
      '--port',
      '0',
      '--admin-secret',
      's3cret',
      '--export-delay',
      '0',
      '--export-no-token',
      '--fault',
      'throttle:/fhir/$export-file:rate=65536',
    );
    await h.out.until('\n');
    const { fhirUrl } = JSON.parse(h.out()) as { fhirUrl: string };
    const auth = { authorization: `Basic ${Buffer.from('root:s3cret').toString('base64')}` };
    const k = await fetch(`${fhirUrl}/$export?_type=Patient`, {
      headers: { ...auth, accept: 'application/fhir+json', prefer: 'respond-async' },
    });
    expect(k.status).toBe(202);
    const res = await fetch(k.headers.get('content-location')!, { headers: auth });
    expect(res.status).toBe(200);
    const manifest = (await res.json()) as {
      requiresAccessToken: boolean;
      output: { url: string }[];
    };
    expect(manifest.requiresAccessToken).toBe(false);
    const file = await fetch(manifest.output[0]!.url);
    expect(file.status).toBe(200);
    await file.text();
    await h.err.until(/GET \/fhir\/\$export-file\/\S+ 200 \d+ms client=root fault=throttle/);
    h.stop();
    await done;
  });

  it('rejects bad flag values as usage errors naming the flag', async () => {
    const cases: [string[], RegExp][] = [
      [['--port', 'abc'], /--port "abc"/],
      [['--port', '70000'], /--port/],
      [['--generate', '-1'], /--generate/],
      [['--export-file-size', '0'], /--export-file-size/],
      [['--latency', 'soon'], /--latency/],
      [['--fault', '418:/x'], /--fault: .*unknown action/],
      [['--fault', 'throttle:/fhir/$export-file'], /--fault: .*rate=/],
      [['--data', '/no/such/dir', '--port', '0'], /--data: .*does not exist/],
    ];
    for (const [args, message] of cases) {
      const err = await harness()
        .run(...args)
        .catch((e: unknown) => e);
      expect(err, args.join(' ')).toBeInstanceOf(SmartError);
      expect((err as SmartError).kind).toBe('usage');
      expect((err as SmartError).message).toMatch(message);
      expect((err as SmartError).hint).toBeTruthy();
    }
  });

  it('reports a port in use as a runtime error with a hint', async () => {
    const busy = await startSandbox({ port: 0 });
    try {
      const port = new URL(busy.url).port;
      const err = (await harness()
        .run('--port', port)
        .catch((e: unknown) => e)) as SmartError;
      expect(err).toBeInstanceOf(SmartError);
      expect(err.kind).toBe('runtime');
      expect(err.message).toBe(`port ${port} on 127.0.0.1 is already in use`);
      expect(err.hint).toMatch(/--port 0/);
    } finally {
      await busy.close();
    }
  });
});
