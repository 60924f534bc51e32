import { execa } from 'execa';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startBulkStub } from '../helpers/bulk-stub.js';
import { BIN, ROOT, makeWorkspace, runSmart, smart } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

// The built CLI runs from dist/bundle/ with V8's code cache under $XDG_CACHE_HOME/smart/v8/
// (src/compile-cache.ts). What a user can see of it: the files, and that output never changes.

const modeOf = (p: string) => statSync(p).mode & 0o777;
const ARGS = ['config', 'list', '-o', 'json'];

function entries(cache: string): Map<string, Buffer> {
  const dir = join(cache, 'smart', 'v8', `${process.version}-${process.arch}`);
  if (!existsSync(dir)) return new Map();
  return new Map(readdirSync(dir).map((name) => [name, readFileSync(join(dir, name))]));
}

/** The names of the entries written so far (while a run may be writing: no temp files). */
function entryNames(cache: string): string[] {
  const dir = join(cache, 'smart', 'v8', `${process.version}-${process.arch}`);
  return existsSync(dir) ? readdirSync(dir).filter((n) => n.endsWith('.v8')) : [];
}

describe('the code cache of the built CLI', () => {
  it('is written by the first run (0600, in 0700 dirs), taken as is by the next, and changes no output', async () => {
    const ws = makeWorkspace();
    const first = await smart(ARGS, { ws });
    expect(first.exitCode).toBe(0);
    expect(first.stderr).toBe('');
    const written = entries(ws.cache);
    expect(written.size).toBeGreaterThan(0);
    const chunks = new Set(readdirSync(join(ROOT, 'dist', 'bundle')));
    const hashes = JSON.parse(
      readFileSync(join(ROOT, 'dist', 'bundle', 'hashes.json'), 'utf8'),
    ) as Record<string, string>;
    for (const name of written.keys()) {
      const [, chunk, hash] = /^(.+\.cjs)\.([\w-]{16})\.v8$/.exec(name) ?? [];
      expect(chunks.has(chunk!)).toBe(true);
      expect(hashes[chunk!]).toBe(hash);
    }
    const dir = join(ws.cache, 'smart', 'v8', `${process.version}-${process.arch}`);
    expect(modeOf(join(dir, [...written.keys()][0]!))).toBe(0o600);
    expect(modeOf(dir)).toBe(0o700);
    expect(modeOf(join(ws.cache, 'smart', 'v8'))).toBe(0o700);

    const second = await smart(ARGS, { ws });
    expect(second).toEqual(first);
    expect(entries(ws.cache)).toEqual(written);
    // The same answer as the sources give in-process.
    expect(second).toEqual(await runSmart(ARGS, { ws }));
  });

  it('a damaged entry is refused by V8 and written anew; the run is the same', async () => {
    const ws = makeWorkspace();
    const first = await smart(ARGS, { ws });
    const dir = join(ws.cache, 'smart', 'v8', `${process.version}-${process.arch}`);
    const written = entries(ws.cache);
    for (const name of written.keys()) writeFileSync(join(dir, name), 'damaged', { mode: 0o600 });
    expect(await smart(ARGS, { ws })).toEqual(first);
    const rewritten = entries(ws.cache);
    expect([...rewritten.keys()]).toEqual([...written.keys()]);
    for (const bytes of rewritten.values()) expect(bytes.toString('latin1')).not.toBe('damaged');
  });

  it('NODE_DISABLE_COMPILE_CACHE turns it off', async () => {
    const ws = makeWorkspace();
    const r = await smart(ARGS, { ws, env: { NODE_DISABLE_COMPILE_CACHE: '1' } });
    expect(r.exitCode).toBe(0);
    expect(existsSync(join(ws.cache, 'smart', 'v8'))).toBe(false);
  });

  // A long transfer changes V8 flags (src/cli.cts, leanMemory), after which V8 would refuse any
  // entry made: the entries of the chunks run so far are written just before.
  it('a long export writes its entries before it changes V8 flags, in the middle of the transfer', async () => {
    const ws = makeWorkspace();
    const line = (i: number) => `{"resourceType":"Patient","id":"p${i}","gender":"unknown"}\n`;
    const body = Buffer.from(Array.from({ length: 100_000 }, (_, i) => line(i)).join(''));
    // 4 MB sent, then nothing: the transfer is held while its buffers are outstanding.
    const at = 4 * 1024 * 1024;
    const stub = await startBulkStub(ws, {
      files: { 'big.ndjson': { body, stall: { 1: at } } },
    });
    const dir = join(tempDir('smart-export-cache-'), 'out');
    let child: ReturnType<typeof execa> | undefined;
    try {
      child = execa(process.execPath, [BIN, 'export', '--out', dir], {
        env: { PATH: process.env.PATH, NO_COLOR: '1', ...ws.env, ...stub.env },
        extendEnv: false,
        reject: false,
        cwd: ws.home,
        stdin: 'ignore',
        timeout: 60_000,
      });
      const exportEntries = () => entryNames(ws.cache).filter((n) => n.startsWith('export-'));
      // Observed, not timed: the entries appear while the transfer is held (a short poll with a
      // deadline; nothing the child prints says when).
      const deadline = Date.now() + 20_000;
      while (exportEntries().length === 0) {
        if (child.exitCode !== null) throw new Error('the export ended early');
        if (Date.now() > deadline) throw new Error('no entry for the export chunks was written');
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(child.exitCode).toBeNull();
      const names = entryNames(ws.cache);
      expect(names.some((n) => n.startsWith('main.cjs.'))).toBe(true);
      expect(names.some((n) => n.startsWith('base-'))).toBe(true);
      child.kill('SIGINT');
      expect((await child).exitCode).toBe(130);
    } finally {
      if (child?.exitCode === null) child.kill('SIGKILL');
      await stub.close();
    }
  });
});
