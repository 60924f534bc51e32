import { describe, expect, it } from 'vitest';
import { Help } from 'commander';
import { buildProgram, run, targetCommand } from '../../../src/program.js';
import { commandManifest } from '../../../src/commands/index.js';
import { quietContext } from '../../helpers/context.js';

describe('command manifest', () => {
  it('lists every command with the term and description the command itself declares', async () => {
    const program = await buildProgram(quietContext());
    const help = new Help();
    const real = program.commands
      .filter((c) => c.name() !== 'help')
      .map((c) => ({ name: c.name(), term: help.subcommandTerm(c), description: c.description() }));
    expect(
      commandManifest.map(({ name, term, description }) => ({ name, term, description })),
    ).toEqual(real);
  });

  it('loads only the command that runs', async () => {
    const program = await buildProgram(quietContext(), ['--json', 'token', '--no-cache']);
    const token = program.commands.find((c) => c.name() === 'token')!;
    const query = program.commands.find((c) => c.name() === 'query')!;
    expect(token.options.map((o) => o.long)).toContain('--no-cache');
    expect(query.options).toHaveLength(0);
  });

  it('finds the command after global options and their values', () => {
    const p = new (class {
      options = [
        { long: '--profile', required: true },
        { long: '--output', short: '-o', required: true },
        { long: '--json' },
      ];
    })() as never;
    expect(targetCommand(p, ['--profile', 'x', '-o', 'json', 'query', 'Patient'])).toBe('query');
    expect(targetCommand(p, ['--profile=x', '--json', 'token'])).toBe('token');
    expect(targetCommand(p, ['help', 'export'])).toBe('export');
    expect(targetCommand(p, ['--help'])).toBeUndefined();
    expect(targetCommand(p, ['--', 'decode', '-'])).toBe('decode');
  });

  it('an unknown command is one line with a suggestion, exit 2', async () => {
    const ctx = quietContext();
    let err = '';
    ctx.io.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await run({ argv: ['tokne'], io: ctx.io, env: {}, cwd: process.cwd() });
    expect(code).toBe(2);
    expect(err.split('\n')[0]).toBe("error: unknown command 'tokne' (did you mean token?)");
  });
});
