import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeWorkspace, runSmart, type RunResult, type Workspace } from '../helpers/cli.js';
import { startHostile, type HostileServer } from '../helpers/hostile.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * Files the environment will not let smart read or write (issue 11 item 8): one line naming the
 * operation and the path, a hint, exit 1 (exit 2 for a path from the user's flag), never a
 * stack or exit 70. The tests run as root, where chmod stops nothing: a file where a directory
 * should be (ENOTDIR), a directory where a file should be (EISDIR), /sys (EPERM or EROFS: no
 * one may create files there), and, where mounting is allowed, a full or read-only tmpfs.
 */

/** One error line, one hint line, no stack. */
function expectOneLine(r: RunResult, code: number, error: RegExp) {
  expect(r.exitCode, r.stderr).toBe(code);
  const lines = r.stderr.trimEnd().split('\n');
  const errors = lines.filter((l) => l.startsWith('error: '));
  expect(errors, r.stderr).toHaveLength(1);
  expect(errors[0]).toMatch(error);
  expect(
    lines.filter((l) => !/^(error|hint|warning): |^wrote /.test(l)),
    r.stderr,
  ).toEqual([]);
  expect(r.stderr).not.toMatch(/\n\s+at |unexpected error/);
}

/** A config dir below a regular file: every path in it is ENOTDIR. */
function blockedConfig(ws: Workspace): string {
  const file = join(ws.home, 'not-a-dir');
  writeFileSync(file, 'x');
  return join(file, 'config');
}

const SYS = '/sys/smart-test-no-such-dir';

describe('filesystem errors are not bugs', () => {
  it('init and config set with a config dir under a file: one line, exit 1', async () => {
    const ws = makeWorkspace();
    const env = { XDG_CONFIG_HOME: blockedConfig(ws) };
    const init = await runSmart(
      ['init', '--no-input', '--base-url', 'http://127.0.0.1:9', '--client-id', 'c'],
      { ws, env },
    );
    expectOneLine(
      init,
      1,
      /^error: cannot read config file .*not-a-dir\/config\/smart\/config\.json: a part of the path is a file, not a directory$/,
    );
    expect(init.stderr).toMatch(/^hint: fix the path/m);
    const set = await runSmart(['config', 'set', 'scope', 'system/*.read'], { ws, env });
    expectOneLine(set, 1, /^error: cannot read config file .*: a part of the path is a file/);
  });

  it('init and config set where the config dir cannot be created (/sys): one line, exit 1', async () => {
    const ws = makeWorkspace();
    const env = { XDG_CONFIG_HOME: SYS };
    const set = await runSmart(['config', 'set', 'scope', 'system/*.read'], { ws, env });
    expectOneLine(
      set,
      1,
      new RegExp(
        `^error: cannot write ${SYS}/smart/config\\.json: (operation not permitted|read-only file system|permission denied)$`,
      ),
    );
    const init = await runSmart(
      ['init', '--no-input', '--base-url', 'http://127.0.0.1:9', '--client-id', 'c'],
      { ws, env },
    );
    expectOneLine(init, 1, new RegExp(`^error: cannot write ${SYS}/smart/config\\.json: `));
    expect(existsSync(SYS)).toBe(false);
  });

  it('a directory where config.json should be (EISDIR): one line, exit 1', async () => {
    const ws = makeWorkspace();
    mkdirSync(join(ws.config, 'smart', 'config.json'), { recursive: true });
    const r = await runSmart(['config', 'list'], { ws });
    expectOneLine(r, 1, /^error: cannot read config file .*config\.json: it is a directory$/);
  });

  it('keygen that wrote the key pair but cannot save the profile says so, and how to use it', async () => {
    const ws = makeWorkspace();
    const keys = join(ws.home, 'keys');
    const r = await runSmart(['keygen', '--alg', 'ES384', '--dir', keys], {
      ws,
      env: { XDG_CONFIG_HOME: SYS },
    });
    const written = readdirSync(keys);
    const pem = written.find((f) => f.endsWith('.pem'));
    expect(pem).toBeDefined();
    expect(written).toContain('jwks.json');
    const key = join(keys, pem!);
    expectOneLine(
      r,
      1,
      new RegExp(
        `^error: the key pair is written \\(${key}, ${join(keys, 'jwks.json')}\\) but profile "default" was not saved: cannot write ${SYS}/smart/config\\.json: `,
      ),
    );
    expect(r.stderr).toContain(`hint: use the key with --key ${key}`);
  });

  it('keygen --dir that cannot be created is exit 2 (the path is the user’s); the default dir exit 1', async () => {
    const ws = makeWorkspace();
    const flag = await runSmart(['keygen', '--dir', join(blockedConfig(ws), 'keys')], { ws });
    expectOneLine(
      flag,
      2,
      /^error: cannot (read|create the directory) .*not-a-dir\/config\/keys.*: a part of the path is a file/,
    );
    const byDefault = await runSmart(['keygen'], { ws, env: { XDG_CONFIG_HOME: SYS } });
    expectOneLine(byDefault, 1, new RegExp(`^error: cannot create the directory ${SYS}`));
  });

  it('jwks add --file under a regular file is exit 2', async () => {
    const ws = makeWorkspace();
    const keys = join(ws.home, 'keys');
    expect(
      (await runSmart(['keygen', '--no-save', '--alg', 'ES384', '--dir', keys], { ws })).exitCode,
    ).toBe(0);
    const pem = join(
      keys,
      readdirSync(keys).find((f) => f.endsWith('.pem'))!,
    );
    const r = await runSmart(['jwks', 'add', pem, '--file', join(blockedConfig(ws), 'jwks.json')], {
      ws,
    });
    expectOneLine(
      r,
      2,
      /^error: cannot read .*not-a-dir\/config\/jwks\.json: a part of the path is a file/,
    );
  });

  describe('a token cache that cannot be written', () => {
    let h: HostileServer;
    beforeAll(async () => {
      h = await startHostile();
    });
    afterAll(() => h?.close());

    it('is one warning; the token is still printed (exit 0)', async () => {
      const ws = makeWorkspace();
      const r = await runSmart(['token'], {
        ws,
        env: { ...h.env, XDG_CACHE_HOME: blockedConfig(ws) },
      });
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe('hostile-token');
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(
        /^warning: cannot (write|create the directory) .*not-a-dir\/config\/smart.*: a part of the path is a file, not a directory \(not cached; the run goes on\)$/,
      );
    });
  });

  /** A tmpfs of 64 KiB, full or read-only: only where this process may mount (root in a VM or CI). */
  function tryMount(options: string): string | undefined {
    const dir = tempDir('smart-mount-');
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir], { stdio: 'ignore' });
      return dir;
    } catch {
      return undefined;
    }
  }
  function unmount(dir: string) {
    execFileSync('umount', [dir], { stdio: 'ignore' });
  }
  const canMount = (() => {
    if (process.getuid?.() !== 0) return false;
    const d = tryMount('size=64k');
    if (!d) return false;
    unmount(d);
    rmdirSync(d);
    return true;
  })();

  it.runIf(canMount)(
    'a full disk (ENOSPC) and a read-only one (EROFS): one line, exit 1 or 2',
    async () => {
      const full = tryMount('size=64k')!;
      const ro = tryMount('size=64k,ro')!;
      try {
        // Fill the tmpfs to the last byte.
        try {
          writeFileSync(join(full, 'filler'), Buffer.alloc(1024 * 1024));
        } catch {
          // ENOSPC: it is full now
        }
        const ws = makeWorkspace();
        const nospace = await runSmart(['config', 'set', 'scope', 'system/*.read'], {
          ws,
          env: { XDG_CONFIG_HOME: full },
        });
        expectOneLine(
          nospace,
          1,
          new RegExp(
            `^error: cannot (write|create the directory) ${full}.*: no space left on device$`,
          ),
        );
        expect(nospace.stderr).toContain('hint: free some space');
        const readOnly = await runSmart(['keygen', '--no-save', '--dir', join(ro, 'keys')], { ws });
        expectOneLine(
          readOnly,
          2,
          new RegExp(`^error: cannot create the directory ${ro}/keys: read-only file system$`),
        );
      } finally {
        unmount(full);
        unmount(ro);
      }
    },
  );
});
