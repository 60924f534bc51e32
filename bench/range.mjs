// Range resume: a 40 MB export file whose download is cut at 90% (Ctrl-C while the server
// stalls), then `smart export --resume`, against the same file downloaded whole.
// Target (issue 12, item 4): the resumed download takes <= 0.2x the time of a full one.
//   node bench/range.mjs [megabytes]      (default 40)
// Figures are the best of 5 runs: the file's download time from the -o ndjson `file-done`
// event (`ms`, from the file's start to its rename), and the whole command's wall time.
// Run after `npm run build`. The file server runs in this process on 127.0.0.1.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { report } from './lib/common.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'bin', 'smart.cjs');
if (!existsSync(join(root, 'dist', 'cli.cjs'))) {
  console.error('dist/cli.cjs is missing: run `npm run build` first');
  process.exit(1);
}
const { generateSigningKey } = await import(join(root, 'dist', 'core', 'auth', 'keys.js'));

const MB = Number(process.argv[2] ?? 40);
const RUNS = 5;
const TARGET = 0.2;
const CUT = 0.9;

// About MB megabytes of NDJSON Patients.
const lines = [];
let size = 0;
for (let i = 0; size < MB * 1024 * 1024; i++) {
  const l = `{"resourceType":"Patient","id":"p${i}","name":[{"family":"Bench","given":["Range${i}"]}],"gender":"unknown"}\n`;
  lines.push(l);
  size += l.length;
}
const body = Buffer.from(lines.join(''));
const count = lines.length;
lines.length = 0;

/** 'full': the file whole; 'stall': 90% of it, then nothing (the connection stays open). */
let mode = 'full';
const held = new Set();
const server = createServer((req, res) => {
  const origin = `http://127.0.0.1:${server.address().port}`;
  const url = req.url ?? '/';
  const json = (status, v) =>
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(v));
  req.resume();
  if (url === '/auth/token')
    return json(200, { access_token: 'bench', token_type: 'Bearer', expires_in: 3600 });
  if (url.startsWith('/fhir/$export'))
    return res.writeHead(202, { 'content-location': `${origin}/fhir/status/1` }).end();
  if (url === '/fhir/status/1') {
    return json(200, {
      transactionTime: '2024-06-01T00:00:00Z',
      request: `${origin}/fhir/$export`,
      requiresAccessToken: true,
      output: [{ type: 'Patient', url: `${origin}/files/patients`, count }],
      error: [],
    });
  }
  if (url === '/files/patients') {
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = m ? Number(m[1]) : 0;
    const headers = { 'content-type': 'application/fhir+ndjson', 'accept-ranges': 'bytes' };
    if (start > 0) {
      headers['content-range'] = `bytes ${start}-${body.length - 1}/${body.length}`;
      res.writeHead(206, { ...headers, 'content-length': String(body.length - start) });
      return res.end(body.subarray(start));
    }
    res.writeHead(200, { ...headers, 'content-length': String(body.length) });
    if (mode === 'stall') {
      held.add(res);
      return res.write(body.subarray(0, Math.floor(body.length * CUT)));
    }
    return res.end(body);
  }
  json(404, { resourceType: 'OperationOutcome', issue: [] });
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const origin = `http://127.0.0.1:${server.address().port}`;

const work = mkdtempSync(join(tmpdir(), 'smart-bench-range-'));
const key = await generateSigningKey('RS384');
writeFileSync(join(work, 'key.pem'), key.privateKeyPem, { mode: 0o600 });
const env = {
  PATH: process.env.PATH,
  HOME: work,
  XDG_CONFIG_HOME: join(work, '.config'),
  XDG_CACHE_HOME: join(work, '.cache'),
  NO_COLOR: '1',
  SMART_BASE_URL: origin,
  SMART_TOKEN_URL: `${origin}/auth/token`,
  SMART_CLIENT_ID: 'bench',
  SMART_KEY: join(work, 'key.pem'),
};

/** Run smart with -o ndjson; the file-done event's `ms` and the wall time. */
function smart(args, onStart) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [bin, ...args, '-o', 'ndjson'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    onStart?.(child);
    child.on('error', reject);
    child.on('close', (code) => {
      const wall = performance.now() - t0;
      const done = out
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l))
        .find((e) => e.event === 'file-done');
      resolve({ code, wall, fileMs: done?.ms, stderr: err });
    });
  });
}

const partBytes = (dir) =>
  existsSync(dir)
    ? readdirSync(dir)
        .filter((n) => n.endsWith('.part'))
        .reduce((a, n) => a + statSync(join(dir, n)).size, 0)
    : 0;

const full = [];
const resumed = [];
let kept = 0;
try {
  for (let i = 0; i < RUNS; i++) {
    mode = 'full';
    const a = await smart(['export', '--out', join(work, `full-${i}`)]);
    if (a.code !== 0) throw new Error(`full export failed (${a.code}): ${a.stderr}`);
    full.push(a);

    // Cut at 90%: the server stalls there; Ctrl-C once the bytes are on disk.
    mode = 'stall';
    const dir = join(work, `cut-${i}`);
    const cut = await smart(['export', '--out', dir], (child) => {
      const timer = setInterval(() => {
        if (partBytes(dir) >= Math.floor(body.length * CUT)) {
          clearInterval(timer);
          child.kill('SIGINT');
        }
      }, 10);
    });
    for (const res of held) res.destroy();
    held.clear();
    if (cut.code !== 130)
      throw new Error(`the cut export did not stop with 130 (${cut.code}): ${cut.stderr}`);
    kept = partBytes(dir);
    mode = 'full';
    const b = await smart(['export', '--resume', dir]);
    if (b.code !== 0) throw new Error(`resume failed (${b.code}): ${b.stderr}`);
    resumed.push(b);
  }
} finally {
  server.closeAllConnections();
  server.close();
  rmSync(work, { recursive: true, force: true });
}

const best = (xs, k) => Math.min(...xs.map((x) => x[k]));
const fileRatio = best(resumed, 'fileMs') / best(full, 'fileMs');
const wallRatio = best(resumed, 'wall') / best(full, 'wall');
console.log(
  `file ${(body.length / 1048576).toFixed(1)} MB, cut at ${Math.round(CUT * 100)}% (${(kept / 1048576).toFixed(1)} MB kept on disk)`,
);
console.log(
  `full download     ${best(full, 'fileMs').toFixed(0).padStart(6)} ms file, ${best(full, 'wall').toFixed(0).padStart(6)} ms command`,
);
console.log(
  `resumed download  ${best(resumed, 'fileMs').toFixed(0).padStart(6)} ms file, ${best(resumed, 'wall').toFixed(0).padStart(6)} ms command`,
);
const { ok } = report('range', 'range resume: resumed / full download time', fileRatio, {
  target: TARGET,
});
console.log(
  `range resume: ${fileRatio.toFixed(2)}x of a full download (target <= ${TARGET}x) ${ok ? 'ok' : 'over'}; whole command ${wallRatio.toFixed(2)}x`,
);
process.exitCode = ok ? 0 : 1;
