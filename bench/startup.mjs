// Start-up and whole-process cost, as ratios measured in one run (cases interleaved so that
// machine noise hits them alike; medians, with the half inter-quartile range as ±%):
//   smart --version / node -e 0              target <= 1.5
//   smart --help / node -e 0                 target <= 1.5
//   warm `smart token` / smart --version     target <= 1.15 (cached token: no request at all)
//   one-page `smart query Observation code=4548-4 -o json` / smart --version   target <= 1.6
//   `smart api /Patient` / smart --version   target <= 1.6
//   and query and api beside curl fetching the same URL with the same token (for information).
// The sandbox runs in its own process. Run after `npm run build`.
//   node bench/startup.mjs [runs]     (default 20 runs per case, after 3 warm-ups)
import { spawnSync } from 'node:child_process';
import {
  bin,
  benchClient,
  columns,
  hasCurl,
  median,
  report,
  requireBuild,
  spread,
  startSandboxProcess,
  timeSync,
} from './lib/common.mjs';

requireBuild();
const runs = Math.max(3, Number(process.argv[2] ?? 20));
const sandbox = await startSandboxProcess(0);
const client = await benchClient(sandbox, 'bench-startup');
const node = process.execPath;
try {
  const env = client.env;
  const fhir = `${sandbox.url}/fhir`;
  // Fill the discovery and token caches, and check that a warm token makes no request.
  const warm = spawnSync(node, [bin, '--verbose', 'token'], { env, encoding: 'utf8' });
  if (warm.status !== 0) throw new Error(`smart token failed: ${warm.stderr}`);
  const token = warm.stdout.trim();
  const again = spawnSync(node, [bin, '--verbose', 'token'], { env, encoding: 'utf8' });
  if (!/using cached token/.test(again.stderr) || /^\* (GET|POST) /m.test(again.stderr))
    throw new Error(`a warm \`smart token\` made a request:\n${again.stderr}`);

  const curl = (url) => [
    'curl',
    [
      '-sS',
      '--fail',
      '-o',
      '/dev/null',
      '-H',
      `Authorization: Bearer ${token}`,
      '-H',
      'Accept: application/fhir+json',
      url,
    ],
  ];
  const cases = [
    ['node -e 0', node, ['-e', '0']],
    ['smart --version', node, [bin, '--version']],
    ['smart --help', node, [bin, '--help']],
    ['smart token (warm)', node, [bin, 'token']],
    ['smart query (1 page)', node, [bin, 'query', 'Observation', 'code=4548-4', '-o', 'json']],
    ['smart api /Patient', node, [bin, 'api', '/Patient']],
  ];
  if (hasCurl) {
    cases.push(['curl query URL', ...curl(`${fhir}/Observation?code=4548-4`)]);
    cases.push(['curl api URL', ...curl(`${fhir}/Patient`)]);
  }
  const samples = new Map(cases.map(([name]) => [name, []]));
  for (const [, cmd, args] of cases) for (let i = 0; i < 3; i++) timeSync(cmd, args, env);
  for (let i = 0; i < runs; i++) {
    for (const [name, cmd, args] of cases) samples.get(name).push(timeSync(cmd, args, env));
  }
  const m = (name) => median(samples.get(name));
  console.log(
    columns([
      ['case', 'median ms', 'spread'],
      ...cases.map(([name]) => [name, m(name).toFixed(1), spread(samples.get(name))]),
    ]),
  );

  const ratio = (a, b) => m(a) / m(b);
  const rows = [
    report('startup', '--version / node -e 0', ratio('smart --version', 'node -e 0'), {
      target: 1.5,
    }),
    report('startup', '--help / node -e 0', ratio('smart --help', 'node -e 0'), { target: 1.5 }),
    report('startup', 'token (warm) / --version', ratio('smart token (warm)', 'smart --version'), {
      target: 1.15,
    }),
    report(
      'startup',
      'query 1 page / --version',
      ratio('smart query (1 page)', 'smart --version'),
      {
        target: 1.6,
      },
    ),
    report('startup', 'api /Patient / --version', ratio('smart api /Patient', 'smart --version'), {
      target: 1.6,
    }),
  ];
  if (hasCurl) {
    rows.push(
      report('startup', 'query 1 page / curl', ratio('smart query (1 page)', 'curl query URL')),
      report('startup', 'api /Patient / curl', ratio('smart api /Patient', 'curl api URL')),
    );
  }
  console.log();
  console.log(
    columns([
      ['ratio', 'value', 'target', ''],
      ...rows.map((r) => [
        r.metric,
        `${r.value.toFixed(2)}x`,
        r.target === undefined ? '-' : `${r.cmp} ${r.target}x`,
        r.ok === undefined ? '' : r.ok ? 'ok' : 'OVER',
      ]),
    ]),
  );
  console.log(`(medians of ${runs} interleaved runs; spread = half the inter-quartile range)`);
  process.exitCode = rows.some((r) => r.ok === false) ? 1 : 0;
} finally {
  client.cleanup();
  await sandbox.stop();
}
