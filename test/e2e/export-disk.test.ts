import { execa } from 'execa';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, makeWorkspace, runSmart, testClock, type Workspace } from '../helpers/cli.js';
import { startBulkStub, type BulkStub } from '../helpers/bulk-stub.js';
import { tempDir } from '../helpers/tmp.js';

/** Exports into directories that cannot be written, or that another export is using. */

const LOCK = '.smart-export.lock';
const kickoffs = (stub: BulkStub) => stub.requests.filter((r) => r.url.startsWith('/fhir/$export'));

/** Whether chmod stops this process from writing (it does not for root). */
function chmodProtects(): boolean {
  const d = tempDir('smart-chmod-probe-');
  chmodSync(d, 0o555);
  try {
    writeFileSync(join(d, 'x'), '');
    return false;
  } catch {
    return true;
  } finally {
    chmodSync(d, 0o700);
  }
}

let ws: Workspace;
let stub: BulkStub;
let onKickoff: (() => void) | undefined;

beforeAll(async () => {
  ws = makeWorkspace();
  stub = await startBulkStub(ws, { onKickoff: () => onKickoff?.() });
});
afterAll(() => stub?.close());

const run = (args: string[]) => runSmart(['export', ...args], { ws, env: stub.env });

describe('smart export: a destination that cannot be written', () => {
  it('--out below a file: exit 2 before anything is started on the server', async () => {
    const base = tempDir('smart-export-disk-');
    writeFileSync(join(base, 'file'), 'x');
    const before = kickoffs(stub).length;
    const r = await run(['--out', join(base, 'file', 'out')]);
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toMatch(
      /^error: cannot write to --out .*file\/out: a part of the path is a file$/m,
    );
    expect(r.stderr.trim().split('\n')).toHaveLength(2);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(kickoffs(stub).length).toBe(before);
  });

  // Root writes to a 0555 directory anyway; the ENOTDIR case above covers the check then.
  it.skipIf(!chmodProtects())('--out read-only (0555): exit 2 before the kick-off', async () => {
    const dir = tempDir('smart-export-ro-');
    chmodSync(dir, 0o555);
    const before = kickoffs(stub).length;
    const r = await run(['--out', dir]);
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toContain(`error: cannot write to --out ${dir}: permission denied`);
    expect(kickoffs(stub).length).toBe(before);
  });

  it('state not writable after the 202: exit 1 naming the status URL; the job is saved elsewhere and can be resumed', async () => {
    const dir = join(tempDir('smart-export-disk-'), 'out');
    // Between the check and the kick-off answer, export.json becomes a directory (root-proof).
    onKickoff = () => mkdirSync(join(dir, 'export.json', 'in-the-way'), { recursive: true });
    let r;
    try {
      r = await run(['--out', dir]);
    } finally {
      onKickoff = undefined;
    }
    expect(r.exitCode, r.stderr).toBe(1);
    expect(r.stderr).toContain(`${stub.url}/fhir/status/job-1`);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const fallback = /`smart export --resume ([^`]+)`/.exec(r.stderr)?.[1];
    expect(fallback, r.stderr).toBeTruthy();
    expect(r.stderr).toContain(`smart export cancel ${fallback}`);
    const saved = JSON.parse(readFileSync(join(fallback!, 'export.json'), 'utf8')) as {
      statusUrl: string;
    };
    expect(saved.statusUrl).toBe(`${stub.url}/fhir/status/job-1`);
    expect(existsSync(join(fallback!, LOCK))).toBe(false);

    const resumed = await run(['--resume', fallback!, '-o', 'json']);
    expect(resumed.exitCode, resumed.stderr).toBe(0);
    expect(readFileSync(join(fallback!, 'Patient.000.ndjson'), 'utf8')).toContain('"id":"a"');
  });
});

describe('smart export: two exports, one directory', () => {
  it('a directory in use by a live export: exit 2 naming its pid', async () => {
    const dir = tempDir('smart-export-lock-');
    // This test process is alive: its lock is not stale.
    writeFileSync(join(dir, LOCK), JSON.stringify({ pid: process.pid, host: hostname() }));
    const before = kickoffs(stub).length;
    const r = await run(['--out', dir]);
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toContain(`error: another export (pid ${process.pid}) is using ${dir}`);
    expect(kickoffs(stub).length).toBe(before);
    const resume = await run(['--resume', dir]);
    expect(resume.exitCode).toBe(2);
  });

  it('a stale lock of a dead process is taken over with a warning', async () => {
    const dir = tempDir('smart-export-lock-');
    const gone = await execa(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    writeFileSync(join(dir, LOCK), JSON.stringify({ pid: Number(gone.stdout), host: hostname() }));
    const r = await run(['--out', dir]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain(`took over the lock of an earlier export (pid ${gone.stdout}`);
    expect(readdirSync(dir).sort()).toEqual(
      ['export.json', 'manifest.json', 'Patient.000.ndjson'].sort(),
    );
  });

  it('two exports started together: one wins, the other exits 2 and touches nothing', async () => {
    for (let i = 0; i < 3; i++) {
      const dir = join(tempDir('smart-export-race-'), 'out');
      const [a, b] = await Promise.all([run(['--out', dir]), run(['--out', dir])]);
      const codes = [a.exitCode, b.exitCode].sort();
      expect(codes, a.stderr + b.stderr).toEqual([0, 2]);
      const loser = a.exitCode === 2 ? a : b;
      expect(loser.stderr).toMatch(
        /error: (another export \(pid \d+\) is using|--out .* is not empty)/,
      );
      expect(readdirSync(dir).sort()).toEqual(
        ['export.json', 'manifest.json', 'Patient.000.ndjson'].sort(),
      );
    }
  });
});

describe('smart export: a status URL that keeps failing', () => {
  it('a non-transient 500 is retried 5 times, then exit 1 naming the URL and the text; export.json kept', async () => {
    const failing = await startBulkStub(ws, {
      status: (_n, res) => {
        // Retry-After: 1 for each of the five waits (the unit test covers the backoff itself).
        res.writeHead(500, { 'content-type': 'application/fhir+json', 'retry-after': '1' }).end(
          JSON.stringify({
            resourceType: 'OperationOutcome',
            issue: [{ severity: 'error', code: 'processing', diagnostics: 'job 1 crashed' }],
          }),
        );
        return true;
      },
    });
    try {
      const dir = join(tempDir('smart-export-status-'), 'out');
      const clock = testClock();
      const r = await runSmart(['export', '--out', dir], { ws, env: failing.env, clock });
      expect(r.exitCode, r.stderr).toBe(1);
      expect(clock.waits).toEqual([1000, 1000, 1000, 1000, 1000]);
      const statusUrl = `${failing.url}/fhir/status/job-1`;
      expect(r.stderr).toContain(
        `error: the export's status URL ${statusUrl} answered 500 6 times in a row: error processing: job 1 crashed`,
      );
      expect(r.stderr).toContain(`smart export --resume ${dir}`);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(failing.requests.filter((q) => q.url === '/fhir/status/job-1')).toHaveLength(6);
      const state = JSON.parse(readFileSync(join(dir, 'export.json'), 'utf8')) as {
        statusUrl: string;
      };
      expect(state.statusUrl).toBe(statusUrl);
      expect(existsSync(join(dir, LOCK))).toBe(false);
    } finally {
      await failing.close();
    }
  });
});

describe('smart export: a download cut in the middle', () => {
  const lines = (n: number) =>
    Buffer.from(
      Array.from({ length: n }, (_, i) => `{"resourceType":"Patient","id":"p${i}"}\n`).join(''),
    );

  it('continues from the bytes on disk when the server takes ranges', async () => {
    const body = lines(20_000);
    const cutAt = Math.floor(body.length * 0.9);
    const ranged = await startBulkStub(ws, {
      files: { 'big.ndjson': { body, ranges: true, cut: { 1: cutAt } } },
    });
    try {
      const dir = join(tempDir('smart-export-cut-'), 'out');
      const r = await runSmart(['export', '--out', dir, '-o', 'json'], { ws, env: ranged.env });
      expect(r.exitCode, r.stderr).toBe(0);
      const asked = ranged.fileRequests('big.ndjson');
      expect(asked).toHaveLength(2);
      expect(asked[0]!.range).toBeUndefined();
      const from = Number(/^bytes=(\d+)-$/.exec(asked[1]!.range ?? '')?.[1]);
      // Everything the server managed to send before the cut was kept.
      expect(from).toBeGreaterThan(body.length / 2);
      expect(from).toBeLessThanOrEqual(cutAt);
      expect(readFileSync(join(dir, 'Patient.000.ndjson')).equals(body)).toBe(true);
      expect(JSON.parse(r.stdout).resources).toBe(20_000);
      expect(readdirSync(dir).filter((n) => n.endsWith('.part'))).toEqual([]);
    } finally {
      await ranged.close();
    }
  });

  it('starts over when the server does not take ranges; never a partial file under the final name', async () => {
    const body = lines(20_000);
    const plain = await startBulkStub(ws, {
      files: { 'big.ndjson': { body, cut: { 1: Math.floor(body.length * 0.9) } } },
    });
    try {
      const dir = join(tempDir('smart-export-cut-'), 'out');
      const r = await runSmart(['export', '--out', dir, '-o', 'json'], { ws, env: plain.env });
      expect(r.exitCode, r.stderr).toBe(0);
      expect(plain.fileRequests('big.ndjson')).toEqual([{}, {}]);
      expect(readFileSync(join(dir, 'Patient.000.ndjson')).equals(body)).toBe(true);
    } finally {
      await plain.close();
    }
  });

  it('after Ctrl-C in the middle of such a file, --resume asks for the rest only', async () => {
    const body = lines(20_000);
    const at = Math.floor(body.length * 0.9);
    const ranged = await startBulkStub(ws, {
      files: { 'big.ndjson': { body, ranges: true, stall: { 1: at } } },
    });
    try {
      const dir = join(tempDir('smart-export-cut-'), 'out');
      const child = execa(process.execPath, [BIN, 'export', '--out', dir], {
        env: { PATH: process.env.PATH, NO_COLOR: '1', ...ws.env, ...ranged.env },
        extendEnv: false,
        reject: false,
        cwd: ws.home,
        stdin: 'ignore',
        timeout: 60_000,
      });
      const parts = () =>
        existsSync(dir)
          ? readdirSync(dir)
              .filter((n) => n.endsWith('.part'))
              .map((n) => statSync(join(dir, n)).size)
          : [];
      // Observed, not timed: the stalled bytes are on disk. They get there in the child process
      // and nothing it says tells when (its progress events are rate-limited and stop with the
      // stall; fs.watch may coalesce or miss events), so the file itself is looked at: a short
      // poll with a deadline.
      const deadline = Date.now() + 30_000;
      while (!parts().some((size) => size >= at)) {
        if (child.exitCode !== null) throw new Error('the export ended early');
        if (Date.now() > deadline) throw new Error(`the .part never reached ${at} bytes`);
        await new Promise((r) => setTimeout(r, 20));
      }
      child.kill('SIGINT');
      expect((await child).exitCode).toBe(130);
      expect(existsSync(join(dir, 'Patient.000.ndjson'))).toBe(false);

      const r = await runSmart(['export', '--resume', dir, '-o', 'json'], { ws, env: ranged.env });
      expect(r.exitCode, r.stderr).toBe(0);
      expect(ranged.fileRequests('big.ndjson')[1]).toEqual({ range: `bytes=${at}-` });
      expect(readFileSync(join(dir, 'Patient.000.ndjson')).equals(body)).toBe(true);
      expect(JSON.parse(r.stdout).resources).toBe(20_000);
      expect(readdirSync(dir).filter((n) => /\.part|\.note/.test(n))).toEqual([]);
    } finally {
      await ranged.close();
    }
  });
});
