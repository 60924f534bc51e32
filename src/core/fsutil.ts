import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { SmartError, systemErrorCode } from './errors.js';

export interface WriteOptions {
  /** File mode for a new file, e.g. 0o600 for private keys and caches. */
  mode?: number;
  /** Refuse to replace an existing file (the write still happens atomically). */
  exclusive?: boolean;
}

/**
 * Write a file atomically: a temp file in the same directory, then rename (or link, when the
 * target must not be replaced). A crash leaves either the old file or the new one, never half.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: WriteOptions = {},
): Promise<void> {
  const dir = dirname(path);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const mode = options.mode ?? 0o644;
  const handle = await fs.open(tmp, 'wx', mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  // The umask may have narrowed the mode; make it exact.
  await fs.chmod(tmp, mode);
  try {
    if (options.exclusive) {
      await fs.link(tmp, path);
      await fs.unlink(tmp);
    } else {
      await fs.rename(tmp, path);
    }
  } catch (e) {
    await fs.unlink(tmp).catch(() => undefined);
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new SmartError('usage', `${path} already exists`, {
        code: 'file_exists',
        hint: 'use --force to replace it (the old file will be lost)',
      });
    }
    throw fileError(e, path, 'write');
  }
}

/** Read a file as UTF-8 with an error that names the file. */
/** Read a text file; a missing one is a usage error naming it, with `missingHint` if given. */
export async function readTextFile(
  path: string,
  what = 'file',
  missingHint?: string,
): Promise<string> {
  try {
    return await fs.readFile(path, 'utf8');
  } catch (e) {
    throw fileError(e, path, 'read', what, missingHint);
  }
}

export function fileError(
  e: unknown,
  path: string,
  op: 'read' | 'write',
  what = 'file',
  missingHint?: string,
): SmartError {
  const code = systemErrorCode(e);
  if (code === 'ENOENT') {
    return new SmartError('usage', `${what} not found: ${path}`, {
      cause: e,
      code,
      hint: missingHint,
    });
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return new SmartError('usage', `permission denied: cannot ${op} ${path}`, { cause: e, code });
  }
  if (code === 'EISDIR') {
    return new SmartError('usage', `${path} is a directory, expected a ${what}`, {
      cause: e,
      code,
    });
  }
  return new SmartError('runtime', `cannot ${op} ${path}: ${(e as Error).message}`, {
    cause: e,
    code,
  });
}
