import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { PassThrough } from 'node:stream';
import { run } from '../../../src/program.js';
import { startSandbox, type SandboxHandle } from '../../../src/sandbox/index.js';
import type { Context } from '../../../src/context.js';
import { adminSecret } from '../../../src/commands/shared.js';
import { tempDir } from '../../helpers/tmp.js';

function ctxWith(interactive: boolean) {
  const stdin = Object.assign(new PassThrough(), { isTTY: interactive });
  const stderr = Object.assign(new PassThrough(), { isTTY: interactive, columns: 80 });
  let err = '';
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  const ctx = {
    io: { stdin, stderr, stdout: new PassThrough() },
    interactive: () => interactive,
  } as unknown as Context;
  return { ctx, stdin, stderr: () => err };
}

describe('adminSecret', () => {
  test('the environment wins, no prompt', async () => {
    const { ctx } = ctxWith(true);
    expect(await adminSecret(ctx, 'from-env', 'root', 'http://x')).toBe('from-env');
  });

  test('no terminal: a usage error naming SMART_ADMIN_SECRET', async () => {
    const { ctx } = ctxWith(false);
    await expect(adminSecret(ctx, undefined, 'root', 'http://x')).rejects.toMatchObject({
      kind: 'usage',
      code: 'missing_admin_secret',
      hint: expect.stringContaining('SMART_ADMIN_SECRET'),
    });
  });

  test('a terminal: a masked prompt on stderr; the secret is never echoed', async () => {
    const { ctx, stdin, stderr } = ctxWith(true);
    const answer = adminSecret(ctx, undefined, 'root', 'http://aidbox:8080');
    // Type once the prompt is drawn (inquirer is imported lazily).
    const timer = setInterval(() => {
      if (stderr().includes('Admin secret')) {
        clearInterval(timer);
        stdin.write('hunter2\n');
      }
    }, 20);
    expect(await answer).toBe('hunter2');
    expect(stderr()).toContain('Admin secret for root at http://aidbox:8080');
    expect(stderr()).not.toContain('hunter2');
  });
});

describe('register-client through the whole program, stdin a terminal', () => {
  const SECRET = 'typed-admin-secret-41';
  let sandbox: SandboxHandle;
  beforeAll(async () => {
    sandbox = await startSandbox({ port: 0, adminSecret: SECRET });
  });
  afterAll(async () => {
    await sandbox?.close();
  });

  function terminal() {
    const stdin = Object.assign(new PassThrough(), { isTTY: true });
    const stdout = Object.assign(new PassThrough(), { isTTY: false });
    const stderr = Object.assign(new PassThrough(), { isTTY: true, columns: 80 });
    const text = { out: '', err: '' };
    stdout.on('data', (c: Buffer) => (text.out += c.toString()));
    stderr.on('data', (c: Buffer) => (text.err += c.toString()));
    const home = tempDir('register-tty-');
    return { io: { stdin, stdout, stderr }, text, env: { HOME: home }, cwd: home };
  }
  const args = (id: string) => [
    'register-client',
    id,
    '--jwks-uri',
    'https://keys.example.org/jwks.json',
    '--no-check',
    '--base-url',
    sandbox.url,
  ];

  test('--no-input: no prompt, exit 2 naming SMART_ADMIN_SECRET, nothing sent', async () => {
    const t = terminal();
    const before = sandbox.requests.length;
    const code = await run({ argv: [...args('tty-a'), '--no-input'], ...t });
    expect(code).toBe(2);
    expect(t.text.err).toContain(`error: no admin secret for "root" at ${sandbox.url}`);
    expect(t.text.err).toContain('SMART_ADMIN_SECRET');
    expect(t.text.err).not.toContain('Admin secret for');
    expect(sandbox.requests.length).toBe(before);
  });

  test('without --no-input: the masked prompt; the typed secret is used and never shown', async () => {
    const t = terminal();
    const timer = setInterval(() => {
      if (t.text.err.includes('Admin secret for root')) {
        clearInterval(timer);
        t.io.stdin.write(`${SECRET}\n`);
      }
    }, 20);
    const code = await run({ argv: [...args('tty-b'), '-o', 'json'], ...t });
    clearInterval(timer);
    expect(code, t.text.err).toBe(0);
    expect(JSON.parse(t.text.out)).toMatchObject({
      client: { result: 'created' },
      accessPolicy: { result: 'created' },
    });
    expect(t.text.err + t.text.out).not.toContain(SECRET);
  });
});
