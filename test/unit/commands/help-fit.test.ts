import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { Command } from 'commander';
import { buildProgram, run } from '../../../src/program.js';
import { ROOT } from '../../helpers/cli.js';
import { quietContext } from '../../helpers/context.js';

/** Every command path of the full program: [], ['query'], ['config', 'set'], ... */
function commandPaths(cmd: Command, prefix: string[] = []): string[][] {
  const out: string[][] = [prefix];
  for (const sub of cmd.commands) {
    if (sub.name() === 'help') continue;
    out.push(...commandPaths(sub, [...prefix, sub.name()]));
  }
  return out;
}

async function helpOf(path: string[]): Promise<{ code: number; text: string }> {
  const stdout = new PassThrough();
  let text = '';
  stdout.on('data', (d: Buffer) => (text += d.toString()));
  const code = await run({
    argv: [...path, '--help'],
    io: { stdout, stderr: new PassThrough(), stdin: new PassThrough() },
    env: {},
    cwd: ROOT,
  });
  return { code, text };
}

describe('help fits', () => {
  it('no help line of any command is wider than 100 columns', async () => {
    const paths = commandPaths(await buildProgram(quietContext()));
    // The walk sees the real program: groups and their subcommands.
    expect(paths.map((p) => p.join(' '))).toEqual(
      expect.arrayContaining(['', 'query', 'config set', 'jwks serve', 'export cancel']),
    );
    const wide: string[] = [];
    for (const path of paths) {
      const { code, text } = await helpOf(path);
      expect(code, path.join(' ')).toBe(0);
      expect(text, path.join(' ')).toMatch(/^Usage: smart/);
      for (const line of text.split('\n')) {
        if (line.length > 100) wide.push(`smart ${path.join(' ')} --help: ${line.length}: ${line}`);
      }
    }
    expect(wide).toEqual([]);
  });

  it('smart --help lists every exit code the README documents', async () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const section = readme.split(/^## Exit codes$/m)[1]!.split(/^## /m)[0]!;
    const codes = [...section.matchAll(/^\| (\d+) \|/gm)].map((m) => m[1]!);
    expect(codes).toEqual(expect.arrayContaining(['0', '1', '2', '3', '4', '70', '130']));
    const { text } = await helpOf([]);
    const listed = text.split(/^Exit codes:/m)[1] ?? '';
    for (const code of codes)
      expect(listed, `exit code ${code}`).toMatch(new RegExp(`\\b${code} `));
  });
});
