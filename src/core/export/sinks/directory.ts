import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, sep } from 'node:path';
import { Readable } from 'node:stream';
import { SmartError, isSmartError, systemErrorCode } from '../../errors.js';
import { fileError, readTextFile, writeFileAtomic } from '../../fsutil.js';
import { quoteArg as quote } from '../poll.js';
import { LOCK_FILE, claimDir, dirError, type DirLock } from './lock.js';
import type { Sink, SinkUpload, StoredFile } from './types.js';

/** Bytes a file being downloaded may hold in memory while they wait for the disk. */
const WRITE_BUFFER = 1024 * 1024;

/** Local failures that another attempt will not fix. */
const LOCAL_FATAL = new Set(['ENOSPC', 'EDQUOT', 'EACCES', 'EPERM', 'EROFS', 'EISDIR', 'ENOTDIR']);

/**
 * Where a file is written until it is complete: `<name>.<run>.part`, a name of this run alone
 * (`tag`), so that no two processes ever write the same partial file.
 */
export function partPath(outDir: string, name: string, tag?: string): string {
  return join(outDir, tag ? `${name}.${tag}.part` : `${name}.part`);
}

/** The partial files of `name` left by any run, in the directory that holds it. */
async function partsOf(outDir: string, name: string): Promise<string[]> {
  const path = join(outDir, name);
  const base = basename(path);
  const entries = await fs.readdir(dirname(path)).catch(() => [] as string[]);
  return entries
    .filter((n) => n.startsWith(`${base}.`) && n.endsWith('.part'))
    .filter((n) => n === `${base}.part` || /^[a-z0-9]+$/.test(n.slice(base.length + 1, -5)))
    .map((n) => join(dirname(path), n));
}

/**
 * A local directory: each file is streamed to `<name>.part` and renamed into place when
 * complete; small files are written atomically (temp + rename), all private to the user.
 */
export class DirectorySink implements Sink {
  readonly kind = 'directory' as const;

  private lock?: DirLock;
  /** This run's mark in partial file names. */
  private readonly tag = `${process.pid.toString(36)}${randomBytes(2).toString('hex')}`;

  constructor(readonly location: string) {}

  describe(name: string): string {
    return join(this.location, name);
  }

  /**
   * `--out` must be new or empty: an export never mixes its files with others. The directory is
   * claimed for this run (a lock file, which also proves it can be written) before it is
   * checked, so two exports started together cannot both pass. Returns true when it was created.
   */
  async prepare(display = this.location, onWarning?: (message: string) => void): Promise<boolean> {
    const dir = this.location;
    let created = false;
    try {
      const st = await fs.stat(dir);
      if (!st.isDirectory()) {
        throw new SmartError('usage', `--out ${display} is a file, not a directory`, {
          code: 'out_not_dir',
          hint: 'give a new or empty directory',
        });
      }
    } catch (e) {
      if (isSmartError(e)) throw e;
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw dirError(e, dir, display);
      try {
        created = (await fs.mkdir(dir, { recursive: true, mode: 0o700 })) !== undefined;
      } catch (e2) {
        throw dirError(e2, dir, display);
      }
    }
    await this.claim(display, onWarning);
    try {
      const entries = (await fs.readdir(dir)).filter((n) => n !== LOCK_FILE);
      if (entries.length > 0) {
        const earlier = entries.includes('export.json');
        throw new SmartError('usage', `--out ${display} is not empty`, {
          code: 'out_not_empty',
          hint: earlier
            ? `it holds an earlier export: continue it with \`smart export --resume ${quote(display)}\`, or choose a new directory`
            : 'choose a new or empty directory (the export never mixes its files with others)',
        });
      }
    } catch (e) {
      await this.release();
      if (created) await this.discard();
      throw isSmartError(e) ? e : dirError(e, dir, display);
    }
    return created;
  }

  /** Claim the directory for this run (see claimDir); a stale lock taken over is a warning. */
  async claim(display = this.location, onWarning?: (message: string) => void): Promise<void> {
    if (this.lock) return;
    this.lock = await claimDir(this.location, display);
    if (this.lock.warning) onWarning?.(this.lock.warning);
  }

  async release(): Promise<void> {
    const lock = this.lock;
    this.lock = undefined;
    await lock?.release().catch(() => undefined);
  }

  async discard(): Promise<void> {
    await this.release();
    await fs.rmdir(this.location).catch(() => undefined);
  }

  async readText(name: string): Promise<string | undefined> {
    const path = this.describe(name);
    try {
      return await fs.readFile(path, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      // Let the shared helper word the other file errors.
      return readTextFile(path, `${name} file`);
    }
  }

  writeText(name: string, text: string): Promise<void> {
    return writeFileAtomic(this.describe(name), text, { mode: 0o600 });
  }

  async list(): Promise<Map<string, StoredFile>> {
    const found = new Map<string, StoredFile>();
    let entries: string[];
    try {
      entries = (await fs.readdir(this.location, { recursive: true })).map(String);
    } catch {
      return found;
    }
    await Promise.all(
      entries.map(async (rel) => {
        const st = await fs.stat(join(this.location, rel)).catch(() => undefined);
        if (st?.isFile()) found.set(rel.split(sep).join('/'), { bytes: st.size });
      }),
    );
    return found;
  }

  async stat(name: string): Promise<StoredFile | undefined> {
    try {
      const st = await fs.stat(this.describe(name));
      return st.isFile() ? { bytes: st.size } : undefined;
    } catch {
      return undefined;
    }
  }

  async open(name: string, options: { append?: boolean } = {}): Promise<SinkUpload> {
    const finalPath = this.describe(name);
    const part = partPath(this.location, name, this.tag);
    const note = `${part}.note`;
    // Independent of one another: at once (each is a trip to the thread pool). A note is about
    // bytes kept for a later attempt; appending makes it stale.
    const [, kept] = await Promise.all([
      fs.mkdir(dirname(finalPath), { recursive: true, mode: 0o700 }),
      options.append ? fs.stat(part).catch(() => undefined) : undefined,
      fs.rm(note, { force: true }),
    ]);
    const offset = kept?.isFile() ? kept.size : 0;
    // Up to 1 MB waits for the disk (Node's default: 16 KB, less than one 64 KB socket read):
    // the socket keeps reading while a write is under way, and what arrived meanwhile goes to
    // the disk in one call. A whole 40 MB download took ~210 ms against ~285 (bench/range.mjs).
    const stream = createWriteStream(part, {
      mode: 0o600,
      flags: offset > 0 ? 'a' : 'w',
      highWaterMark: WRITE_BUFFER,
    });
    const closed = new Promise<void>((resolve) => stream.once('close', () => resolve()));
    let settled = false;
    return {
      stream,
      offset,
      existing: (start = 0, end = offset) =>
        end > start
          ? createReadStream(part, { start, end: end - 1 })
          : Readable.from([] as Buffer[]),
      keptBytes: async () => (await fs.stat(part).catch(() => undefined))?.size ?? 0,
      note: (text: string) => fs.writeFile(note, text, { mode: 0o600 }),
      commit: async () => {
        settled = true;
        await fs.rename(part, finalPath);
        await fs.rm(note, { force: true });
      },
      abort: async (keep = false) => {
        if (settled) return;
        settled = true;
        stream.destroy();
        await closed;
        // Kept: what reached the disk is continued by the next attempt (never under the final name).
        if (!keep) await fs.rm(part, { force: true }).catch(() => undefined);
      },
    };
  }

  async partial(name: string): Promise<{ bytes: number; note?: string }> {
    const part = partPath(this.location, name, this.tag);
    const st = await fs.stat(part).catch(() => undefined);
    if (!st?.isFile() || st.size === 0) return { bytes: 0 };
    const note = await fs.readFile(`${part}.note`, 'utf8').catch(() => undefined);
    return { bytes: st.size, ...(note !== undefined ? { note } : {}) };
  }

  async sweep(names: string[]): Promise<void> {
    // Leftovers of an interrupted run: the longest partial file of each name becomes this run's,
    // to be continued where the server allows ranges (else the download starts from zero).
    await Promise.all(
      names.map(async (n) => {
        const mine = partPath(this.location, n, this.tag);
        const parts = await Promise.all(
          (await partsOf(this.location, n)).map(async (p) => ({
            p,
            size: (await fs.stat(p).catch(() => undefined))?.size ?? -1,
          })),
        );
        parts.sort((x, y) => y.size - x.size);
        const [best, ...rest] = parts;
        for (const { p } of rest) {
          await fs.rm(p, { force: true });
          await fs.rm(`${p}.note`, { force: true });
        }
        if (best && best.p !== mine) {
          await fs.rm(`${mine}.note`, { force: true });
          if (best.size > 0) {
            await fs.rename(best.p, mine).catch(() => undefined);
            await fs.rename(`${best.p}.note`, `${mine}.note`).catch(() => undefined);
          } else {
            await fs.rm(best.p, { force: true });
            await fs.rm(`${best.p}.note`, { force: true });
          }
        }
      }),
    );
  }

  async read(name: string): Promise<Readable> {
    return createReadStream(this.describe(name));
  }

  fatal(e: unknown, name: string): SmartError | undefined {
    const code = systemErrorCode(e);
    if (code && LOCAL_FATAL.has(code))
      return fileError(e, partPath(this.location, name, this.tag), 'write');
    return undefined;
  }

  async close(): Promise<void> {}
}
