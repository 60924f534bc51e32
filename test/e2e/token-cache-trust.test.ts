import { chmodSync, chownSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeWorkspace, runSmart, type Workspace } from '../helpers/cli.js';
import { startHostile, type HostileServer } from '../helpers/hostile.js';

/**
 * Token cache trust (issue 11 item 5): whoever can write the cache chooses the bearer token, so
 * an entry that others could have written, or that was recorded for another request, is never
 * used. The fixture server counts the token requests.
 */

let h: HostileServer;
beforeAll(async () => {
  h = await startHostile();
});
afterAll(() => h?.close());

const tokenPosts = () => h.hits.filter((x) => x.startsWith('POST /token')).length;

async function token(ws: Workspace, env: Record<string, string> = {}) {
  return runSmart(['token', '-o', 'json'], { ws, env: { ...h.env, ...env } });
}

/** A workspace with one cached token; returns the cache entry's path. */
async function warmCache(): Promise<{ ws: Workspace; file: string; dir: string }> {
  const ws = makeWorkspace();
  const r = await token(ws);
  expect(r.exitCode, r.stderr).toBe(0);
  const dir = join(ws.cache, 'smart', 'tokens');
  const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
  expect(files).toHaveLength(1);
  const file = join(dir, files[0]!);
  // Warm: the next run asks nothing.
  const before = tokenPosts();
  const warm = await token(ws);
  expect(JSON.parse(warm.stdout).from_cache).toBe(true);
  expect(tokenPosts()).toBe(before);
  return { ws, file, dir };
}

/** The run asked the server for a new token, said why in one warning line, and cached it safely. */
async function expectIgnored(ws: Workspace, file: string, warning: RegExp) {
  const before = tokenPosts();
  const r = await token(ws);
  expect(r.exitCode, r.stderr).toBe(0);
  expect(JSON.parse(r.stdout).from_cache).toBe(false);
  expect(tokenPosts()).toBe(before + 1);
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(warning);
  // Written again safely: ours, 0600, in a 0700 directory; the next run trusts it.
  const st = statSync(file);
  expect(st.mode & 0o777).toBe(0o600);
  if (process.getuid) expect(st.uid).toBe(process.getuid());
  expect(statSync(join(file, '..')).mode & 0o077).toBe(0);
  const again = await token(ws);
  expect(JSON.parse(again.stdout).from_cache).toBe(true);
  expect(again.stderr).toBe('');
}

describe('token cache trust', () => {
  it('a cache file of mode 0644 is ignored with one warning naming it', async () => {
    const { ws, file } = await warmCache();
    chmodSync(file, 0o644);
    await expectIgnored(
      ws,
      file,
      new RegExp(`^warning: ignoring the cache ${file}: its mode 0644 lets other users`),
    );
  });

  it('a cache file of mode 0666 is ignored too', async () => {
    const { ws, file } = await warmCache();
    chmodSync(file, 0o666);
    await expectIgnored(ws, file, /its mode 0666 lets other users read or change it/);
  });

  it('a cache directory that others can write is ignored, then made 0700', async () => {
    const { ws, file, dir } = await warmCache();
    chmodSync(dir, 0o777);
    await expectIgnored(
      ws,
      file,
      new RegExp(`^warning: ignoring the cache ${dir}: the directory is writable by other users`),
    );
  });

  it.runIf(process.getuid?.() === 0)(
    'a cache file owned by another user is ignored (as root: chown to 65534)',
    async () => {
      const { ws, file } = await warmCache();
      chownSync(file, 65534, 65534);
      await expectIgnored(ws, file, /it is owned by another user \(uid 65534\)/);
    },
  );

  it('an entry recorded for another token URL, client id or scope is not used', async () => {
    const { ws, file } = await warmCache();
    const entry = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    for (const [k, v] of [
      ['tokenUrl', 'http://127.0.0.1:1/elsewhere'],
      ['clientId', 'someone-else'],
      ['requestedScope', 'system/*.*'],
    ] as const) {
      writeFileSync(file, JSON.stringify({ ...entry, [k]: v, accessToken: 'planted' }), {
        mode: 0o600,
      });
      const before = tokenPosts();
      const r = await token(ws);
      expect(r.exitCode, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout) as { access_token: string; from_cache: boolean };
      expect(out.from_cache, k).toBe(false);
      expect(out.access_token).toBe('hostile-token');
      expect(tokenPosts(), k).toBe(before + 1);
    }
  });

  it('a JWT access token is not reused after its own exp, whatever expires_in said', async () => {
    const ws = makeWorkspace();
    const env = { SMART_TOKEN_URL: `${h.url}/token-jwt-expired` };
    const before = tokenPosts();
    const first = await token(ws, env);
    expect(first.exitCode, first.stderr).toBe(0);
    const second = await token(ws, env);
    expect(second.exitCode, second.stderr).toBe(0);
    expect(JSON.parse(second.stdout).from_cache).toBe(false);
    expect(tokenPosts()).toBe(before + 2);
    // expires_at reports the token's own exp, not issue time + 300 s.
    const { expires_at } = JSON.parse(second.stdout) as { expires_at: string };
    expect(Date.parse(expires_at)).toBeLessThan(Date.now());
  });
});
