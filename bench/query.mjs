// `smart query Observation --all -o ndjson --count 1000` against the sandbox with ~10k and ~100k
// Observations: wall time, resources/s and peak RSS, beside curl fetching the same pages (a shell
// loop following the next links with the same token). Targets: peak RSS at 100k within 1.1x of
// that at 10k (streaming), and total time within 2x of curl's.
//
// Run after `npm run build`:  node bench/query.mjs [runs]   (default 3 per size; median reported)
// Also: npm run bench -- query
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { report, startSandboxProcess } from './lib/common.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'bin', 'smart.cjs');
for (const f of ['cli.cjs', 'sandbox/index.js', 'core/auth/keys.js']) {
  if (!existsSync(join(root, 'dist', f))) {
    console.error(`dist/${f} is missing: run \`npm run build\` first`);
    process.exit(1);
  }
}
const runs = Math.max(1, Number(process.argv[2] ?? 3));
const { generateSigningKey } = await import(
  pathToFileURL(join(root, 'dist', 'core', 'auth', 'keys.js')).href
);
const TIME = '/usr/bin/time';
const hasGnuTime = existsSync(TIME) && spawnSync(TIME, ['-v', 'true']).status === 0;
const hasCurl = spawnSync('curl', ['--version']).status === 0;
// The sandbox generates 8 Observations per patient (2 encounters x 4 kinds), plus 15 fixtures.
const SIZES = [
  { label: '10k', patients: 1250 },
  { label: '100k', patients: 12500 },
];

async function register(sandbox, home) {
  const key = await generateSigningKey('RS384');
  const keyFile = join(home, 'key.pem');
  writeFileSync(keyFile, key.privateKeyPem, { mode: 0o600 });
  const headers = {
    authorization: `Basic ${Buffer.from(`root:${sandbox.adminSecret}`).toString('base64')}`,
    'content-type': 'application/json',
  };
  const put = async (path, body) => {
    const res = await fetch(`${sandbox.url}${path}`, {
      method: 'PUT',
      headers,
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`PUT ${path}: ${res.status} ${await res.text()}`);
  };
  await put('/Client/bench-query', {
    type: 'bulk-api-client',
    active: true,
    grant_types: ['client_credentials'],
    auth: {
      client_credentials: {
        client_assertion_types: ['urn:ietf:params:oauth:client-assertion-type:jwt-bearer'],
        access_token_expiration: 300,
        token_format: 'jwt',
      },
    },
    scope: ['system/*.read'],
    jwks: [key.publicJwk],
  });
  await put('/AccessPolicy/bench-query', {
    engine: 'allow',
    link: [{ resourceType: 'Client', id: 'bench-query' }],
  });
  return keyFile;
}

/** Run a command to completion, stdout to /dev/null; wall ms and (with GNU time) peak RSS in KB. */
function measure(cmd, args, env) {
  const argv = hasGnuTime ? [TIME, ['-v', cmd, ...args]] : [cmd, args];
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn(argv[0], argv[1], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('exit', (code) => {
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      if (code !== 0)
        return reject(new Error(`${cmd} ${args.join(' ')} exited ${code}:\n${stderr}`));
      const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
      resolve({ ms, rssKb: rss ? Number(rss[1]) : undefined });
    });
  });
}

/** Lines the CLI writes (untimed), to check that every Observation came through. */
function countLines(args, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let lines = 0;
    let stderr = '';
    child.stdout.on('data', (d) => {
      for (let i = d.indexOf(10); i !== -1; i = d.indexOf(10, i + 1)) lines++;
    });
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => (code === 0 ? resolve(lines) : reject(new Error(stderr))));
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

// curl follows the next links the server gives, one curl per page, with the same token.
const CURL_LOOP = `
url="$1"; n=0
while [ -n "$url" ]; do
  curl -sS --fail -H "Authorization: Bearer $TOKEN" -H 'Accept: application/fhir+json' -o "$PAGE" "$url" || exit 1
  n=$((n+1))
  url=$(grep -o '"relation":"next","url":"[^"]*"' "$PAGE" | head -1 | sed 's/.*"url":"//; s/"$//')
done
echo "$n" > "$PAGE.count"
`;

const results = [];
for (const size of SIZES) {
  const sandbox = await startSandboxProcess(size.patients);
  const home = mkdtempSync(join(tmpdir(), 'smart-bench-query-'));
  try {
    const keyFile = await register(sandbox, home);
    const env = {
      PATH: process.env.PATH,
      HOME: home,
      XDG_CONFIG_HOME: join(home, '.config'),
      XDG_CACHE_HOME: join(home, '.cache'),
      NO_COLOR: '1',
      SMART_BASE_URL: sandbox.url,
      SMART_CLIENT_ID: 'bench-query',
      SMART_KEY: keyFile,
    };
    const args = ['query', 'Observation', '--all', '-o', 'ndjson', '--count', '1000'];
    // Warm-up: fills the token and discovery caches, and checks the output.
    const lines = await countLines(args, env);
    const expected = sandbox.counts.Observation;
    if (lines !== expected)
      throw new Error(`smart wrote ${lines} lines, the sandbox has ${expected} Observations`);
    const smartRuns = [];
    for (let i = 0; i < runs; i++)
      smartRuns.push(await measure(process.execPath, [bin, ...args], env));

    let curlMs;
    let pages;
    if (hasCurl) {
      const token = spawnSync(process.execPath, [bin, 'token'], { env, encoding: 'utf8' });
      if (token.status !== 0) throw new Error(`smart token failed: ${token.stderr}`);
      const page = join(home, 'page.json');
      const curlEnv = { ...env, TOKEN: token.stdout.trim(), PAGE: page };
      const first = `${sandbox.url}/fhir/Observation?_count=1000`;
      const curlRuns = [];
      for (let i = 0; i < runs; i++)
        curlRuns.push((await measure('bash', ['-c', CURL_LOOP, 'curl-loop', first], curlEnv)).ms);
      curlMs = median(curlRuns);
      pages = Number(spawnSync('cat', [`${page}.count`], { encoding: 'utf8' }).stdout.trim());
    }
    const ms = median(smartRuns.map((r) => r.ms));
    const rss = smartRuns.every((r) => r.rssKb !== undefined)
      ? median(smartRuns.map((r) => r.rssKb))
      : undefined;
    results.push({
      size: size.label,
      resources: expected,
      pages,
      ms,
      rate: expected / (ms / 1000),
      rss,
      curlMs,
    });
  } finally {
    await sandbox.stop();
    rmSync(home, { recursive: true, force: true });
  }
}

const fmt = (n, d = 0) => (n === undefined ? '-' : n.toFixed(d));
const rows = [
  ['size', 'resources', 'pages', 'smart s', 'resources/s', 'peak RSS MB', 'curl s', 'smart/curl'],
  ...results.map((r) => [
    r.size,
    String(r.resources),
    r.pages === undefined ? '-' : String(r.pages),
    fmt(r.ms / 1000, 2),
    fmt(r.rate),
    r.rss === undefined ? '-' : fmt(r.rss / 1024, 1),
    r.curlMs === undefined ? '-' : fmt(r.curlMs / 1000, 2),
    r.curlMs === undefined ? '-' : fmt(r.ms / r.curlMs, 2),
  ]),
];
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
for (const r of rows)
  console.log(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  '));
console.log(
  `(median of ${runs} run${runs === 1 ? '' : 's'}; peak RSS from ${hasGnuTime ? '/usr/bin/time -v' : 'nowhere: GNU time not found'})`,
);

let missed = 0;
const [small, big] = results;
if (small.rss !== undefined && big.rss !== undefined) {
  const ratio = big.rss / small.rss;
  const ok = report('query', 'query --all: peak RSS 100k / 10k', ratio, { target: 1.1 }).ok;
  if (!ok) missed++;
  console.log(`peak RSS 100k / 10k = ${ratio.toFixed(2)} (target <= 1.1): ${ok ? 'ok' : 'MISSED'}`);
}
for (const r of results) {
  if (r.curlMs === undefined) continue;
  const ratio = r.ms / r.curlMs;
  const ok = report('query', `query --all ${r.size}: time / curl loop`, ratio, { target: 2 }).ok;
  if (!ok) missed++;
  console.log(
    `${r.size}: smart / curl time = ${ratio.toFixed(2)} (target <= 2): ${ok ? 'ok' : 'MISSED'}`,
  );
}
process.exit(missed ? 1 : 0);
