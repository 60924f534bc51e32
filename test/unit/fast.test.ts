import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/program.js';
import { fastRun, plainCommandLine } from '../../src/fast.js';
import { plainInvocation } from '../../src/fast-run.js';
import { quietContext } from '../helpers/context.js';

// The command lines src/fast.ts serves without Commander must get exactly what Commander would
// give the action: the same global options and the same arguments. Each line below is parsed
// by the real program (stopped just before its action) and by the fast path, side by side.

class Stopped extends Error {}

/** What Commander hands the action of `argv`, or the error it stops with. */
async function commander(argv: string[]) {
  const program = await buildProgram(quietContext(), argv);
  let seen: { globals: object; args: unknown[]; opts: object; words: string[] } | undefined;
  program.hook('preAction', (_root, action) => {
    seen = {
      globals: action.optsWithGlobals(),
      args: action.processedArgs,
      opts: action.opts(),
      words: action.args,
    };
    throw new Stopped();
  });
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (!(e instanceof Stopped)) return { error: (e as Error).message };
  }
  return seen;
}

/** The same, from the fast path. */
async function fast(argv: string[]) {
  const line = plainCommandLine(argv);
  const call = line && (await plainInvocation(line));
  if (!call) return undefined;
  if (call.command === 'query') {
    return {
      globals: call.globals,
      args: [call.target, call.params],
      opts: call.opts,
      words: [call.target, ...call.params],
    };
  }
  return { globals: call.globals, args: [call.words[0]], opts: call.opts, words: call.words };
}

const SERVED = [
  ['query', 'Observation'],
  ['query', 'Observation', 'code=4548-4', '-o', 'json'],
  ['query', 'Observation', 'code=4548-4', 'date=ge2020', '--json'],
  ['query', 'Patient/123'],
  ['query', 'Observation?code=4548-4&_count=2', '--output', 'ndjson'],
  ['query', 'Observation', '--output=csv'],
  ['query', '-o', 'table', 'Patient'],
  ['query', 'Observation', '--json', '-o', 'csv'],
  ['query', 'help'],
  ['api', '/Patient'],
  ['api', 'metadata', '-o', 'json'],
  ['api', 'GET', '/metadata'],
  ['api', 'a', 'b', 'c'],
  ['api', 'Patient?_summary=count', '--json'],
];

describe('a plain command line without Commander', () => {
  it.each(SERVED)('%s %s ...: the options and arguments Commander gives', async (...argv) => {
    const expected = await commander(argv);
    expect(expected).toBeDefined();
    expect(expected).not.toHaveProperty('error');
    expect(await fast(argv)).toEqual(expected);
    expect(fastRun(argv)).toBeTypeOf('function');
  });

  it('is left to Commander when it holds anything else', async () => {
    for (const argv of [
      [],
      ['query'],
      ['api'],
      ['query', '-o', 'json'],
      ['token', '--no-cache'],
      ['export', 'Patient'],
      ['query', 'Observation', '--all'],
      ['query', 'Observation', '-x'],
      ['query', 'Observation', '-ojson'],
      ['query', 'Observation', '-o'],
      ['query', 'Observation', '-o', 'json', '-o', 'csv'],
      ['query', 'Observation', '--json', '--json'],
      ['query', 'Observation', '--', '-x'],
      ['api', '/Patient', '-X', 'POST'],
      ['api', '/Patient', '-i'],
      ['--json', 'query', 'Observation'],
      ['--profile', 'p', 'api', '/Patient'],
    ]) {
      expect(plainCommandLine(argv), argv.join(' ')).toBeUndefined();
    }
    expect(fastRun(['query', 'Observation', '--all'])).toBeUndefined();
  });

  it('goes to Commander, for its error, with an output format Commander refuses', async () => {
    const argv = ['query', 'Observation', '-o', 'yaml'];
    expect(plainCommandLine(argv)).toEqual({
      command: 'query',
      words: ['Observation'],
      output: 'yaml',
    });
    expect(await plainInvocation(plainCommandLine(argv)!)).toBeUndefined();
    expect(await commander(argv)).toEqual({
      error: expect.stringContaining("argument 'yaml' is invalid"),
    });
  });
});
