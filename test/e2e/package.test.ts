import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, makeWorkspace } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * The published package: only what users need, and it works once installed from the tarball
 * into an empty folder (`smart --version`, `smart demo`).
 */
describe('npm package', () => {
  it('packs dist, bin, README and the sandbox fixtures only, and runs after install', async () => {
    const out = tempDir('smart-pack-');
    // --ignore-scripts: `npm test` has built dist/ already; a rebuild (prepare) would delete it
    // under the e2e tests running beside this one.
    const pack = await execa(
      'npm',
      ['pack', '--json', '--ignore-scripts', '--pack-destination', out],
      {
        cwd: ROOT,
        env: { npm_config_loglevel: 'error' },
      },
    );
    const [info] = JSON.parse(pack.stdout) as Array<{
      filename: string;
      files: Array<{ path: string }>;
    }>;
    const files = info!.files.map((f) => f.path);
    expect(files).toContain('bin/smart.cjs');
    expect(files).toContain('dist/cli.cjs');
    expect(files).toContain('dist/index.js');
    expect(files).toContain('README.md');
    expect(files).toContain('package.json');
    for (const f of files) {
      expect(f, `unexpected file in the package: ${f}`).toMatch(
        /^(bin\/|dist\/|fixtures\/sandbox\/|README\.md$|package\.json$|LICENSE$)/,
      );
      expect(f).not.toMatch(/\.map$/);
    }

    const app = tempDir('smart-install-');
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true }));
    await execa(
      'npm',
      ['install', '--no-audit', '--no-fund', '--prefer-offline', join(out, info!.filename)],
      { cwd: app, env: { npm_config_loglevel: 'error' } },
    );
    const ws = makeWorkspace();
    const env = { PATH: process.env.PATH, NO_COLOR: '1', ...ws.env };
    const bin = join(app, 'node_modules', '.bin', 'smart');
    const version = await execa(bin, ['--version'], { env, extendEnv: false, reject: false });
    expect(version.exitCode).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);

    const demo = await execa(bin, ['demo', '-o', 'json'], {
      env,
      extendEnv: false,
      reject: false,
      stdin: 'ignore',
    });
    expect(demo.exitCode, demo.stderr).toBe(0);
    expect(demo.stderr).toContain('[6/6]');
    expect(JSON.parse(demo.stdout).resourceType).toBe('Bundle');
  }, 300_000);
});
