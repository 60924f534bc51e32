import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { run } from '../../../src/program.js';
import { ROOT } from '../../helpers/cli.js';

describe('prerendered smart --help (dist/help.txt)', () => {
  it('is exactly what the program renders', async () => {
    const stdout = new PassThrough();
    let live = '';
    stdout.on('data', (d: Buffer) => (live += d.toString()));
    const code = await run({
      argv: ['--help'],
      io: { stdout, stderr: new PassThrough(), stdin: new PassThrough() },
      env: {},
      cwd: ROOT,
    });
    expect(code).toBe(0);
    expect(readFileSync(join(ROOT, 'dist', 'help.txt'), 'utf8')).toBe(live);
  });
});
