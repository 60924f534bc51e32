import { PassThrough } from 'node:stream';
import { describe, expect, test } from 'vitest';
import type { Context } from '../../../src/context.js';
import { SmartError } from '../../../src/core/errors.js';
import { printError } from '../../../src/program.js';

const JWT = 'eyJhbGciOiJSUzM4NCJ9.eyJzdWIiOiJsZWFrIn0.bGVha2VkLXNpZ25hdHVyZS12YWx1ZQ';

function ctxWith(debug: boolean) {
  const stderr = new PassThrough();
  let err = '';
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  const ctx = { io: { stderr }, globals: { debug } } as unknown as Context;
  return { ctx, stderr: () => err };
}

describe('printError', () => {
  test('error and hint lines, the kind exit code, no stack without --debug', () => {
    const { ctx, stderr } = ctxWith(false);
    const code = printError(
      ctx,
      new SmartError('network', 'cannot connect to h:1', { hint: 'start it' }),
    );
    expect(code).toBe(4);
    expect(stderr()).toBe('error: cannot connect to h:1\nhint: start it\n');
  });

  test('--debug prints the stack and cause chain, with any token in them redacted', () => {
    const { ctx, stderr } = ctxWith(true);
    const inner = new SyntaxError(`Unexpected token in JSON: {"access_token":"${JWT}"`);
    const outer = new Error(`request failed: Authorization: Bearer ${JWT}`, { cause: inner });
    printError(ctx, new SmartError('http', 'token response is not JSON', { cause: outer }));
    const out = stderr();
    expect(out).toContain('caused by: Error: request failed: Authorization: Bearer [redacted JWT]');
    expect(out).toContain(
      'caused by: SyntaxError: Unexpected token in JSON: {"access_token":"[redacted JWT]"',
    );
    expect(out).not.toContain(JWT);
    expect(out).not.toContain('bGVha2VkLXNpZ25hdHVyZS12YWx1ZQ');
  });
});
