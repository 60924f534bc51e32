import { describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../../../src/program.js';
import { tempDir } from '../../helpers/tmp.js';

function configHome() {
  const home = tempDir('config-delete-tty-');
  const file = join(home, 'smart', 'config.json');
  mkdirSync(join(home, 'smart'));
  writeFileSync(
    file,
    JSON.stringify({
      currentProfile: 'prod',
      profiles: { prod: { baseUrl: 'http://prod.example', clientId: 'c1' }, dev: {} },
    }),
  );
  return { home, file };
}

/** `smart config delete prod` with stdin and stderr on a terminal, answering `reply`. */
async function deleteOnTerminal(reply: string) {
  const { home, file } = configHome();
  const stdin = Object.assign(new PassThrough(), { isTTY: true });
  // Like process.stderr, which the prompt's end() leaves open.
  const stderr = Object.assign(new PassThrough(), { isTTY: true, columns: 80 });
  stderr.end = (() => stderr) as never;
  let err = '';
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  // Answer once the question is drawn (inquirer is imported lazily).
  const timer = setInterval(() => {
    if (err.includes('Delete profile')) {
      clearInterval(timer);
      stdin.write(reply);
    }
  }, 20);
  const code = await run({
    argv: ['config', 'delete', 'prod'],
    io: { stdin, stderr, stdout: new PassThrough() },
    env: { XDG_CONFIG_HOME: home, HOME: home, NO_COLOR: '1' },
    cwd: home,
  });
  clearInterval(timer);
  return { code, err, config: JSON.parse(readFileSync(file, 'utf8')) };
}

describe('smart config delete on a terminal', () => {
  it('asks, naming the profile, and deletes on yes', async () => {
    const r = await deleteOnTerminal('y\n');
    expect(r.code).toBe(0);
    expect(r.err).toContain('Delete profile "prod" (http://prod.example, c1)?');
    expect(r.err).toContain('deleted profile "prod"');
    expect(r.config).toEqual({ profiles: { dev: {} } });
  });

  it('keeps the profile on no (the default)', async () => {
    const r = await deleteOnTerminal('\n');
    expect(r.code).toBe(0);
    expect(r.err).toContain('kept profile "prod"');
    expect(Object.keys(r.config.profiles)).toEqual(['prod', 'dev']);
  });
});
