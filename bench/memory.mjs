// Peak RSS of whole processes (from /usr/bin/time -v; without it, node's own maxRSS):
//   smart token (warm), a one-page query, api /Patient, an export of 100k resources: <= 75 MB
//   query Observation --all -o ndjson: 100k resources within 1.1x of 10k (memory stays flat)
// beside bare node and `smart --version`. The sandbox runs in its own process with 100k
// Observations (12,500 patients). Run after `npm run build`.
//   node bench/memory.mjs [runs]     (default 3 runs per command; the median is reported)
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import {
  bin,
  benchClient,
  columns,
  measure,
  median,
  report,
  requireBuild,
  rssSource,
  startSandboxProcess,
} from './lib/common.mjs';

requireBuild();
const runs = Math.max(1, Number(process.argv[2] ?? 3));
const LIMIT_MB = 75;
const node = process.execPath;
console.log('starting a sandbox with 12,500 patients (100k Observations)...');
const sandbox = await startSandboxProcess(12_500);
const client = await benchClient(sandbox, 'bench-memory');
const out = mkdtempSync(join(tmpdir(), 'smart-bench-memory-'));
try {
  const env = client.env;
  await measure(node, [bin, 'token'], env); // fills the token and discovery caches
  const observations = sandbox.counts.Observation;
  let n = 0;
  const exportArgs = () => [
    bin,
    'export',
    '--type',
    'Observation',
    '--out',
    join(out, `export-${n++}`),
    '-o',
    'json',
  ];
  const ndjson = ['query', 'Observation', '--all', '-o', 'ndjson', '--count', '1000'];
  const cases = [
    ['node -e 0', () => ['-e', '0']],
    ['smart --version', () => [bin, '--version']],
    ['smart token (warm)', () => [bin, 'token'], LIMIT_MB],
    ['query 1 page', () => [bin, 'query', 'Observation', 'code=4548-4', '-o', 'json'], LIMIT_MB],
    ['api /Patient', () => [bin, 'api', '/Patient'], LIMIT_MB],
    [`export ${Math.round(observations / 1000)}k Observations`, exportArgs, LIMIT_MB],
    ['query --all ndjson 10k', () => [bin, ...ndjson, '--limit', '10000']],
    [`query --all ndjson ${Math.round(observations / 1000)}k`, () => [bin, ...ndjson]],
  ];
  const rss = new Map(cases.map(([name]) => [name, []]));
  for (let i = 0; i < runs; i++) {
    for (const [name, args] of cases) {
      const r = await measure(node, args(), env);
      if (r.rssMb === undefined) throw new Error(`no peak RSS for ${name}`);
      rss.get(name).push(r.rssMb);
    }
  }
  const mb = (name) => median(rss.get(name));
  const rows = [];
  for (const [name, , limit] of cases) {
    if (limit !== undefined)
      rows.push(report('memory', `peak RSS ${name}`, mb(name), { target: limit, unit: 'MB' }));
  }
  const [small, big] = cases.slice(-2).map(([name]) => name);
  rows.push(report('memory', `RSS ${big} / 10k`, mb(big) / mb(small), { target: 1.1 }));
  console.log(
    columns([
      ['command', 'peak RSS MB', 'min', 'max'],
      ...cases.map(([name]) => [
        name,
        mb(name).toFixed(1),
        Math.min(...rss.get(name)).toFixed(1),
        Math.max(...rss.get(name)).toFixed(1),
      ]),
    ]),
  );
  console.log();
  console.log(
    columns([
      ['figure', 'value', 'target', ''],
      ...rows.map((r) => [
        r.metric,
        r.unit === 'MB' ? `${r.value.toFixed(1)} MB` : `${r.value.toFixed(2)}x`,
        `${r.cmp} ${r.target}${r.unit === 'MB' ? ' MB' : 'x'}`,
        r.ok ? 'ok' : 'OVER',
      ]),
    ]),
  );
  console.log(`(median of ${runs} run${runs === 1 ? '' : 's'}; peak RSS from ${rssSource})`);
  process.exitCode = rows.some((r) => r.ok === false) ? 1 : 0;
} finally {
  rmSync(out, { recursive: true, force: true });
  client.cleanup();
  await sandbox.stop();
}
