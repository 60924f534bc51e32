// Shared by the benches: the built CLI, a sandbox in its own process with a registered client,
// timing and peak-RSS measurement, medians, and the report rows `npm run bench` gathers into
// one table (bench/run.mjs sets SMART_BENCH_REPORT to a file; each bench appends JSON lines).
import { spawn, spawnSync } from 'node:child_process';
import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const bin = join(root, 'bin', 'smart.cjs');

export function requireBuild() {
  for (const f of ['cli.cjs', 'sandbox/index.js', 'core/auth/keys.js']) {
    if (!existsSync(join(root, 'dist', f))) {
      console.error(`dist/${f} is missing: run \`npm run build\` first`);
      process.exit(1);
    }
  }
}

export const hasCurl = spawnSync('curl', ['--version']).status === 0;

/** GNU time's -v gives the peak RSS of a whole process (Debian: `apt-get install time`). */
export const TIME = '/usr/bin/time';
export const hasGnuTime = existsSync(TIME) && spawnSync(TIME, ['-v', 'true']).status === 0;
/** Without GNU time, node commands report their own peak RSS through this preload. */
const MAXRSS_PRELOAD = pathToFileURL(
  join(dirname(fileURLToPath(import.meta.url)), 'maxrss.mjs'),
).href;

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
/** The q-quantile (0..1) by nearest rank. */
export const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.round(q * (s.length - 1))))];
};
/** "p25-p75" of a sample as a spread around its median, e.g. "±6%". */
export const spread = (xs) => {
  const m = median(xs);
  const half = (quantile(xs, 0.75) - quantile(xs, 0.25)) / 2;
  return `±${Math.round((100 * half) / m)}%`;
};

/**
 * The sandbox in its own process, so that it shares no event loop with the bench and the bench
 * may block (spawnSync) while the CLI talks to it.
 */
export async function startSandboxProcess(generate = 0) {
  const script = `
    const { startSandbox } = await import(${JSON.stringify(pathToFileURL(join(root, 'dist', 'sandbox', 'index.js')).href)});
    const s = await startSandbox({ port: 0, generate: ${generate} });
    process.stdout.write(JSON.stringify({ url: s.url, adminSecret: s.adminSecret, counts: s.counts }) + '\\n');
    process.on('SIGTERM', () => s.close().then(() => process.exit(0)));
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const info = await new Promise((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      if (buf.includes('\n')) resolve(JSON.parse(buf.split('\n')[0]));
    });
    child.on('exit', (code) => reject(new Error(`sandbox exited ${code}`)));
  });
  return {
    ...info,
    stop: () => new Promise((r) => (child.once('exit', r), child.kill('SIGTERM'))),
  };
}

/**
 * A home directory with a key registered as client `id` on the sandbox, and the environment
 * that points the CLI at it. `cleanup()` removes the directory.
 */
export async function benchClient(sandbox, id = 'bench') {
  const { generateSigningKey } = await import(
    pathToFileURL(join(root, 'dist', 'core', 'auth', 'keys.js')).href
  );
  const home = mkdtempSync(join(tmpdir(), `smart-bench-${id}-`));
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
  await put(`/Client/${id}`, {
    type: 'bulk-api-client',
    active: true,
    grant_types: ['client_credentials'],
    auth: {
      client_credentials: {
        client_assertion_types: ['urn:ietf:params:oauth:client-assertion-type:jwt-bearer'],
        access_token_expiration: 3600,
        token_format: 'jwt',
      },
    },
    scope: ['system/*.read'],
    jwks: [key.publicJwk],
  });
  await put(`/AccessPolicy/${id}`, {
    engine: 'allow',
    link: [{ resourceType: 'Client', id }],
  });
  const env = {
    PATH: process.env.PATH,
    HOME: home,
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_CACHE_HOME: join(home, '.cache'),
    NO_COLOR: '1',
    SMART_BASE_URL: sandbox.url,
    SMART_CLIENT_ID: id,
    SMART_KEY: keyFile,
  };
  return { home, env, cleanup: () => rmSync(home, { recursive: true, force: true }) };
}

/** Run to completion, stdout discarded; throws on a non-zero exit. Wall time in ms. */
export function timeSync(cmd, args, env) {
  const start = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return ms;
}

/**
 * Run a command to completion (stdout discarded) without blocking this process: wall ms and
 * peak RSS in MB (GNU time; for node commands without it, the process's own maxRSS).
 */
export function measure(cmd, args, env, options = {}) {
  let argv = [cmd, args];
  let rssFile;
  if (hasGnuTime) argv = [TIME, ['-v', cmd, ...args]];
  else if (cmd === process.execPath) {
    rssFile = join(mkdtempSync(join(tmpdir(), 'smart-bench-rss-')), 'maxrss');
    argv = [cmd, ['--import', MAXRSS_PRELOAD, ...args]];
    env = { ...env, SMART_BENCH_MAXRSS_FILE: rssFile };
  }
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn(argv[0], argv[1], {
      env,
      stdio: ['ignore', options.stdout ?? 'ignore', 'pipe'],
    });
    let stderr = '';
    let stdout = '';
    child.stdout?.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('exit', (code) => {
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      if (code !== 0)
        return reject(new Error(`${cmd} ${args.join(' ')} exited ${code}:\n${stderr}`));
      let rssKb;
      const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
      if (m) rssKb = Number(m[1]);
      else if (rssFile && existsSync(rssFile)) {
        rssKb = Number(readFileSync(rssFile, 'utf8'));
        rmSync(dirname(rssFile), { recursive: true, force: true });
      }
      resolve({ ms, rssMb: rssKb === undefined ? undefined : rssKb / 1024, stdout, stderr });
    });
  });
}

export const rssSource = hasGnuTime
  ? '/usr/bin/time -v'
  : 'process.resourceUsage().maxRSS of node commands (GNU time not found: `apt-get install time`; curl not measured)';

/**
 * One line of the summary table: `value` against `target` (`cmp` '<=' or '>='); without a
 * target the row is for information. Printed here and, under `npm run bench`, gathered.
 */
export function report(bench, metric, value, { target, cmp = '<=', unit = 'x', note = '' } = {}) {
  const ok =
    value === undefined || target === undefined
      ? undefined
      : cmp === '<='
        ? value <= target
        : value >= target;
  const row = { bench, metric, value, unit, target, cmp, ok, note };
  const file = process.env.SMART_BENCH_REPORT;
  if (file) appendFileSync(file, JSON.stringify(row) + '\n');
  return row;
}

/** Format rows of strings as aligned columns (first column left, the rest right). */
export function columns(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i])))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
