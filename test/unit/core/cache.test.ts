import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileCache, untrustedReason } from '../../../src/core/cache.js';
import { tempDir } from '../../helpers/tmp.js';

const modeOf = (p: string) => statSync(p).mode & 0o777;
const asRoot = process.getuid?.() === 0;

/** A cache in a fresh private dir, with the warnings it gives. */
function cache() {
  const dir = join(tempDir(), 'smart');
  const warnings: string[] = [];
  return { dir, warnings, cache: new FileCache(dir, (w) => warnings.push(w)) };
}

describe('FileCache.keyOf and path', () => {
  it('is 32 hex characters of a hash of the parts, which keep their boundaries', () => {
    const k = FileCache.keyOf('https://t.example/token', 'client', 'system/*.read');
    expect(k).toMatch(/^[0-9a-f]{32}$/);
    expect(FileCache.keyOf('https://t.example/token', 'client', 'system/*.read')).toBe(k);
    expect(FileCache.keyOf('ab', 'c')).not.toBe(FileCache.keyOf('a', 'bc'));
    expect(new FileCache('/c/smart').path('tokens', k)).toBe(`/c/smart/tokens/${k}.json`);
  });
});

describe('FileCache set and get', () => {
  it('writes 0600 files in 0700 directories, and reads them back', async () => {
    const { dir, cache: c, warnings } = cache();
    await c.set('tokens', 'k1', { accessToken: 'tok', n: 1 });
    expect(await c.get('tokens', 'k1')).toEqual({ accessToken: 'tok', n: 1 });
    expect(modeOf(c.path('tokens', 'k1'))).toBe(0o600);
    expect(modeOf(dir)).toBe(0o700);
    expect(modeOf(join(dir, 'tokens'))).toBe(0o700);
    expect(warnings).toEqual([]);
  });

  it('a missing or corrupt entry is a miss, without a warning', async () => {
    const { cache: c, warnings } = cache();
    expect(await c.get('tokens', 'none')).toBeUndefined();
    await c.set('tokens', 'k', {});
    writeFileSync(c.path('tokens', 'k'), '{"half', { mode: 0o600 });
    expect(await c.get('tokens', 'k')).toBeUndefined();
    expect(warnings).toEqual([]);
  });

  it('replaces an entry by temp + rename: a new 0600 file, whatever the old one was', async () => {
    const { dir, cache: c } = cache();
    await c.set('tokens', 'k', { v: 1 });
    const file = c.path('tokens', 'k');
    chmodSync(file, 0o666);
    const ino = statSync(file).ino;
    await c.set('tokens', 'k', { v: 2 });
    expect(statSync(file).ino).not.toBe(ino);
    expect(modeOf(file)).toBe(0o600);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ v: 2 });
    expect(readdirSync(join(dir, 'tokens'))).toEqual(['k.json']);
  });

  it('makes an open directory of ours private before writing to it', async () => {
    const { dir, cache: c } = cache();
    mkdirSync(join(dir, 'tokens'), { recursive: true, mode: 0o755 });
    chmodSync(dir, 0o755);
    chmodSync(join(dir, 'tokens'), 0o775);
    await c.set('tokens', 'k', { v: 1 });
    expect(modeOf(dir)).toBe(0o700);
    expect(modeOf(join(dir, 'tokens'))).toBe(0o700);
  });

  it('a cache that cannot be written is one warning, never a failure', async () => {
    const root = tempDir();
    writeFileSync(join(root, 'smart'), 'a file where the cache dir should be');
    const warnings: string[] = [];
    const c = new FileCache(join(root, 'smart'), (w) => warnings.push(w));
    await c.set('tokens', 'k', { v: 1 });
    expect(warnings).toEqual([
      `cannot create the directory ${join(root, 'smart')}: a part of the path is a file, not a directory (not cached; the run goes on)`,
    ]);
    // Without a warn function: silent.
    await new FileCache(join(root, 'smart')).set('tokens', 'k', {});
  });

  it('delete removes the entry; deleting a missing one is fine', async () => {
    const { cache: c } = cache();
    await c.set('discovery', 'k', { v: 1 });
    await c.delete('discovery', 'k');
    expect(existsSync(c.path('discovery', 'k'))).toBe(false);
    await c.delete('discovery', 'k');
  });
});

describe('FileCache prune', () => {
  const name = (n: number) => FileCache.keyOf(String(n));

  it('removes the entries keep() refuses and those that are not JSON; leaves everything else', async () => {
    const { dir, cache: c } = cache();
    await c.set('tokens', name(1), { live: true });
    await c.set('tokens', name(2), { live: false });
    await c.set('tokens', name(3), { live: false });
    writeFileSync(c.path('tokens', name(4)), '{"cut sho', { mode: 0o600 });
    // Not entries of this cache: another name, a temp file, a directory, a symbolic link.
    const tokens = join(dir, 'tokens');
    writeFileSync(join(tokens, 'notes.json'), '{}');
    writeFileSync(join(tokens, `.${name(5)}.json.123.tmp`), '{}');
    mkdirSync(join(tokens, `${name(6)}.json`));
    symlinkSync(c.path('tokens', name(2)), join(tokens, `${name(7)}.json`));
    const seen: unknown[] = [];
    const removed = await c.prune('tokens', (v) => {
      seen.push(v);
      return (v as { live: boolean }).live;
    });
    expect(removed).toBe(3);
    expect(seen).toHaveLength(3);
    expect(readdirSync(tokens).sort()).toEqual(
      [
        `${name(1)}.json`,
        'notes.json',
        `.${name(5)}.json.123.tmp`,
        `${name(6)}.json`,
        `${name(7)}.json`,
      ].sort(),
    );
    // A namespace with no directory yet: nothing to do.
    expect(await c.prune('discovery', () => false)).toBe(0);
  });

  it.runIf(asRoot)('removes nothing from a directory of another user', async () => {
    const { dir, cache: c } = cache();
    await c.set('tokens', name(1), { live: false });
    chownSync(join(dir, 'tokens'), 65534, 65534);
    expect(await c.prune('tokens', () => false)).toBe(0);
    expect(existsSync(c.path('tokens', name(1)))).toBe(true);
  });
});

describe('cache trust: an entry others could have written is ignored, with one warning', () => {
  it('a file of mode 0644', async () => {
    const { cache: c, warnings } = cache();
    await c.set('tokens', 'k', { accessToken: 'planted?' });
    const file = c.path('tokens', 'k');
    chmodSync(file, 0o644);
    expect(await c.get('tokens', 'k')).toBeUndefined();
    expect(await c.get('tokens', 'k')).toBeUndefined();
    expect(warnings).toEqual([
      `ignoring the cache ${file}: its mode 0644 lets other users read or change it (expected 0600); a fresh one is written safely`,
    ]);
  });

  it('a directory others can write', async () => {
    const { dir, cache: c, warnings } = cache();
    await c.set('tokens', 'k', { v: 1 });
    chmodSync(join(dir, 'tokens'), 0o777);
    expect(await c.get('tokens', 'k')).toBeUndefined();
    expect(warnings).toEqual([
      `ignoring the cache ${join(dir, 'tokens')}: the directory is writable by other users (mode 0777); a fresh one is written safely`,
    ]);
    // The next write makes it private again, and the entry is trusted.
    await c.set('tokens', 'k', { v: 2 });
    expect(await c.get('tokens', 'k')).toEqual({ v: 2 });
  });

  it('a symbolic link is not a regular file', async () => {
    const { dir, cache: c } = cache();
    await c.set('tokens', 'real', { v: 1 });
    symlinkSync(c.path('tokens', 'real'), c.path('tokens', 'link'));
    expect(await untrustedReason(c.path('tokens', 'link'), [dir])).toEqual({
      path: c.path('tokens', 'link'),
      why: 'it is not a regular file',
    });
    expect(await c.get('tokens', 'link')).toBeUndefined();
  });

  it('a file of ours, 0600, in private directories is trusted; missing directories are skipped', async () => {
    const { dir, cache: c } = cache();
    await c.set('tokens', 'k', { v: 1 });
    expect(await untrustedReason(c.path('tokens', 'k'), [join(dir, 'gone'), dir])).toBeUndefined();
  });

  it.runIf(asRoot)('a file or a directory of another user (as root: chown to 65534)', async () => {
    const { dir, cache: c, warnings } = cache();
    await c.set('tokens', 'k', { v: 1 });
    const file = c.path('tokens', 'k');
    chownSync(file, 65534, 65534);
    expect(await untrustedReason(file, [dir])).toEqual({
      path: file,
      why: 'it is owned by another user (uid 65534)',
    });
    expect(await c.get('tokens', 'k')).toBeUndefined();
    chownSync(join(dir, 'tokens'), 65534, 65534);
    expect(await untrustedReason(file, [dir, join(dir, 'tokens')])).toEqual({
      path: join(dir, 'tokens'),
      why: 'the directory is owned by another user (uid 65534)',
    });
    // A directory of another user is not written to.
    await c.set('tokens', 'k2', { v: 2 });
    expect(existsSync(c.path('tokens', 'k2'))).toBe(false);
    expect(warnings).toHaveLength(1);
  });
});
