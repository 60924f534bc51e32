import { linkSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fileError, makeDir, readTextFile, writeFileAtomic } from '../../../src/core/fsutil.js';
import { rejected } from '../../helpers/rejected.js';
import { tempDir } from '../../helpers/tmp.js';

const modeOf = (p: string) => statSync(p).mode & 0o777;

describe('makeDir', () => {
  it('makes every missing directory, 0700 by default, and accepts one that exists', async () => {
    const root = tempDir();
    const dir = join(root, 'a', 'b', 'c');
    await makeDir(dir);
    expect(statSync(dir).isDirectory()).toBe(true);
    expect(modeOf(dir)).toBe(0o700);
    expect(modeOf(join(root, 'a'))).toBe(0o700);
    await makeDir(dir);
    await makeDir(join(root, 'open'), 0o755);
    expect(modeOf(join(root, 'open'))).toBe(0o755);
  });

  it('fails with the real reason when a file stands in the path', async () => {
    const root = tempDir();
    writeFileSync(join(root, 'f'), 'x');
    await expect(makeDir(join(root, 'f', 'sub'))).rejects.toMatchObject({ code: 'ENOTDIR' });
    // The file is the directory itself: mkdir -p says EEXIST, which is not the reason.
    await expect(makeDir(join(root, 'f'))).rejects.toMatchObject({
      code: 'ENOTDIR',
      path: join(root, 'f'),
    });
  });
});

describe('writeFileAtomic', () => {
  it('writes the data with the exact mode, whatever the umask; 0644 by default', async () => {
    const dir = tempDir();
    await writeFileAtomic(join(dir, 'key.pem'), 'secret', { mode: 0o600 });
    await writeFileAtomic(join(dir, 'shared'), new Uint8Array([104, 105]), { mode: 0o666 });
    await writeFileAtomic(join(dir, 'plain'), 'p');
    expect(readFileSync(join(dir, 'key.pem'), 'utf8')).toBe('secret');
    expect(modeOf(join(dir, 'key.pem'))).toBe(0o600);
    expect(readFileSync(join(dir, 'shared'), 'utf8')).toBe('hi');
    expect(modeOf(join(dir, 'shared'))).toBe(0o666);
    expect(modeOf(join(dir, 'plain'))).toBe(0o644);
  });

  it('makes the missing directories (0700)', async () => {
    const dir = tempDir();
    await writeFileAtomic(join(dir, 'x', 'y', 'f.json'), '{}');
    expect(readFileSync(join(dir, 'x', 'y', 'f.json'), 'utf8')).toBe('{}');
    expect(modeOf(join(dir, 'x'))).toBe(0o700);
  });

  it('replaces a file by a rename: a reader of the old file never sees half of the new one', async () => {
    const dir = tempDir();
    const path = join(dir, 'cache.json');
    writeFileSync(path, 'old');
    // A second name for the old file: a write in place would change it too.
    linkSync(path, join(dir, 'old-link'));
    const before = statSync(path).ino;
    await writeFileAtomic(path, 'new', { mode: 0o600 });
    expect(readFileSync(path, 'utf8')).toBe('new');
    expect(statSync(path).ino).not.toBe(before);
    expect(readFileSync(join(dir, 'old-link'), 'utf8')).toBe('old');
    // No temp file is left beside it.
    expect(readdirSync(dir).sort()).toEqual(['cache.json', 'old-link']);
  });

  it('exclusive: never replaces a file (exit 2, the hint names --force); a new one is written', async () => {
    const dir = tempDir();
    const path = join(dir, 'private.pem');
    writeFileSync(path, 'the old key');
    const e = await rejected(writeFileAtomic(path, 'a new key', { exclusive: true, mode: 0o600 }));
    expect(e.message).toBe(`${path} already exists`);
    expect([e.code, e.exitCode]).toEqual(['file_exists', 2]);
    expect(e.hint).toMatch(/--force/);
    expect(readFileSync(path, 'utf8')).toBe('the old key');
    expect(readdirSync(dir)).toEqual(['private.pem']);

    await writeFileAtomic(join(dir, 'new.pem'), 'k', { exclusive: true, mode: 0o600 });
    expect(readFileSync(join(dir, 'new.pem'), 'utf8')).toBe('k');
    expect(modeOf(join(dir, 'new.pem'))).toBe(0o600);
    expect(readdirSync(dir).sort()).toEqual(['new.pem', 'private.pem']);
  });

  it("a failure names the path: exit 1, or 2 when the path is the user's", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'file'), 'x');
    const path = join(dir, 'file', 'out.json');
    const e = await rejected(writeFileAtomic(path, '{}'));
    expect(e.message).toBe(`cannot write ${path}: a part of the path is a file, not a directory`);
    expect([e.code, e.exitCode]).toEqual(['ENOTDIR', 1]);
    const u = await rejected(writeFileAtomic(path, '{}', { fromUser: true }));
    expect([u.code, u.exitCode]).toEqual(['ENOTDIR', 2]);
    // Not "already exists": the file that stands in the path is not the target.
    const x = await rejected(writeFileAtomic(path, '{}', { exclusive: true }));
    expect([x.code, x.message]).toEqual(['ENOTDIR', e.message]);
    // A directory where the file should be: the temp file is removed again.
    const e2 = await rejected(writeFileAtomic(dir, 'x'));
    expect(e2.message).toBe(`cannot write ${dir}: it is a directory`);
    expect(readdirSync(dir)).toEqual(['file']);
  });
});

describe('readTextFile', () => {
  it('reads UTF-8 text', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'jwks.json'), 'é{}');
    expect(await readTextFile(join(dir, 'jwks.json'))).toBe('é{}');
  });

  it('a missing file is a usage error naming it and what it is, with the hint given', async () => {
    const path = join(tempDir(), 'nope.pem');
    const e = await rejected(readTextFile(path, 'private key', 'run `smart keygen`'));
    expect(e.message).toBe(`private key not found: ${path}`);
    expect([e.code, e.exitCode, e.hint]).toEqual(['ENOENT', 2, 'run `smart keygen`']);
    expect((await rejected(readTextFile(path))).message).toBe(`file not found: ${path}`);
  });

  it('a directory is one line naming it (exit 2: the path is the user’s)', async () => {
    const dir = tempDir();
    const e = await rejected(readTextFile(dir, 'JWKS'));
    expect(e.message).toBe(`cannot read ${dir}: it is a directory`);
    expect([e.code, e.exitCode]).toEqual(['EISDIR', 2]);
  });
});

describe('fileError', () => {
  const err = (code: string, message = `${code}: boom`) =>
    Object.assign(new Error(message), { code });

  it('ENOENT: not found, a usage error with the hint', () => {
    const e = fileError(err('ENOENT'), '/x/k.pem', 'write', 'key', 'make one');
    expect([e.message, e.kind, e.hint]).toEqual(['key not found: /x/k.pem', 'usage', 'make one']);
  });

  it('a known file-system code: its words; exit 1 for a write, 2 for a read', () => {
    const w = fileError(err('ENOSPC'), '/x/out', 'write');
    expect(w.message).toBe('cannot write /x/out: no space left on device');
    expect([w.code, w.exitCode]).toEqual(['ENOSPC', 1]);
    const r = fileError(err('EACCES'), '/x/in', 'read');
    expect(r.message).toBe('cannot read /x/in: permission denied');
    expect([r.code, r.exitCode]).toEqual(['EACCES', 2]);
    expect(fileError(err('EROFS'), '/x/out', 'write', 'file', undefined, true).exitCode).toBe(2);
  });

  it("anything else: cannot <op> <path>: Node's message", () => {
    const e = fileError(err('EWEIRD', 'something odd'), '/x/out', 'write');
    expect(e.message).toBe('cannot write /x/out: something odd');
    expect([e.code, e.exitCode]).toEqual(['EWEIRD', 1]);
    expect(fileError(new Error('odd'), '/x/in', 'read').exitCode).toBe(2);
  });
});
