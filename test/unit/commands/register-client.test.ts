import { describe, expect, test } from 'vitest';
import { PassThrough } from 'node:stream';
import type { Context } from '../../../src/context.js';
import { adminSecret, describeRequests } from '../../../src/commands/register-client.js';

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

test('describeRequests: PUT <url> then the pretty body', () => {
  expect(
    describeRequests([
      { method: 'PUT', resourceType: 'Client', id: 'c', url: 'http://x/Client/c', body: { a: 1 } },
      { method: 'DELETE', resourceType: 'Client', id: 'c', url: 'http://x/Client/c' },
    ]),
  ).toBe('PUT http://x/Client/c\n{\n  "a": 1\n}\n\nDELETE http://x/Client/c\n');
});
