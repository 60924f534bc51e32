import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/program.js';
import { startFlow, type Flow } from '../helpers/sandbox.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * What a person at a terminal sees. A child process cannot be given a TTY without a pty, so these
 * run the CLI in-process with streams that say they are terminals, against a real sandbox.
 */

const ALICIA = 'a6a91d7e-7ded-4325-9dbe-42a088e7e039';

function terminal(columns: number) {
  let text = '';
  const stream = Object.assign(new PassThrough(), { isTTY: true, columns });
  stream.on('data', (d: Buffer) => (text += d.toString()));
  return { stream, text: () => text };
}

let flow: Flow;
beforeAll(async () => {
  flow = await startFlow({
    clientId: 'terminal-e2e',
    sandbox: { generate: 20, exportFileSize: 100, exportDelayMs: 300 },
  });
});
afterAll(() => flow?.close());

async function smartOnTerminal(
  args: string[],
  opts: { columns?: number; env?: Record<string, string>; stderrTTY?: boolean } = {},
) {
  const stdout = terminal(opts.columns ?? 0);
  const stderr = opts.stderrTTY === false ? terminal(0) : terminal(opts.columns ?? 0);
  if (opts.stderrTTY === false) Object.assign(stderr.stream, { isTTY: false });
  const stdin = Object.assign(new PassThrough(), { isTTY: false });
  stdin.end();
  const exitCode = await run({
    argv: args,
    io: { stdout: stdout.stream, stderr: stderr.stream, stdin },
    env: { PATH: process.env.PATH, NO_COLOR: '1', ...flow.ws.env, ...flow.env, ...opts.env },
    cwd: flow.ws.home,
  });
  return { exitCode, stdout: stdout.text(), stderr: stderr.text() };
}

describe('smart query on a terminal', () => {
  it('a pty that reports 0 columns gets an 80-column table, not a squeezed one', async () => {
    const r = await smartOnTerminal(['query', 'Patient', `_id=${ALICIA}`], { columns: 0 });
    expect(r.exitCode, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(r.stdout).toContain('│ Alicia Kessler │ female │ 1968-03-14 │');
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(80);
    expect(r.stderr).toBe('shown 1 of 1\n');
  });

  it('a real terminal width is used as given', async () => {
    const r = await smartOnTerminal(['query', 'Patient', '--limit', '3'], { columns: 50 });
    expect(r.exitCode, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(50);
    expect(Math.max(...lines.map((l) => l.length))).toBeGreaterThan(40);
    expect(r.stdout).toContain('…');
  });
});

describe('smart api on a terminal', () => {
  it('pretty-prints a JSON body', async () => {
    const r = await smartOnTerminal(['api', `Patient/${ALICIA}`], { columns: 100 });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout.startsWith('{\n  "resourceType": "Patient",\n')).toBe(true);
    expect(JSON.parse(r.stdout)).toMatchObject({ id: ALICIA });
  });
});

describe('smart export on a terminal', () => {
  it('draws live progress on stderr (status phase, then files) and ends with the summary', async () => {
    const dir = join(tempDir('smart-export-tty-'), 'out');
    const r = await smartOnTerminal(['export', '--type', 'Patient,Observation', '--out', dir], {
      columns: 100,
    });
    expect(r.exitCode, r.stderr).toBe(0);
    // The live area is redrawn in place with cursor movements; plain mode has none.
    expect(r.stderr).toContain('\x1b[J');
    expect(r.stderr).toMatch(/export running {2}\d/);
    // Permanent lines follow a newline, or the sequence that clears the live area.
    const permanent = r.stderr.replaceAll('\x1b[J', '\n');
    expect(permanent).toMatch(/^export ready: \d+ files, [\d,]+ resources$/m);
    expect(r.stderr).toMatch(/✓ Patient\.000\.ndjson {2}\d+ resources/);
    expect(permanent).toMatch(/^exported [\d,]+ resources in \d+ files/m);
    // A person gets a table of types on stdout, not JSON.
    expect(r.stdout).toMatch(/│ type\s+│ files │ resources │ size\s+│/);
    expect(r.stdout).toMatch(
      new RegExp(`│ Patient\\s+│ 1\\s+│ ${flow.sandbox.counts.Patient}\\s+│`),
    );
  });

  it('plain lines on stderr when stderr is not a terminal', async () => {
    const dir = join(tempDir('smart-export-tty-'), 'out');
    const r = await smartOnTerminal(['export', '--type', 'Patient', '--out', dir], {
      columns: 100,
      stderrTTY: false,
    });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).not.toContain('\x1b[');
    expect(r.stderr).toMatch(/^status: in progress/m);
    expect(r.stderr).toMatch(
      new RegExp(
        `^downloaded Patient\\.000\\.ndjson: ${flow.sandbox.counts.Patient} resources`,
        'm',
      ),
    );
  });
});
