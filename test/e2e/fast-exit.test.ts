import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeWorkspace, smart, type Workspace } from '../helpers/cli.js';
import { sendJson, startQueryFlow, startStubServer, type QueryFlow } from './query-flow.js';

// A fast command line (a bare `smart token`, a plain `query` or `api`: src/fast.ts) ends the
// process itself once its output is out (src/cli.cts), instead of waiting for the event loop to
// empty and for V8's background work. These run the built CLI with a preload (`node --require`,
// as an agent in NODE_OPTIONS would be) that changes the process in one precise way.

let flow: QueryFlow;
let stub: Awaited<ReturnType<typeof startStubServer>>;
let ws: Workspace;
/** A body larger than a pipe holds and than stdout buffers before it asks to wait. */
const BIG = { resourceType: 'Binary', data: 'x'.repeat(300 * 1024) };

beforeAll(async () => {
  flow = await startQueryFlow();
  stub = await startStubServer(flow.ws, (_req, res) => sendJson(res, 200, BIG));
  ws = makeWorkspace();
  // A warm token for the runs below.
  const cold = await smart(['token'], { ws, env: flow.env });
  expect(cold.exitCode, cold.stderr).toBe(0);
});
afterAll(async () => {
  await stub?.close();
  await flow?.close();
});

function preload(name: string, code: string): string[] {
  const file = join(ws.home, `${name}.cjs`);
  writeFileSync(file, code);
  return ['--require', file];
}

describe('a fast command line ends the process once its output is out', () => {
  it('even when something else in the process holds the event loop open', async () => {
    // A timer that never ends: a command left to end on its own would never exit.
    const nodeArgs = preload('held', 'setInterval(() => {}, 1000);');
    const token = await smart(['token'], { ws, env: flow.env, nodeArgs, timeout: 10_000 });
    expect(token.exitCode, token.stderr).toBe(0);
    expect(token.stdout).toMatch(/^eyJ[\w-]+\.[\w-]+\.[\w-]+\n$/);
    const query = await smart(['query', 'Patient', '-o', 'json'], {
      ws,
      env: flow.env,
      nodeArgs,
      timeout: 10_000,
    });
    expect(query.exitCode, query.stderr).toBe(0);
    const plain = await smart(['query', 'Patient', '-o', 'json'], { ws, env: flow.env });
    expect(query.stdout).toBe(plain.stdout);
    expect(query.stdout).toContain('"resourceType":"Patient"');
    // Its exit code is the command's: an error still exits non-zero.
    const failed = await smart(['api', '/Patient'], {
      ws,
      env: { ...flow.env, SMART_CLIENT_ID: 'nobody' },
      nodeArgs,
      timeout: 10_000,
    });
    expect(failed.exitCode).toBeGreaterThan(0);
    expect(failed.stderr).toMatch(/^error: /);
  });

  it('never cuts its output short when stdout has not yet taken it all', async () => {
    // Every write to stdout completes 50 ms later, as on a pipe to a slow reader (or any pipe
    // on macOS): at the end of the run, the last writes are still waiting.
    const nodeArgs = preload(
      'slow-stdout',
      `const out = process.stdout;
       const write = out._write.bind(out);
       const writev = out._writev && out._writev.bind(out);
       out._write = (chunk, enc, cb) => setTimeout(() => write(chunk, enc, cb), 50);
       if (writev) out._writev = (chunks, cb) => setTimeout(() => writev(chunks, cb), 50);`,
    );
    const token = await smart(['token'], { ws, env: flow.env, nodeArgs });
    expect(token.exitCode, token.stderr).toBe(0);
    expect(token.stdout).toMatch(/^eyJ[\w-]+\.[\w-]+\.[\w-]+\n$/);
    const api = await smart(['api', '/Big'], { ws, env: stub.env, nodeArgs });
    expect(api.exitCode, api.stderr).toBe(0);
    expect(JSON.parse(api.stdout)).toEqual(BIG);
  });
});
