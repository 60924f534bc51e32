import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from './fsutil.js';

/** A small JSON file cache under $XDG_CACHE_HOME/smart; files are 0600 (they may hold tokens). */
export class FileCache {
  constructor(private readonly dir: string) {}

  static keyOf(...parts: string[]): string {
    return createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, 32);
  }

  path(namespace: string, key: string): string {
    return join(this.dir, namespace, `${key}.json`);
  }

  async get<T>(namespace: string, key: string): Promise<T | undefined> {
    try {
      return JSON.parse(await fs.readFile(this.path(namespace, key), 'utf8')) as T;
    } catch {
      // A missing or corrupt cache entry is simply a miss.
      return undefined;
    }
  }

  async set(namespace: string, key: string, value: unknown): Promise<void> {
    await writeFileAtomic(this.path(namespace, key), JSON.stringify(value), { mode: 0o600 });
  }

  async delete(namespace: string, key: string): Promise<void> {
    await fs.rm(this.path(namespace, key), { force: true });
  }
}
