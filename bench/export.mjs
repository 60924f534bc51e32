// Bulk export throughput and memory: `smart export --parallel 4` against the embedded sandbox
// (about 100k generated resources), beside curl fetching the same manifest's files with the
// same parallelism (xargs -P 4 curl, with the Bearer token). Two file sizes are compared to
// check that the client's peak RSS does not grow with the size of a file.
// Targets: download throughput >= 1.0x curl's; peak RSS independent of file size.
// Azurite row: the same export into Azure Blob Storage (Azurite, in memory, on 127.0.0.1) beside
// the one into a local directory; target: peak RSS flat, at most the directory's + 25 MB.
//   node bench/export.mjs [patients]      (default 8000 patients = about 100k resources)
// Each figure is the best of 3 runs (smart: the download phase, from the manifest event to the
// complete event, and the whole command; curl: the whole xargs run). Peak RSS is the largest.
// Run after `npm run build`. Needs curl and xargs; uses /usr/bin/time -v when present.
import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { report } from './lib/common.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'bin', 'smart.cjs');
if (!existsSync(join(root, 'dist', 'cli.cjs'))) {
  console.error('dist/cli.cjs is missing: run `npm run build` first');
  process.exit(1);
}
for (const tool of ['curl', 'xargs']) {
  if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
    console.error(`${tool} is needed for the comparison`);
    process.exit(1);
  }
}
const { startSandbox } = await import(join(root, 'dist', 'sandbox', 'index.js'));
const AZURITE_RSS_MARGIN_MB = 25;
const AZURITE_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

/** Azurite's blob service, in memory, on a free port of 127.0.0.1, with a container `bench`. */
async function startAzurite() {
  const main = join(root, 'node_modules', 'azurite', 'dist', 'src', 'blob', 'main.js');
  const child = spawn(
    process.execPath,
    [
      main,
      '--inMemoryPersistence',
      '--disableTelemetry',
      '--silent',
      '--skipApiVersionCheck',
      '--blobHost',
      '127.0.0.1',
      '--blobPort',
      '0',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const port = await new Promise((resolve, reject) => {
    let out = '';
    const onData = (d) => {
      out += d;
      const m = /listens on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(new Error(`azurite exited ${code}: ${out}`)));
  });
  const connectionString = `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${AZURITE_KEY};BlobEndpoint=http://127.0.0.1:${port}/devstoreaccount1;`;
  const { BlobServiceClient } = await import('@azure/storage-blob');
  await BlobServiceClient.fromConnectionString(connectionString)
    .getContainerClient('bench')
    .create();
  return {
    connectionString,
    close: () =>
      new Promise((r) => {
        if (child.exitCode !== null) return r();
        child.once('exit', () => r());
        child.kill('SIGTERM');
      }),
  };
}
const { generateSigningKey } = await import(join(root, 'dist', 'core', 'auth', 'keys.js'));

const PATIENTS = Number(process.argv[2] ?? 8000);
const PARALLEL = 4;
const RUNS = 3;
const RATIO_TARGET = 1.0;
const GNU_TIME =
  existsSync('/usr/bin/time') && spawnSync('/usr/bin/time', ['-v', 'true']).status === 0;

/** Run a command without blocking this process (the sandbox lives in it). */
function run(cmd, args, options = {}) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    let stdout = '';
    let stderr = '';
    const marks = {};
    let buffered = '';
    child.stdout.on('data', (d) => {
      stdout += d;
      if (!options.events) return;
      // -o ndjson: note when each phase's event arrives.
      buffered += d;
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        try {
          const e = JSON.parse(line);
          marks[e.event] ??= performance.now();
          if (e.event === 'complete') marks.summary = e.summary;
        } catch {
          // not an event
        }
      }
    });
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = performance.now() - started;
      if (code !== 0) reject(new Error(`${cmd} ${args.join(' ')} exited ${code}:\n${stderr}`));
      else resolve({ stdout, stderr, ms, marks });
    });
  });
}

/** Wrap a command so that its peak RSS is measured: GNU time, else a /proc sampler. */
async function measured(cmd, args, options) {
  if (GNU_TIME) {
    const r = await run('/usr/bin/time', ['-v', cmd, ...args], options);
    const kb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)?.[1] ?? NaN);
    return { ...r, rssMb: kb / 1024 };
  }
  let peak = 0;
  const child = run(cmd, args, options);
  const timer = setInterval(() => {
    const out = spawnSync('sh', [
      '-c',
      `ps -o rss= -C node | sort -n | tail -1`,
    ]).stdout?.toString();
    peak = Math.max(peak, Number(out) || 0);
  }, 20);
  try {
    const r = await child;
    return { ...r, rssMb: peak / 1024 };
  } finally {
    clearInterval(timer);
  }
}

const dirSize = (dir) =>
  readdirSync(dir, { recursive: true })
    .map((n) => join(dir, String(n)))
    .filter((p) => statSync(p).isFile() && p.endsWith('.ndjson'))
    .reduce((a, p) => a + statSync(p).size, 0);

async function scenario(fileSize) {
  const sandbox = await startSandbox({
    port: 0,
    generate: PATIENTS,
    exportFileSize: fileSize,
    exportDelayMs: 0,
  });
  let work;
  try {
    const total = Object.values(sandbox.counts).reduce((a, b) => a + b, 0);
    work = mkdtempSync(join(tmpdir(), 'smart-bench-export-'));
    const key = await generateSigningKey('RS384');
    writeFileSync(join(work, 'key.pem'), key.privateKeyPem, { mode: 0o600 });
    const auth = `Basic ${Buffer.from(`root:${sandbox.adminSecret}`).toString('base64')}`;
    const put = async (path, body) => {
      const res = await fetch(`${sandbox.url}${path}`, {
        method: 'PUT',
        headers: { authorization: auth, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      if (!res.ok) throw new Error(`PUT ${path}: ${res.status} ${await res.text()}`);
    };
    await put('/Client/bench', {
      grant_types: ['client_credentials'],
      auth: {
        client_credentials: {
          client_assertion_types: ['urn:ietf:params:oauth:client-assertion-type:jwt-bearer'],
          access_token_expiration: 600,
          token_format: 'jwt',
        },
      },
      scope: ['system/*.read'],
      jwks: [key.publicJwk],
    });
    await put('/AccessPolicy/bench', {
      engine: 'allow',
      link: [{ resourceType: 'Client', id: 'bench' }],
    });
    const env = {
      PATH: process.env.PATH,
      HOME: work,
      XDG_CONFIG_HOME: join(work, 'config'),
      XDG_CACHE_HOME: join(work, 'cache'),
      NO_COLOR: '1',
      SMART_BASE_URL: sandbox.url,
      SMART_CLIENT_ID: 'bench',
      SMART_KEY: join(work, 'key.pem'),
    };

    // The floor: a one-resource export (any networked command loads undici's HTTP parser).
    const floor = await measured(
      process.execPath,
      [bin, 'export', '--type', 'Group', '--out', join(work, 'floor'), '-o', 'json'],
      { env },
    );
    // smart: the whole command, and the download phase alone (manifest event -> complete event).
    // Best of RUNS, like curl below: short runs on a shared machine are noisy.
    let s;
    let out;
    for (let i = 0; i < RUNS; i++) {
      const dir = join(work, `smart-out-${i}`);
      const r = await measured(
        process.execPath,
        [bin, 'export', '--parallel', String(PARALLEL), '--out', dir, '-o', 'ndjson'],
        { env, events: true },
      );
      r.downloadMs = r.marks.complete - r.marks.manifest;
      if (!s || r.downloadMs < s.downloadMs) [s, out] = [r, dir];
      if (s) s.rssMb = Math.max(s.rssMb, r.rssMb);
    }
    const summary = s.marks.summary;
    const bytes = summary.bytes;
    const smartDownloadMs = s.downloadMs;

    // curl: the same manifest's files, the same parallelism, the Bearer token.
    const token = (await run(process.execPath, [bin, 'token'], { env })).stdout.trim();
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    const curlDir = join(work, 'curl-out');
    const list = join(work, 'urls.txt');
    writeFileSync(
      list,
      [...manifest.output, ...manifest.error]
        .map((e, i) => `${e.url} ${join(curlDir, `${i}.ndjson`)}`)
        .join('\n') + '\n',
    );
    spawnSync('mkdir', ['-p', curlDir]);
    let c;
    for (let i = 0; i < RUNS; i++) {
      const r = await measured(
        'sh',
        [
          '-c',
          `xargs -P ${PARALLEL} -L 1 sh -c 'curl -sSf -H "Authorization: Bearer $T" -H "Accept: application/fhir+ndjson" -o "$2" "$1"' _ < ${list}`,
        ],
        { env: { ...env, T: token } },
      );
      if (!c || r.ms < c.ms) c = r;
    }
    const curlBytes = dirSize(curlDir);
    if (curlBytes !== bytes) throw new Error(`curl fetched ${curlBytes} bytes, smart ${bytes}`);

    // The same export into Azurite (fresh, in memory, for these runs only).
    const azurite = await startAzurite();
    let a;
    try {
      for (let i = 0; i < RUNS; i++) {
        const r = await measured(
          process.execPath,
          [
            bin,
            'export',
            '--parallel',
            String(PARALLEL),
            '--out',
            `az://bench/run-${i}`,
            '-o',
            'ndjson',
          ],
          {
            env: { ...env, AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString },
            events: true,
          },
        );
        r.downloadMs = r.marks.complete - r.marks.manifest;
        if (r.marks.summary.bytes !== bytes)
          throw new Error(`Azurite got ${r.marks.summary.bytes} bytes, the directory ${bytes}`);
        if (!a || r.downloadMs < a.downloadMs)
          a = { ...r, rssMb: Math.max(r.rssMb, a?.rssMb ?? 0) };
        else a.rssMb = Math.max(a.rssMb, r.rssMb);
      }
    } finally {
      await azurite.close();
    }
    return {
      fileSize,
      resources: total,
      exported: summary.resources,
      files: summary.files.length,
      largestMb: Math.max(...summary.files.map((f) => f.bytes)) / 1e6,
      mb: bytes / 1e6,
      smartMs: s.ms,
      smartDownloadMs,
      smartRssMb: s.rssMb,
      floorRssMb: floor.rssMb,
      curlMs: c.ms,
      azuriteDownloadMs: a.downloadMs,
      azuriteMs: a.ms,
      azuriteRssMb: a.rssMb,
    };
  } finally {
    await sandbox.close();
    // The exported files (about 55 MB a run, 7 runs a scenario) go with the scenario.
    if (work) rmSync(work, { recursive: true, force: true });
  }
}

const fmt = (n, d = 1) => n.toFixed(d);
const results = [];
for (const fileSize of [2_000, 100_000]) {
  const r = await scenario(fileSize);
  results.push(r);
  const smartMbs = r.mb / (r.smartDownloadMs / 1000);
  const smartE2E = r.mb / (r.smartMs / 1000);
  const curlMbs = r.mb / (r.curlMs / 1000);
  console.log(
    `files of <= ${r.fileSize} resources: ${r.files} files, largest ${fmt(r.largestMb)} MB, ${fmt(r.mb)} MB, ${r.exported} resources\n` +
      `  smart export  ${fmt(smartMbs)} MB/s downloading (${fmt(smartE2E)} MB/s end to end, ${fmt(r.smartMs / 1000, 2)} s with start-up, token, kick-off)  peak RSS ${fmt(r.smartRssMb)} MB\n` +
      `  curl -P ${PARALLEL}     ${fmt(curlMbs)} MB/s (${fmt(r.curlMs / 1000, 2)} s)\n` +
      `  ratio ${fmt(smartMbs / curlMbs, 2)}x curl downloading, ${fmt(smartE2E / curlMbs, 2)}x end to end (target >= ${RATIO_TARGET}x)`,
  );
  r.ratio = smartMbs / curlMbs;
  report('export', `export download, files <= ${r.fileSize}: throughput / curl`, r.ratio, {
    target: RATIO_TARGET,
    cmp: '>=',
  });
  const azMbs = r.mb / (r.azuriteDownloadMs / 1000);
  r.azuriteRssOk = report(
    'export',
    `peak RSS into Azurite - into a directory, files <= ${r.fileSize}`,
    r.azuriteRssMb - r.smartRssMb,
    { target: AZURITE_RSS_MARGIN_MB, unit: 'MB' },
  ).ok;
  console.log(
    `  -> Azurite   ${fmt(azMbs)} MB/s (${fmt(azMbs / smartMbs, 2)}x the directory's, ${fmt(r.azuriteMs / 1000, 2)} s)  peak RSS ${fmt(r.azuriteRssMb)} MB (directory ${fmt(r.smartRssMb)} MB; target <= +${AZURITE_RSS_MARGIN_MB} MB: ${r.azuriteRssOk ? 'ok' : 'MISSED'})`,
  );
}
const [small, large] = results;
const rssGrowth = large.smartRssMb / small.smartRssMb;
console.log(
  `peak RSS: ${fmt(small.floorRssMb)} MB for a one-resource export; ${fmt(small.smartRssMb)} MB with ${fmt(small.largestMb)} MB files, ${fmt(large.smartRssMb)} MB with ${fmt(large.largestMb)} MB files (${fmt(rssGrowth, 2)}x for ${fmt(large.largestMb / small.largestMb)}x larger files)` +
    `${GNU_TIME ? '' : ' [sampled with ps: GNU time not found]'}`,
);
report('export', 'export peak RSS, large files / small files', rssGrowth, { target: 1.1 });
const ok = results.every((r) => r.ratio >= RATIO_TARGET && r.azuriteRssOk) && rssGrowth <= 1.1;
console.log(`throughput and memory targets: ${ok ? 'ok' : 'MISSED'}`);
