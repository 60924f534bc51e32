import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LOCK_FILE, claimDir, dirError } from '../../../../../src/core/export/sinks/lock.js';
import { rejected } from '../../../../helpers/rejected.js';
import { tempDir } from '../../../../helpers/tmp.js';

/** The pid of a process that has exited (a node that ran and ended). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  await new Promise((r) => child.once('exit', r));
  return child.pid!;
}

const lockOf = (dir: string) => JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8'));

describe('sinks/lock: one export per directory', () => {
  it('claims with a private lock file holding pid and host; release removes it', async () => {
    const dir = tempDir();
    const lock = await claimDir(dir, 'out');
    expect(lock.warning).toBeUndefined();
    expect(lockOf(dir)).toMatchObject({ pid: process.pid, host: hostname() });
    expect(statSync(join(dir, LOCK_FILE)).mode & 0o777).toBe(0o600);
    await lock.release();
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
    await lock.release();
  });

  it('a second run on the same directory loses while the first holds it: exit 2, what to do', async () => {
    const dir = tempDir();
    const first = await claimDir(dir, 'out');
    const e = await rejected(claimDir(dir, 'out'));
    expect(e.message).toBe(`another export (pid ${process.pid}) is using out`);
    expect(e).toMatchObject({ kind: 'usage', code: 'out_locked' });
    expect(e.exitCode).toBe(2);
    expect(e.hint).toBe(
      `wait for it to finish or choose another directory; if no export runs there any more, remove ${join('out', LOCK_FILE)}`,
    );
    // The loser leaves the winner's lock alone; once released, the next run gets it.
    expect(lockOf(dir).pid).toBe(process.pid);
    await first.release();
    const next = await claimDir(dir, 'out');
    await next.release();
  });

  it('the lock of another live process on this host, or of another host, is held', async () => {
    const dir = tempDir();
    writeFileSync(
      join(dir, LOCK_FILE),
      JSON.stringify({ pid: process.ppid, host: hostname(), startedAt: '' }),
    );
    expect((await rejected(claimDir(dir, 'out'))).message).toBe(
      `another export (pid ${process.ppid}) is using out`,
    );
    writeFileSync(
      join(dir, LOCK_FILE),
      JSON.stringify({ pid: await deadPid(), host: 'elsewhere', startedAt: '' }),
    );
    expect((await rejected(claimDir(dir, 'out'))).message).toMatch(
      /^another export \(pid \d+ on elsewhere\) is using out$/,
    );
  });

  it('a lock that cannot be read is held (never taken over)', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, LOCK_FILE), 'not json');
    const e = await rejected(claimDir(dir, 'out'));
    expect(e.message).toBe('another export (pid ?) is using out');
    expect(readFileSync(join(dir, LOCK_FILE), 'utf8')).toBe('not json');
  });

  it('the lock of a process that is gone is taken over, with a warning', async () => {
    const dir = tempDir();
    const dead = await deadPid();
    writeFileSync(
      join(dir, LOCK_FILE),
      JSON.stringify({ pid: dead, host: hostname(), startedAt: '' }),
    );
    const lock = await claimDir(dir, 'out');
    expect(lock.warning).toBe(
      `took over the lock of an earlier export (pid ${dead}, no longer running) in out`,
    );
    expect(lockOf(dir).pid).toBe(process.pid);
    await lock.release();
  });

  it('release leaves a lock that is no longer ours', async () => {
    const dir = tempDir();
    const lock = await claimDir(dir, 'out');
    const other = JSON.stringify({ pid: process.ppid, host: hostname(), startedAt: '' });
    writeFileSync(join(dir, LOCK_FILE), other);
    await lock.release();
    expect(readFileSync(join(dir, LOCK_FILE), 'utf8')).toBe(other);
  });

  it('a directory that cannot be written: one line about --out, exit 2', async () => {
    const file = join(tempDir(), 'plain-file');
    writeFileSync(file, '');
    const e = await rejected(claimDir(join(file, 'sub'), 'out/sub'));
    expect(e.message).toBe('cannot write to --out out/sub: a part of the path is a file');
    expect(e.exitCode).toBe(2);
    expect(e.hint).toBe('choose a directory you can write to; nothing was started on the server');
  });

  it('dirError words each refusal; another error is the file error of the lock file', () => {
    const err = (code: string) => Object.assign(new Error(`${code}: failed`), { code });
    expect(dirError(err('EACCES'), '/x', 'x').message).toBe(
      'cannot write to --out x: permission denied',
    );
    expect(dirError(err('EPERM'), '/x', 'x').message).toMatch(/permission denied$/);
    expect(dirError(err('EROFS'), '/x', 'x').message).toMatch(/read-only file system$/);
    expect(dirError(err('ENOSPC'), '/x', 'x').message).toMatch(/no space left on device$/);
    expect(dirError(err('EDQUOT'), '/x', 'x').message).toMatch(/no space left on device$/);
    for (const code of ['EACCES', 'EROFS', 'ENOSPC']) {
      const e = dirError(err(code), '/x', 'x');
      expect(e.exitCode).toBe(2);
      expect(e.code).toBe(code);
    }
    const other = dirError(err('EIO'), '/x', 'x');
    expect(other.message).toContain(join('/x', LOCK_FILE));
  });
});
