// npm run bench            -> every bench/*.mjs except this file, then one table of every ratio
// npm run bench -- startup -> bench/startup.mjs only
// Each bench prints its own figures and appends its summary rows (bench/lib/common.mjs report())
// to the file named by SMART_BENCH_REPORT; the table below gathers them.
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { columns } from './lib/common.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2);
const all = readdirSync(here)
  .filter((f) => f.endsWith('.mjs') && f !== 'run.mjs')
  .map((f) => f.replace(/\.mjs$/, ''))
  .sort();
const unknown = wanted.filter((w) => !all.includes(w));
if (unknown.length) {
  console.error(`unknown bench: ${unknown.join(', ')} (have: ${all.join(', ')})`);
  process.exit(2);
}
const dir = mkdtempSync(join(tmpdir(), 'smart-bench-report-'));
const file = join(dir, 'rows.ndjson');
const failed = [];
try {
  for (const name of wanted.length ? wanted : all) {
    console.log(`## ${name}`);
    const r = spawnSync(process.execPath, [join(here, `${name}.mjs`)], {
      stdio: 'inherit',
      env: { ...process.env, SMART_BENCH_REPORT: file },
    });
    if (r.status !== 0) failed.push(name);
    console.log();
  }
  let rows = [];
  try {
    rows = readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
  } catch {
    // no bench reported a row
  }
  const value = (r) =>
    r.value === undefined
      ? '-'
      : r.unit === 'MB'
        ? `${r.value.toFixed(1)} MB`
        : `${r.value.toFixed(2)}${r.unit}`;
  console.log('## summary');
  console.log(
    columns([
      ['bench', 'figure', 'value', 'target', ''],
      ...rows.map((r) => [
        r.bench,
        r.metric,
        value(r),
        r.target === undefined ? '-' : `${r.cmp} ${r.target}${r.unit === 'MB' ? ' MB' : r.unit}`,
        r.ok === undefined ? '' : r.ok ? 'ok' : 'over',
      ]),
    ]),
  );
  const over = rows.filter((r) => r.ok === false).length;
  console.log(
    `${rows.length} figures, ${over} over target${failed.length ? `; benches that failed or missed: ${failed.join(', ')}` : ''}`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exit(failed.length ? 1 : 0);
