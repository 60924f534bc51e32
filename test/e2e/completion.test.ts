import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { BIN, makeWorkspace, runSmart, type Workspace } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const onPath = (name: string) =>
  (process.env.PATH ?? '').split(delimiter).some((d) => d && existsSync(join(d, name)));

let dir: string;
let bashFile: string;
/** A directory holding a `smart` that runs this build, for the script's `smart config profiles`. */
let shimDir: string;

beforeAll(async () => {
  dir = tempDir('smart-completion-');
  shimDir = join(dir, 'bin');
  mkdirSync(shimDir);
  writeFileSync(join(shimDir, 'smart'), `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`);
  chmodSync(join(shimDir, 'smart'), 0o755);
  const r = await runSmart(['completion', 'bash']);
  expect(r.exitCode, r.stderr).toBe(0);
  bashFile = join(dir, 'smart.bash');
  writeFileSync(bashFile, r.stdout);
});

/** What the bash script offers for these words; the last one is the word under the cursor. */
async function complete(
  words: string[],
  ws?: Workspace,
  path = process.env.PATH,
): Promise<string[]> {
  const driver =
    'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _smart; ' +
    'printf "%s\\n" "${COMPREPLY[@]}"';
  const r = await execa('bash', ['-c', driver, 'bash', bashFile, ...words], {
    env: { PATH: path, ...(ws ?? makeWorkspace()).env },
    extendEnv: false,
    reject: false,
  });
  expect(r.stderr).toBe('');
  expect(r.exitCode).toBe(0);
  return r.stdout.split('\n').filter(Boolean);
}

describe('smart completion', () => {
  it('each script is valid for its shell', async () => {
    expect((await execa('bash', ['-n', bashFile], { reject: false })).exitCode).toBe(0);
    for (const [shell, check] of [
      ['zsh', ['-n']],
      ['fish', ['--no-execute']],
    ] as const) {
      const r = await runSmart(['completion', shell]);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout).toContain(shell === 'zsh' ? '#compdef smart' : 'complete -c smart');
      if (!onPath(shell)) continue; // checked where the shell is installed
      const file = join(dir, `smart.${shell}`);
      writeFileSync(file, r.stdout);
      const v = await execa(shell, [...check, file], { reject: false });
      expect(v.exitCode, v.stderr).toBe(0);
    }
  });

  it('completes commands: smart que<TAB> is query, and every command of --help is offered', async () => {
    expect(await complete(['smart', 'que'])).toEqual(['query']);
    const help = (await runSmart(['--help'])).stdout;
    const commands = [...help.split('\nCommands:\n')[1]!.matchAll(/^ {2}([a-z][a-z-]*)/gm)].map(
      (m) => m[1],
    );
    expect(commands).toContain('completion');
    expect((await complete(['smart', ''])).sort()).toEqual([...commands].sort());
  });

  it('completes subcommands, flags and their values', async () => {
    expect(await complete(['smart', 'config', 'ren'])).toEqual(['rename']);
    expect(await complete(['smart', 'query', 'Patient', '--a'])).toEqual(['--all', '--alg']);
    expect(await complete(['smart', '-o', ''])).toEqual(['table', 'json', 'ndjson', 'csv']);
    expect(await complete(['smart', 'query', '--output', '=', 'n'])).toEqual(['ndjson']);
    expect(await complete(['smart', 'keygen', '--alg', 'ES'])).toEqual(['ES384', 'ES256', 'ES512']);
    expect(await complete(['smart', '--alg', 'PS'])).toEqual(['PS256', 'PS384', 'PS512']);
    expect(await complete(['smart', 'query', 'Obs'])).toEqual(['Observation']);
    expect(await complete(['smart', '--json', 'query', 'Pat'])).toEqual(['Patient']);
    expect(await complete(['smart', 'config', 'set', 'client'])).toEqual(['clientId']);
    expect(await complete(['smart', 'help', 'reg'])).toEqual(['register-client']);
    expect(await complete(['smart', 'completion', ''])).toEqual(['bash', 'zsh', 'fish']);
  });

  it('completes profile names from the config file as it is at completion time', async () => {
    const ws = makeWorkspace();
    expect(await complete(['smart', '--profile', ''], ws)).toEqual([]);
    await runSmart(['config', 'use', 'staging', '--create'], { ws });
    await runSmart(
      ['init', '--profile', 'prod', '--base-url', 'http://localhost:8080', '--no-input'],
      {
        ws,
      },
    );
    expect(await complete(['smart', '--profile', ''], ws)).toEqual(['staging', 'prod']);
    expect(await complete(['smart', 'query', '--profile', 'st'], ws)).toEqual(['staging']);
    expect(await complete(['smart', 'config', 'use', ''], ws)).toEqual(['staging', 'prod']);
    await runSmart(['config', 'delete', 'staging', '--yes'], { ws });
    expect(await complete(['smart', '--profile', ''], ws)).toEqual(['prod']);
  });

  it('a config file laid out by hand is read by `smart config profiles --names`', async () => {
    const ws = makeWorkspace();
    mkdirSync(join(ws.config, 'smart'));
    writeFileSync(
      join(ws.config, 'smart', 'config.json'),
      '{"profiles":{"hand":{"baseUrl":"http://localhost:8080"},"made":{}}}',
    );
    const path = `${shimDir}${delimiter}${process.env.PATH}`;
    expect(await complete(['smart', '--profile', ''], ws, path)).toEqual(['hand', 'made']);
  });

  it('an unknown shell is a usage error', async () => {
    const r = await runSmart(['completion', 'csh']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.split('\n')[0]).toContain("'csh'");
  });
});
