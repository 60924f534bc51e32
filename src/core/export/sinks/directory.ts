import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import { dirname, join, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { SmartError, isSmartError, systemErrorCode } from '../../errors.js';
import { fileError, readTextFile, writeFileAtomic } from '../../fsutil.js';
import { quoteArg as quote } from '../poll.js';
import type { Sink, SinkUpload, StoredFile } from './types.js';

/** Local failures that another attempt will not fix. */
const LOCAL_FATAL = new Set(['ENOSPC', 'EDQUOT', 'EACCES', 'EPERM', 'EROFS', 'EISDIR', 'ENOTDIR']);

/** Where a file is written until it is complete. */
export function partPath(outDir: string, name: string): string {
  return join(outDir, `${name}.part`);
}

/**
 * A local directory: each file is streamed to `<name>.part` and renamed into place when
 * complete; small files are written atomically (temp + rename), all private to the user.
 */
export class DirectorySink implements Sink {
  readonly kind = 'directory' as const;

  constructor(readonly location: string) {}

  describe(name: string): string {
    return join(this.location, name);
  }

  /**
   * `--out` must be new or empty: an export never mixes its files with others. Returns true when
   * the directory was created.
   */
  async prepare(display = this.location): Promise<boolean> {
    const dir = this.location;
    let entries: string[];
    try {
      const st = await fs.stat(dir);
      if (!st.isDirectory()) {
        throw new SmartError('usage', `--out ${display} is a file, not a directory`, {
          code: 'out_not_dir',
          hint: 'give a new or empty directory',
        });
      }
      entries = await fs.readdir(dir);
    } catch (e) {
      if (isSmartError(e)) throw e;
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        await fs.mkdir(dir, { recursive: true, mode: 0o700 });
        return true;
      }
      throw new SmartError('usage', `cannot use --out ${display}: ${(e as Error).message}`, {
        cause: e,
      });
    }
    if (entries.length > 0) {
      const earlier = entries.includes('export.json');
      throw new SmartError('usage', `--out ${display} is not empty`, {
        code: 'out_not_empty',
        hint: earlier
          ? `it holds an earlier export: continue it with \`smart export --resume ${quote(display)}\`, or choose a new directory`
          : 'choose a new or empty directory (the export never mixes its files with others)',
      });
    }
    return false;
  }

  async discard(): Promise<void> {
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

  async open(name: string): Promise<SinkUpload> {
    const finalPath = this.describe(name);
    const part = partPath(this.location, name);
    await fs.mkdir(dirname(finalPath), { recursive: true, mode: 0o700 });
    const stream = createWriteStream(part, { mode: 0o600 });
    let settled = false;
    return {
      stream,
      commit: async () => {
        settled = true;
        await fs.rename(part, finalPath);
      },
      abort: async () => {
        if (settled) return;
        settled = true;
        stream.destroy();
        await fs.rm(part, { force: true }).catch(() => undefined);
      },
    };
  }

  async sweep(names: string[]): Promise<void> {
    // Leftovers of an interrupted run: their downloads restart from zero.
    await Promise.all(names.map((n) => fs.rm(partPath(this.location, n), { force: true })));
  }

  async read(name: string): Promise<Readable> {
    return createReadStream(this.describe(name));
  }

  fatal(e: unknown, name: string): SmartError | undefined {
    const code = systemErrorCode(e);
    if (code && LOCAL_FATAL.has(code)) return fileError(e, partPath(this.location, name), 'write');
    return undefined;
  }

  async close(): Promise<void> {}
}
