// Startup cost of `smart --version` and `smart --help` against bare `node -e 0`.
// Target: median at most 1.5x bare node. Run after `npm run build`.
//   node bench/startup.mjs [runs]     (default 20 runs per command, after 3 warm-ups)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'bin', 'smart.js');
if (!existsSync(join(root, 'dist', 'cli.js'))) {
  console.error('dist/cli.js is missing: run `npm run build` first');
  process.exit(1);
}
const runs = Number(process.argv[2] ?? 20);
const TARGET = 1.5;
const home = mkdtempSync(join(tmpdir(), 'smart-bench-'));
const env = { PATH: process.env.PATH, HOME: home, NO_COLOR: '1' };

function time(args) {
  const start = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0) throw new Error(`node ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return ms;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const cases = [
  ['node -e 0', ['-e', '0']],
  ['smart --version', [bin, '--version']],
  ['smart --help', [bin, '--help']],
];
const samples = new Map(cases.map(([name]) => [name, []]));
for (const [, args] of cases) for (let i = 0; i < 3; i++) time(args);
// Interleave the cases so that machine noise hits them alike.
for (let i = 0; i < runs; i++) {
  for (const [name, args] of cases) samples.get(name).push(time(args));
}
const base = median(samples.get('node -e 0'));
let worst = 0;
for (const [name] of cases) {
  const m = median(samples.get(name));
  const ratio = m / base;
  if (name !== 'node -e 0') worst = Math.max(worst, ratio);
  console.log(`${name.padEnd(16)} median ${m.toFixed(1).padStart(7)} ms  ${ratio.toFixed(2)}x`);
}
console.log(
  `worst ratio ${worst.toFixed(2)}x bare node over ${runs} runs (target <= ${TARGET}x): ${worst <= TARGET ? 'ok' : 'OVER'}`,
);
