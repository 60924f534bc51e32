import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Script } from 'node:vm';
import { resolvePaths } from './core/paths.js';
import { processUid, trustProblem } from './core/trust.js';

// The CLI's loader: the build (scripts/bundle-cli.mjs) turns dist/entry.js and everything it
// reaches into CommonJS chunks under dist/bundle/, and this file runs them with V8's code cache,
// kept in the user's cache directory. A process then reads a handful of files instead of ~50 ES
// modules (each resolved, read asynchronously and linked by Node 20's ES module loader) and
// compiles almost nothing: V8 takes the bytecode of every function the last run of the same
// chunk compiled from the cache. Node 22 has this built in (module.enableCompileCache), for ES
// modules too; Node 20 has only the V8 API below, for scripts.
//
// A cache entry is bytecode the process runs: it is read only when it is a regular file of this
// user's, 0600, in directories of this user's that no one else can write (the token cache's
// rule), and written like every cache of ours (0700 directories, 0600 file, temp + rename).
// V8 itself refuses an entry made by another V8 version or with other V8 flags; it checks only
// the length of the source, so an entry is named by the hash of its chunk's bytes. Any failure to
// read or write the cache only costs time.

/**
 * How every chunk file starts (bundle-cli.mjs writes it): the function V8 compiles, with what a
 * chunk's code may call besides CommonJS's require/module/exports. The build wraps the chunks,
 * not the loader: a string built here would be a second copy of each chunk's source in memory.
 */
export const CHUNK_HEAD =
  '(function (exports, require, module, __filename, __dirname, __smartImport, __smartUrl) {';
/** How every chunk file ends. */
export const CHUNK_TAIL = '\n})';

export interface CompileCacheOptions {
  /** Where the bundle's chunks are (dist/bundle). */
  bundleDir: string;
  /** The directory above the bundle, for the modules' own URLs (dist). */
  distDir: string;
  /** smart's cache directory ($XDG_CACHE_HOME/smart); undefined: no code cache. */
  smartCacheDir?: string;
  /** import() as seen from dist/: the bundle's dynamic imports of packages and built-ins. */
  importer: (specifier: string) => Promise<unknown>;
}

export interface CompileCacheStats {
  /** Chunks run, their entries found in the cache and taken by V8, and entries V8 refused. */
  loaded: number;
  cached: number;
  rejected: number;
}

interface Loaded {
  script: Script;
  cacheFile?: string;
  /** The cache did not answer: write one when the run is over. */
  stale: boolean;
}

/**
 * Node's require() from `file`, for a package the bundle leaves out. node:module is loaded here,
 * on first need, not with the loader: ~1 ms of start-up that no command run from the bundle needs.
 */
function nodeRequire(file: string): NodeJS.Require {
  return process.getBuiltinModule('node:module').createRequire(file);
}

/** The directory of the V8 code cache: one per Node version and CPU, under smart's cache. */
export function codeCacheDir(smartCacheDir: string): string {
  return join(smartCacheDir, 'v8', `${process.version}-${process.arch}`);
}

/**
 * The loader of the CLI's bundle, with the code cache under smart's cache directory (from `env`
 * as for every cache of smart's), or none when NODE_DISABLE_COMPILE_CACHE (Node's own switch for
 * its compile cache) is set, or on Windows.
 */
export function openCompileCache(options: {
  bundleDir: string;
  distDir: string;
  env: Record<string, string | undefined>;
  importer: (specifier: string) => Promise<unknown>;
}): CompileCache {
  const { env, ...rest } = options;
  // Windows reports every file as mode 0666: no entry would pass the trust rule, and each run
  // would write them all again.
  const off = env.NODE_DISABLE_COMPILE_CACHE || process.platform === 'win32';
  return new CompileCache({ ...rest, smartCacheDir: off ? undefined : resolvePaths(env).cacheDir });
}

export class CompileCache {
  private readonly modules = new Map<string, { exports: unknown }>();
  private readonly loaded: Loaded[] = [];
  private readonly uid = processUid();
  /** Node's require, for the packages the bundle leaves out (made on first need). */
  private nodeRequire: NodeJS.Require | undefined;
  /** Whether the cache's directories may be read from and written to. */
  private trusted: boolean | undefined;
  readonly stats: CompileCacheStats = { loaded: 0, cached: 0, rejected: 0 };

  /** Where the entries are: one directory per Node version and CPU. */
  private readonly dir: string | undefined;
  /** The hash of each chunk's bytes, read on first need. */
  private hashes: Record<string, unknown> | undefined;

  constructor(private readonly options: CompileCacheOptions) {
    this.dir = options.smartCacheDir && codeCacheDir(options.smartCacheDir);
  }

  /**
   * The bundle's import(): a built-in module straight from Node, as the namespace import() would
   * give (its exports, and itself as `default`); a package through `importer`. An import() of a
   * built-in would start Node's ES module loader (~1 ms and ~100 KB of heap, for the
   * `node:http` of every request), which nothing else in a run of the bundle needs.
   */
  readonly import = (specifier: string): Promise<unknown> => {
    const builtin = specifier.startsWith('node:') ? process.getBuiltinModule(specifier) : undefined;
    if (!builtin) return this.options.importer(specifier);
    return Promise.resolve(Object.freeze({ __proto__: null, ...builtin, default: builtin }));
  };

  /** The exports of a chunk of the bundle ("main.cjs"), run once per process. */
  require(file: string): unknown {
    const known = this.modules.get(file);
    if (known) return known.exports;
    const filename = join(this.options.bundleDir, file);
    // The build writes chunks in ASCII (bundle-cli.mjs checks): read as Latin-1, byte for byte,
    // without UTF-8 decoding.
    const source = readFileSync(filename, 'latin1');
    if (!source.startsWith(CHUNK_HEAD) || !source.endsWith(CHUNK_TAIL)) {
      throw new Error(`${filename} is not a chunk of bundle-cli.mjs's: run \`npm run build\``);
    }
    const module = { exports: {} };
    this.modules.set(file, module);
    const cacheFile = this.cacheFileFor(file);
    const cachedData = cacheFile ? this.readCache(cacheFile) : undefined;
    const script = new Script(source, {
      filename,
      cachedData,
    });
    this.stats.loaded++;
    if (cachedData && !script.cachedDataRejected) this.stats.cached++;
    if (cachedData && script.cachedDataRejected) this.stats.rejected++;
    this.loaded.push({
      script,
      cacheFile,
      stale: !cachedData || script.cachedDataRejected === true,
    });
    const { distDir, bundleDir } = this.options;
    const localRequire = (id: string): unknown =>
      id.startsWith('./')
        ? this.require(id.slice(2))
        : id.startsWith('node:')
          ? process.getBuiltinModule(id)
          : (this.nodeRequire ??= nodeRequire(join(bundleDir, 'main.cjs')))(id);
    const url = (path: string) => pathToFileURL(join(distDir, path)).href;
    const fn = script.runInThisContext() as (...args: unknown[]) => void;
    fn.call(
      module.exports,
      module.exports,
      localRequire,
      module,
      filename,
      bundleDir,
      this.import,
      url,
    );
    return module.exports;
  }

  /**
   * Write the cache of every chunk that ran without one (or with one V8 refused), with the
   * bytecode of every function compiled so far. Call it once the run is over, and not after V8
   * flags were changed at run time: V8 would refuse the entries at the next start.
   */
  flush(): number {
    let written = 0;
    for (const entry of this.loaded) {
      if (!entry.stale || !entry.cacheFile) continue;
      if (!this.writable(dirname(entry.cacheFile))) break;
      try {
        writeAtomic(entry.cacheFile, entry.script.createCachedData());
        entry.stale = false;
        written++;
      } catch {
        break; // a full disk or a read-only home: only time is lost
      }
    }
    if (written) this.prune();
    return written;
  }

  /**
   * The entry of a chunk: named by the hash of its bytes (dist/bundle/hashes.json, written by the
   * build), since V8 checks only the length of the source an entry was made for. A chunk the
   * list does not name has none.
   */
  private cacheFileFor(file: string): string | undefined {
    if (!this.dir) return undefined;
    if (!this.hashes) {
      try {
        const text = readFileSync(join(this.options.bundleDir, 'hashes.json'), 'utf8');
        const parsed: unknown = JSON.parse(text);
        this.hashes =
          parsed && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : {};
      } catch {
        this.hashes = {};
      }
    }
    const hash = Object.hasOwn(this.hashes, file) ? this.hashes[file] : undefined;
    if (typeof hash !== 'string' || !/^[\w-]{8,64}$/.test(hash)) return undefined;
    return join(this.dir, `${file}.${hash}.v8`);
  }

  private readCache(file: string): Buffer | undefined {
    if (!this.isTrusted()) return undefined;
    let fd: number | undefined;
    try {
      // Not through a symbolic link: the checks are of the file that is read.
      fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
      if (trustProblem(fstatSync(fd), 'file', this.uid)) return undefined;
      return readFileSync(fd);
    } catch {
      return undefined;
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }

  /** smart's cache directory and the two below it are this user's, and no one else's to write. */
  private isTrusted(): boolean {
    if (this.trusted !== undefined) return this.trusted;
    const dir = this.dir!;
    try {
      for (const d of [dirname(dirname(dir)), dirname(dir), dir]) {
        if (trustProblem(statSync(d), 'directory', this.uid)) return (this.trusted = false);
      }
      return (this.trusted = true);
    } catch {
      return false; // not made yet: nothing to read
    }
  }

  private writable(dir: string): boolean {
    if (this.trusted === false) return false;
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch {
      return false;
    }
    this.trusted = undefined;
    return this.isTrusted();
  }

  /**
   * Remove entries not written for 30 days, and temp files a killed run left. Not by what the
   * bundle holds: two installations of smart (a global one and a project's) share the directory,
   * and each would remove the other's entries. An entry still in use that goes costs one run
   * without the cache, which writes it again.
   */
  private prune(): void {
    const dir = this.dir!;
    const now = Date.now();
    try {
      for (const name of readdirSync(dir)) {
        const maxAge = name.endsWith('.v8') ? 30 * DAY : name.endsWith('.tmp') ? DAY : undefined;
        if (maxAge === undefined) continue;
        const st = lstatSync(join(dir, name), { throwIfNoEntry: false });
        if (st && now - st.mtimeMs > maxAge) rmSync(join(dir, name), { force: true });
      }
    } catch {
      // another run pruning at the same time, or a directory we cannot list: harmless
    }
  }
}

const DAY = 24 * 60 * 60 * 1000;

/** Temp file (0600) + rename: a reader sees the old entry or the new one, never a part. */
function writeAtomic(file: string, data: Buffer): void {
  const tmp = `${file}.${process.pid}.${Date.now().toString(36)}.tmp`;
  try {
    writeFileSync(tmp, data, { mode: 0o600, flag: 'wx' });
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
