import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  CHUNK_HEAD,
  CHUNK_TAIL,
  CompileCache,
  codeCacheDir,
  openCompileCache,
} from '../../src/compile-cache.js';
import { tempDir } from '../helpers/tmp.js';

const modeOf = (p: string) => statSync(p).mode & 0o777;

/**
 * A bundle as bundle-cli.mjs writes it: wrapped chunks reaching each other by
 * `require('./name')`, and hashes.json with the hash of each one's bytes (the broken chunk has
 * none: no cache entry).
 */
function bundle() {
  const dist = tempDir('smart-cc-');
  const bundleDir = join(dist, 'bundle');
  mkdirSync(bundleDir);
  let copies = 0;
  const chunks: Record<string, string> = {
    'main.cjs': 'exports.load = () => require("./work-AbCd1234.cjs");\n',
    'work-AbCd1234.cjs': [
      'const shared = require("./shared-Zz99_-xy.cjs");',
      'shared.runs.push("work");',
      'exports.sum = (n) => { let s = 0; for (let i = 1; i <= n; i++) s += i; return s + shared.base; };',
      'exports.url = __smartUrl("core/x.js");',
      'exports.builtin = () => __smartImport("node:path");',
      'exports.pkg = () => __smartImport("some-package");',
      'exports.self = { filename: __filename, dirname: __dirname, isModule: typeof module };',
    ].join('\n'),
    'shared-Zz99_-xy.cjs': 'exports.base = 100;\nexports.runs = [];\n',
    'broken-Bb00Bb00.cjs': 'throw new Error("the chunk fails");\n',
  };
  const hashes: Record<string, string> = {};
  const write = (name: string, code: string) => {
    const text = `${CHUNK_HEAD}${code}${CHUNK_TAIL}`;
    writeFileSync(join(bundleDir, name), text);
    if (name.startsWith('broken')) return;
    hashes[name] = createHash('sha256').update(text).digest('base64url').slice(0, 16);
    writeFileSync(join(bundleDir, 'hashes.json'), JSON.stringify(hashes));
  };
  for (const [name, code] of Object.entries(chunks)) write(name, code);
  const smartCacheDir = join(tempDir('smart-cc-home-'), 'smart');
  const imports: string[] = [];
  // Each loader gets its own copy of the bundle, as a new process would: V8 keeps the scripts it
  // compiled, by source and file name, and would answer from them instead of the code cache.
  const open = (options: { cache?: boolean } = {}) => {
    const copy = join(dist, `copy${++copies}`);
    cpSync(bundleDir, copy, { recursive: true });
    return new CompileCache({
      bundleDir: copy,
      distDir: dist,
      smartCacheDir: options.cache === false ? undefined : smartCacheDir,
      importer: async (specifier) => {
        imports.push(specifier);
        return specifier.startsWith('node:') ? import(specifier) : { imported: specifier };
      },
    });
  };
  const entryName = (chunk: string) => `${chunk}.${hashes[chunk]}.v8`;
  const entryFile = (chunk: string) => join(codeCacheDir(smartCacheDir), entryName(chunk));
  return { dist, bundleDir, smartCacheDir, open, imports, write, entryName, entryFile };
}

type Work = {
  sum(n: number): number;
  url: string;
  builtin(): Promise<typeof import('node:path')>;
  pkg(): Promise<unknown>;
  self: { filename: string; dirname: string; isModule: string };
};
const work = (cache: CompileCache) => (cache.require('main.cjs') as { load(): Work }).load();

/** A bundle whose chunks have run once, and whose code cache is written. */
function warmed() {
  const b = bundle();
  const first = b.open();
  work(first);
  first.flush();
  return b;
}

describe('CompileCache.require', () => {
  it('runs the chunks as CommonJS modules, each once, with the URL and import() of their source', async () => {
    const b = bundle();
    const cache = b.open();
    const w = work(cache);
    expect(w.sum(10)).toBe(155);
    expect(w.url).toBe(pathToFileURL(join(b.dist, 'core/x.js')).href);
    expect(w.self).toEqual({
      filename: join(b.dist, 'copy1', 'work-AbCd1234.cjs'),
      dirname: join(b.dist, 'copy1'),
      isModule: 'object',
    });
    // A built-in comes straight from Node, as import() would give it; a package from `importer`.
    const path = await w.builtin();
    const real = await import('node:path');
    expect(path.sep).toBe('/');
    expect(path.join).toBe(real.join);
    const defaultOf = (ns: object) => (ns as { default?: unknown }).default;
    expect(defaultOf(path)).toBe(defaultOf(real));
    expect(defaultOf(path)).toBe(process.getBuiltinModule('node:path'));
    expect(Object.keys(path).sort()).toEqual(Object.keys(real).sort());
    expect(await w.pkg()).toEqual({ imported: 'some-package' });
    expect(b.imports).toEqual(['some-package']);
    // Asked again, a chunk is not run again.
    expect(work(cache)).toBe(w);
    expect(cache.require('shared-Zz99_-xy.cjs')).toEqual({ base: 100, runs: ['work'] });
    expect(cache.stats).toEqual({ loaded: 3, cached: 0, rejected: 0 });
  });

  it("passes on a chunk's error and a missing chunk's", () => {
    const b = bundle();
    const cache = b.open();
    expect(() => cache.require('broken-Bb00Bb00.cjs')).toThrow('the chunk fails');
    expect(() => cache.require('gone-Cc11Cc11.cjs')).toThrow(/ENOENT/);
    // A file the build did not wrap is not run.
    const dir = join(b.dist, 'copy1');
    writeFileSync(join(dir, 'plain-Dd22Dd22.cjs'), 'globalThis.ran = true;\n');
    expect(() => cache.require('plain-Dd22Dd22.cjs')).toThrow(/is not a chunk of .*npm run build/);
    expect((globalThis as { ran?: boolean }).ran).toBeUndefined();
  });
});

describe('the code cache', () => {
  const ALL = ['main.cjs', 'shared-Zz99_-xy.cjs', 'work-AbCd1234.cjs'];

  it('is written after the run, 0600 in 0700 directories, and taken by the next run', () => {
    const b = bundle();
    const first = b.open();
    work(first).sum(3);
    expect(existsSync(codeCacheDir(b.smartCacheDir))).toBe(false);
    expect(first.flush()).toBe(3);
    expect(readdirSync(codeCacheDir(b.smartCacheDir)).sort()).toEqual(ALL.map(b.entryName));
    const file = b.entryFile('work-AbCd1234.cjs');
    expect(modeOf(file)).toBe(0o600);
    expect(modeOf(codeCacheDir(b.smartCacheDir))).toBe(0o700);
    expect(modeOf(join(b.smartCacheDir, 'v8'))).toBe(0o700);
    const bytes = readFileSync(file);

    const second = b.open();
    expect(work(second).sum(4)).toBe(110);
    expect(second.stats).toEqual({ loaded: 3, cached: 3, rejected: 0 });
    // Nothing to write: the entries answered.
    expect(second.flush()).toBe(0);
    expect(readFileSync(file)).toEqual(bytes);
  });

  it('sits in one directory per Node version and CPU', () => {
    expect(codeCacheDir('/c/smart')).toBe(`/c/smart/v8/${process.version}-${process.arch}`);
  });

  it('is for the bytes it was made from: a chunk changed, even to the same length, gets a new entry', () => {
    const b = bundle();
    const first = b.open();
    expect(work(first).sum(1)).toBe(101);
    first.flush();
    const old = b.entryFile('shared-Zz99_-xy.cjs');
    // Same length as before: V8 itself would take the old entry for it.
    b.write('shared-Zz99_-xy.cjs', 'exports.base = 200;\nexports.runs = [];\n');
    const next = b.open();
    expect(work(next).sum(1)).toBe(201);
    expect(next.stats).toEqual({ loaded: 3, cached: 2, rejected: 0 });
    expect(next.flush()).toBe(1);
    expect(b.entryFile('shared-Zz99_-xy.cjs')).not.toBe(old);
    expect(existsSync(b.entryFile('shared-Zz99_-xy.cjs'))).toBe(true);
  });

  it('gives no entry to a chunk that hashes.json does not name, or without hashes.json', () => {
    const b = bundle();
    const cache = b.open();
    expect(() => cache.require('broken-Bb00Bb00.cjs')).toThrow('the chunk fails');
    work(cache);
    expect(cache.flush()).toBe(3);
    rmSync(join(b.bundleDir, 'hashes.json'));
    const none = b.open();
    work(none);
    expect(none.stats).toEqual({ loaded: 3, cached: 0, rejected: 0 });
    expect(none.flush()).toBe(0);
    // A hashes.json that is not an object of names, or names a chunk with no usable hash.
    for (const text of [
      '[]',
      'null',
      '"x"',
      '{"work-AbCd1234.cjs": 12}',
      '{"work-AbCd1234.cjs": "../up"}',
    ]) {
      writeFileSync(join(b.bundleDir, 'hashes.json'), text);
      const odd = b.open();
      work(odd);
      expect(odd.stats, text).toEqual({ loaded: 3, cached: 0, rejected: 0 });
      expect(odd.flush(), text).toBe(0);
    }
  });

  it('refuses an entry V8 does not take, runs the chunk all the same, and replaces the entry', () => {
    const b = warmed();
    const file = b.entryFile('work-AbCd1234.cjs');
    writeFileSync(file, Buffer.from('not a code cache at all'), { mode: 0o600 });
    const second = b.open();
    expect(work(second).sum(2)).toBe(103);
    expect(second.stats).toEqual({ loaded: 3, cached: 2, rejected: 1 });
    expect(second.flush()).toBe(1);
    expect(readFileSync(file).toString()).not.toContain('not a code cache');
    const third = b.open();
    work(third);
    expect(third.stats).toEqual({ loaded: 3, cached: 3, rejected: 0 });
  });

  it('reads no entry that others can read or write, nor through a symbolic link', () => {
    const b = warmed();
    const file = b.entryFile('work-AbCd1234.cjs');
    chmodSync(file, 0o644);
    const loose = b.open();
    work(loose);
    expect(loose.stats).toEqual({ loaded: 3, cached: 2, rejected: 0 });
    // The entry is written anew, private.
    expect(loose.flush()).toBe(1);
    expect(modeOf(file)).toBe(0o600);

    const shared = b.entryFile('shared-Zz99_-xy.cjs');
    const elsewhere = join(b.dist, 'elsewhere.v8');
    writeFileSync(elsewhere, readFileSync(shared), { mode: 0o600 });
    rmSync(shared);
    symlinkSync(elsewhere, shared);
    const linked = b.open();
    work(linked);
    expect(linked.stats).toEqual({ loaded: 3, cached: 2, rejected: 0 });
  });

  it('neither reads nor writes in a cache directory that others can write', () => {
    const b = warmed();
    chmodSync(join(b.smartCacheDir, 'v8'), 0o777);
    writeFileSync(b.entryFile('work-AbCd1234.cjs'), 'planted', { mode: 0o600 });
    const next = b.open();
    expect(work(next).sum(1)).toBe(101);
    expect(next.stats).toEqual({ loaded: 3, cached: 0, rejected: 0 });
    expect(next.flush()).toBe(0);
    expect(readFileSync(b.entryFile('work-AbCd1234.cjs')).toString()).toBe('planted');
  });

  it('removes, when it writes, entries not written for 30 days and temp files left for a day', () => {
    const b = bundle();
    const dir = codeCacheDir(b.smartCacheDir);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const days = (n: number) => new Date(Date.now() - n * 24 * 60 * 60 * 1000);
    const put = (name: string, age: number) => {
      writeFileSync(join(dir, name), 'x', { mode: 0o600 });
      utimesSync(join(dir, name), days(age), days(age));
    };
    put('old-OldOld00.cjs.0123456789abcdef.v8', 31);
    // Another installation's entry, in use: kept.
    put('other-Other000.cjs.0123456789abcdef.v8', 2);
    put('work.v8.123.abc.tmp', 2);
    put('work.v8.456.def.tmp', 0);
    put('notes.txt', 400);
    const cache = b.open();
    work(cache);
    cache.flush();
    expect(readdirSync(dir).sort()).toEqual(
      [
        ...ALL.map(b.entryName),
        'notes.txt',
        'other-Other000.cjs.0123456789abcdef.v8',
        'work.v8.456.def.tmp',
      ].sort(),
    );
  });

  it('costs only time when the cache cannot be written', () => {
    const b = bundle();
    // A file where the cache directory should be.
    writeFileSync(b.smartCacheDir, 'in the way');
    const cache = b.open();
    expect(work(cache).sum(1)).toBe(101);
    expect(cache.flush()).toBe(0);
  });

  it('is off without a cache directory, and with NODE_DISABLE_COMPILE_CACHE', () => {
    const b = bundle();
    const none = b.open({ cache: false });
    work(none);
    expect(none.flush()).toBe(0);
    expect(existsSync(join(b.smartCacheDir, 'v8'))).toBe(false);

    const home = tempDir('smart-cc-env-');
    const env = { HOME: home, XDG_CACHE_HOME: join(home, 'c') };
    const options = { bundleDir: b.bundleDir, distDir: b.dist, importer: async () => ({}) };
    const off = openCompileCache({ ...options, env: { ...env, NODE_DISABLE_COMPILE_CACHE: '1' } });
    work(off);
    expect(off.flush()).toBe(0);
    const on = openCompileCache({ ...options, env });
    work(on);
    expect(on.flush()).toBe(3);
    expect(readdirSync(codeCacheDir(join(home, 'c', 'smart')))).toHaveLength(3);
  });

  it('is off on Windows, where every file reads as mode 0666', () => {
    const b = bundle();
    const home = tempDir('smart-cc-win-');
    const platform = Object.getOwnPropertyDescriptor(process, 'platform')!;
    Object.defineProperty(process, 'platform', { ...platform, value: 'win32' });
    try {
      const cache = openCompileCache({
        bundleDir: b.bundleDir,
        distDir: b.dist,
        env: { HOME: home, XDG_CACHE_HOME: join(home, 'c') },
        importer: async () => ({}),
      });
      work(cache);
      expect(cache.flush()).toBe(0);
      expect(existsSync(join(home, 'c', 'smart', 'v8'))).toBe(false);
    } finally {
      Object.defineProperty(process, 'platform', platform);
    }
  });
});
