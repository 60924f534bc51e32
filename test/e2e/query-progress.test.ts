import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/program.js';
import { startFlow, type Flow } from '../helpers/sandbox.js';

/**
 * `query --all` on a terminal: one line on stderr that updates while the pages come. The CLI runs
 * in-process with streams that say they are terminals (a child process would need a pty).
 */

function stream(tty: boolean, columns = 80) {
  let text = '';
  const s = Object.assign(new PassThrough(), { isTTY: tty, columns });
  s.on('data', (d: Buffer) => (text += d.toString()));
  return { s, text: () => text };
}

let flow: Flow;
beforeAll(async () => {
  flow = await startFlow({ clientId: 'progress-e2e', sandbox: { generate: 10 } });
});
afterAll(() => flow?.close());

async function query(args: string[], tty: { stdout: boolean; stderr: boolean }) {
  const stdout = stream(tty.stdout);
  const stderr = stream(tty.stderr);
  const stdin = Object.assign(new PassThrough(), { isTTY: false });
  stdin.end();
  const exitCode = await run({
    argv: args,
    io: { stdout: stdout.s, stderr: stderr.s, stdin },
    env: { PATH: process.env.PATH, NO_COLOR: '1', ...flow.ws.env, ...flow.env },
    cwd: flow.ws.home,
  });
  return { exitCode, stdout: stdout.text(), stderr: stderr.text() };
}

const CLEAR = '\r\x1b[K';

describe('smart query --all on a terminal', () => {
  it('shows pages, resources and rate on one updating stderr line, then clears it', async () => {
    const total = flow.sandbox.counts.Patient!;
    const pages = Math.ceil(total / 5);
    expect(pages).toBeGreaterThan(2);
    const r = await query(['query', 'Patient', '--all', '--count', '5', '-o', 'ndjson'], {
      stdout: false,
      stderr: true,
    });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(total);
    // One line, redrawn in place: no newline on stderr at all.
    expect(r.stderr).not.toContain('\n');
    const frames = r.stderr.split(CLEAR).filter(Boolean);
    for (const f of frames) {
      expect(f).toMatch(/^page \d+ · [\d,]+( of [\d,]+)? resources · [\d,]+\/s · [\d.]+ s$/);
      expect(f.length).toBeLessThan(80);
    }
    // A frame per page at least, the last page named, the line cleared at the end.
    const last = `page ${pages} · ${(pages - 1) * 5} of ${total} resources`;
    expect(
      frames.some((f) => f.startsWith(last)),
      r.stderr,
    ).toBe(true);
    expect(r.stderr.endsWith(CLEAR)).toBe(true);
  });

  it('a table on the same terminal: the line is cleared before the table, the footer stays', async () => {
    const r = await query(['query', 'Patient', '--all', '--count', '5'], {
      stdout: true,
      stderr: true,
    });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout.startsWith('┌')).toBe(true);
    expect(r.stderr.startsWith(`${CLEAR}page 1 `)).toBe(true);
    const total = flow.sandbox.counts.Patient!;
    expect(r.stderr.endsWith(`${CLEAR}shown ${total} of ${total}\n`)).toBe(true);
  });

  it('nothing when stderr is not a terminal, or without --all/--limit', async () => {
    const piped = await query(['query', 'Patient', '--all', '--count', '5', '-o', 'ndjson'], {
      stdout: false,
      stderr: false,
    });
    expect(piped.exitCode, piped.stderr).toBe(0);
    expect(piped.stderr).toBe('');
    const onePage = await query(['query', 'Patient', '--count', '5', '-o', 'ndjson'], {
      stdout: false,
      stderr: true,
    });
    expect(onePage.exitCode).toBe(0);
    expect(onePage.stderr).toBe('');
  });
});
