import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../../../src/program.js';
import { startSandbox, type SandboxHandle } from '../../../src/sandbox/index.js';
import { tempDir } from '../../helpers/tmp.js';

const SECRET = 'unit-admin-secret-z8';
let sandbox: SandboxHandle;
beforeAll(async () => {
  sandbox = await startSandbox({ port: 0, adminSecret: SECRET });
});
afterAll(async () => {
  await sandbox?.close();
});

/** Run smart with stdin and stderr on a terminal; `reply` is typed once `question` shows. */
async function onTerminal(home: string, argv: string[], question?: string, reply = '') {
  const stdin = Object.assign(new PassThrough(), { isTTY: true });
  // Like process.stderr, which the prompt's end() leaves open.
  const stderr = Object.assign(new PassThrough(), { isTTY: true, columns: 80 });
  stderr.end = (() => stderr) as never;
  let err = '';
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  const timer = setInterval(() => {
    if (question && err.includes(question)) {
      clearInterval(timer);
      stdin.write(reply);
    }
  }, 20);
  const code = await run({
    argv,
    io: { stdin, stderr, stdout: new PassThrough() },
    env: { HOME: home, XDG_CONFIG_HOME: home, SMART_ADMIN_SECRET: SECRET, NO_COLOR: '1' },
    cwd: home,
  });
  clearInterval(timer);
  return { code, err };
}

const clientIdOf = (home: string) =>
  (
    JSON.parse(readFileSync(join(home, 'smart', 'config.json'), 'utf8')) as {
      profiles: Record<string, { clientId?: string }>;
    }
  ).profiles.default!.clientId;

describe('unregister-client on a terminal', () => {
  it.each([
    ['\n', undefined, 'cleared clientId in profile "default"'],
    ['n\n', 'tty-gone', 'kept clientId tty-gone in profile "default"'],
  ])('offers to clear the profile client id (reply %j)', async (reply, left, said) => {
    const home = tempDir('unregister-forget-');
    const base = ['--base-url', sandbox.url];
    const reg = await onTerminal(home, [
      'register-client',
      'tty-gone',
      '--jwks-uri',
      'https://keys.example.org/jwks.json',
      '--no-check',
      ...base,
    ]);
    expect(reg.code, reg.err).toBe(0);
    expect(clientIdOf(home)).toBe('tty-gone');
    const un = await onTerminal(
      home,
      ['unregister-client', 'tty-gone', ...base],
      'Clear it?',
      reply,
    );
    expect(un.code, un.err).toBe(0);
    expect(un.err).toContain('Profile "default" still has clientId tty-gone. Clear it?');
    expect(un.err).toContain(said);
    expect(clientIdOf(home)).toBe(left);
  });
});
