import { promises as fs, lstatSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { makeDir, writeFileAtomic } from './fsutil.js';
import { sha256Hex } from './hash.js';
import { processUid, trustProblem } from './trust.js';

/** Warnings already given in this process: one line per untrusted file or directory. */
const warned = new Set<string>();

/**
 * Why a cache file cannot be trusted, or undefined when it can: whoever can write a token cache
 * chooses the bearer token sent to the FHIR server (the rule: core/trust.ts).
 */
export async function untrustedReason(
  file: string,
  dirs: string[],
): Promise<{ path: string; why: string } | undefined> {
  // Synchronous calls: a few local metadata reads, each otherwise a trip through libuv's thread
  // pool on the start-up path of every command with a cached token.
  const uid = processUid();
  for (const dir of dirs) {
    const st = statSync(dir, { throwIfNoEntry: false });
    const why = st && trustProblem(st, 'directory', uid);
    if (why) return { path: dir, why };
  }
  const why = trustProblem(lstatSync(file), 'file', uid);
  return why ? { path: file, why } : undefined;
}

/**
 * A small JSON file cache under $XDG_CACHE_HOME/smart; files are 0600 (they may hold tokens) in
 * 0700 directories. An entry that others could have written is ignored, with one warning.
 */
export class FileCache {
  constructor(
    private readonly dir: string,
    private readonly warn?: (message: string) => void,
  ) {}

  /** An entry's name: the SHA-256 of its parts (in plain JS: no node:crypto on a cache hit). */
  static keyOf(...parts: string[]): string {
    return sha256Hex(parts.join('\u0000')).slice(0, 32);
  }

  path(namespace: string, key: string): string {
    return join(this.dir, namespace, `${key}.json`);
  }

  async get<T>(namespace: string, key: string): Promise<T | undefined> {
    const file = this.path(namespace, key);
    try {
      const bad = await untrustedReason(file, [this.dir, dirname(file)]);
      if (bad) {
        const line = `ignoring the cache ${bad.path}: ${bad.why}; a fresh one is written safely`;
        if (!warned.has(line)) {
          warned.add(line);
          this.warn?.(line);
        }
        return undefined;
      }
      return JSON.parse(readFileSync(file, 'utf8')) as T;
    } catch {
      // A missing or corrupt cache entry is simply a miss.
      return undefined;
    }
  }

  /** Store an entry; a cache that cannot be written is a warning, never a failure. */
  async set(namespace: string, key: string, value: unknown): Promise<void> {
    try {
      await this.write(namespace, key, value);
    } catch (e) {
      const { fileSystemError } = await import('./errors.js');
      const why = (fileSystemError(e) ?? (e as Error)).message;
      this.warn?.(`${why} (not cached; the run goes on)`);
    }
  }

  private async write(namespace: string, key: string, value: unknown): Promise<void> {
    const file = this.path(namespace, key);
    // Directories of ours are made private (0700) before a token goes in; one of another user's
    // cannot be, and is not written to.
    for (const dir of [this.dir, dirname(file)]) {
      await makeDir(dir);
      const st = await fs.stat(dir);
      const uid = processUid();
      if (uid !== undefined && st.uid !== uid) return;
      if (st.mode & 0o077) await fs.chmod(dir, 0o700);
    }
    // A new file (temp + rename) replaces whatever was there, whatever its owner or mode.
    await writeFileAtomic(file, JSON.stringify(value), { mode: 0o600 });
  }

  async delete(namespace: string, key: string): Promise<void> {
    await fs.rm(this.path(namespace, key), { force: true });
  }

  /**
   * Remove the entries of `namespace` that `keep` does not want any more (an expired token),
   * and those that are not JSON. Only this cache's own entries (`<hash>.json`, regular files)
   * are looked at; one that cannot be read or removed is left alone. Returns how many went.
   */
  async prune(namespace: string, keep: (value: unknown) => boolean): Promise<number> {
    const dir = join(this.dir, namespace);
    let removed = 0;
    let names: string[];
    try {
      // Only in a directory of ours (as write() writes only there).
      const uid = processUid();
      if (uid !== undefined && statSync(dir).uid !== uid) return 0;
      names = await fs.readdir(dir);
    } catch {
      return 0;
    }
    for (const name of names) {
      if (!/^[0-9a-f]{32}\.json$/.test(name)) continue;
      const file = join(dir, name);
      try {
        if (!lstatSync(file).isFile()) continue;
        let value: unknown;
        try {
          value = JSON.parse(readFileSync(file, 'utf8'));
        } catch (e) {
          if (!(e instanceof SyntaxError)) continue;
          value = undefined;
        }
        if (value !== undefined && keep(value)) continue;
        await fs.rm(file, { force: true });
        removed++;
      } catch {
        // Gone meanwhile, or not ours to remove: left alone.
      }
    }
    return removed;
  }
}
