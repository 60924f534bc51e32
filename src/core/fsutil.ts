import { promises as fs, readFileSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { SmartError, fileSystemError, systemErrorCode } from './errors.js';

export interface WriteOptions {
  /** File mode for a new file, e.g. 0o600 for private keys and caches. */
  mode?: number;
  /** Refuse to replace an existing file (the write still happens atomically). */
  exclusive?: boolean;
  /** The path came from the user's flag: a failure is exit 2, not 1. */
  fromUser?: boolean;
}

/**
 * `mkdir -p`, with the real reason when it fails: Node's recursive mkdir says ENOENT on a
 * read-only file system, so the first missing directory is created alone to learn why.
 */
export async function makeDir(dir: string, mode = 0o700): Promise<void> {
  try {
    await fs.mkdir(dir, { recursive: true, mode });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      // A file stands where the directory should be: say so, not "file already exists" (which
      // an exclusive write would take for its own target).
      throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${dir}'`), {
        code: 'ENOTDIR',
        syscall: 'mkdir',
        path: dir,
        cause: e,
      });
    }
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    let missing = dir;
    while (dirname(missing) !== missing && !(await fs.stat(dirname(missing)).catch(() => false)))
      missing = dirname(missing);
    await fs.mkdir(missing, { mode });
    throw e;
  }
}

let written = 0;

/**
 * A part of a temp file's name that no other writer uses at the same time: this process's id,
 * the time and a count. The file is created exclusively, so a clash is an error, never a mix.
 * (Not random bytes: node:crypto would load for every command that writes a file.)
 */
function tempSuffix(): string {
  return `${process.pid}.${Date.now().toString(36)}.${(++written).toString(36)}`;
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
  const tmp = join(dir, `.${basename(path)}.${tempSuffix()}.tmp`);
  const mode = options.mode ?? 0o644;
  try {
    await makeDir(dir);
    const handle = await fs.open(tmp, 'wx', mode);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    // The umask may have narrowed the mode; make it exact.
    await fs.chmod(tmp, mode);
    if (options.exclusive) {
      await fs.link(tmp, path);
      await fs.unlink(tmp);
    } else {
      await fs.rename(tmp, path);
    }
  } catch (e) {
    await fs.unlink(tmp).catch(() => undefined);
    if ((e as NodeJS.ErrnoException).code === 'EEXIST' && options.exclusive) {
      throw new SmartError('usage', `${path} already exists`, {
        code: 'file_exists',
        hint: 'use --force to replace it (the old file will be lost)',
      });
    }
    throw fileError(e, path, 'write', 'file', undefined, options.fromUser);
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
    // Read at once: these are small local files (a key, a JWKS, a CA bundle), and an
    // asynchronous read goes four times through libuv's thread pool (~0.5 ms of start-up each).
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw fileError(e, path, 'read', what, missingHint);
  }
}

/**
 * A failed read or write as one line naming the path and the operation (see fileSystemError):
 * exit 1, or 2 when the path is the user's (`fromUser`; reads of input files default to it: a
 * key, a JWKS or a CA file the user named). A missing file is a usage error naming it.
 */
export function fileError(
  e: unknown,
  path: string,
  op: 'read' | 'write',
  what = 'file',
  missingHint?: string,
  fromUser = op === 'read',
): SmartError {
  const code = systemErrorCode(e);
  if (code === 'ENOENT') {
    return new SmartError('usage', `${what} not found: ${path}`, {
      cause: e,
      code,
      hint: missingHint,
    });
  }
  const known = fileSystemError(e, { path, operation: op, fromUser });
  if (known) return known;
  return new SmartError(
    fromUser ? 'usage' : 'runtime',
    `cannot ${op} ${path}: ${(e as Error).message}`,
    {
      cause: e,
      code,
    },
  );
}
