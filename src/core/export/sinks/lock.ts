import { promises as fs } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { SmartError, systemErrorCode } from '../../errors.js';
import { fileError } from '../../fsutil.js';

/** The file that says which process is writing an export directory. */
export const LOCK_FILE = '.smart-export.lock';

interface LockInfo {
  pid: number;
  host: string;
  startedAt: string;
}

function parseLock(text: string): LockInfo | undefined {
  try {
    const v = JSON.parse(text) as Partial<LockInfo>;
    if (
      typeof v.pid === 'number' &&
      Number.isInteger(v.pid) &&
      v.pid > 0 &&
      typeof v.host === 'string'
    )
      return { pid: v.pid, host: v.host, startedAt: String(v.startedAt ?? '') };
  } catch {
    // a lock we cannot read is treated as held (below)
  }
  return undefined;
}

/** Whether a process with this id runs on this machine (EPERM: it does, as another user). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface DirLock {
  /** Set when a stale lock (of a process that is gone) was taken over. */
  warning?: string;
  release(): Promise<void>;
}

/**
 * Claim `dir` for this process: a lock file created with O_EXCL, holding pid and host. Creating
 * it is also the check that the directory can be written. A lock of a dead process on this host
 * is taken over (with a warning); a live one (or one on another host) makes this run the loser.
 */
export async function claimDir(dir: string, display: string): Promise<DirLock> {
  const path = join(dir, LOCK_FILE);
  const host = hostname();
  const mine: LockInfo = { pid: process.pid, host, startedAt: new Date().toISOString() };
  let warning: string | undefined;
  for (let attempt = 0; ; attempt++) {
    try {
      await fs.writeFile(path, JSON.stringify(mine) + '\n', { flag: 'wx', mode: 0o600 });
      break;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') throw dirError(e, dir, display);
    }
    const text = await fs.readFile(path, 'utf8').catch(() => undefined);
    if (text === undefined && attempt < 3) continue; // released meanwhile: try again
    const held = text === undefined ? undefined : parseLock(text);
    const stale =
      held !== undefined && held.host === host && held.pid !== process.pid && !alive(held.pid);
    if (!stale || attempt >= 3) {
      throw new SmartError(
        'usage',
        `another export (pid ${held?.pid ?? '?'}${held && held.host !== host ? ` on ${held.host}` : ''}) is using ${display}`,
        {
          code: 'out_locked',
          hint: `wait for it to finish or choose another directory; if no export runs there any more, remove ${join(display, LOCK_FILE)}`,
        },
      );
    }
    // Take the stale lock over: move it aside atomically (only one claimant wins the rename),
    // check it is still the dead process's lock, then create ours.
    const aside = `${path}.${process.pid}.stale`;
    try {
      await fs.rename(path, aside);
    } catch {
      continue; // someone else moved it first
    }
    const moved = parseLock(await fs.readFile(aside, 'utf8').catch(() => ''));
    if (moved && moved.pid !== held.pid) {
      // We moved a fresh lock of the process that won the takeover: give it back.
      await fs.link(aside, path).catch(() => undefined);
      await fs.rm(aside, { force: true });
      continue;
    }
    await fs.rm(aside, { force: true });
    warning = `took over the lock of an earlier export (pid ${held.pid}, no longer running) in ${display}`;
  }
  let released = false;
  return {
    warning,
    release: async () => {
      if (released) return;
      released = true;
      const text = await fs.readFile(path, 'utf8').catch(() => undefined);
      const held = text === undefined ? undefined : parseLock(text);
      if (held?.pid === process.pid && held.host === host) await fs.rm(path, { force: true });
    },
  };
}

/** The directory cannot be written: worded for --out (the user's flag: exit 2). */
export function dirError(e: unknown, dir: string, display: string): SmartError {
  const code = systemErrorCode(e);
  const why =
    code === 'EACCES' || code === 'EPERM'
      ? 'permission denied'
      : code === 'EROFS'
        ? 'read-only file system'
        : code === 'ENOSPC' || code === 'EDQUOT'
          ? 'no space left on device'
          : code === 'ENOTDIR'
            ? 'a part of the path is a file'
            : undefined;
  if (!why) return fileError(e, join(dir, LOCK_FILE), 'write');
  return new SmartError('usage', `cannot write to --out ${display}: ${why}`, {
    cause: e,
    code,
    hint: 'choose a directory you can write to; nothing was started on the server',
  });
}
