// Warm-cache `smart token` against `smart --version` and bare node: with a cached token the
// command reads the config, the key and the cache file and makes no HTTP request at all.
// Run after `npm run build`.   node bench/token.mjs [runs]   (default 20, after 3 warm-ups)
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { createServer } from 'node:http';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'bin', 'smart.js');
if (!existsSync(join(root, 'dist', 'cli.js'))) {
  console.error('dist/cli.js is missing: run `npm run build` first');
  process.exit(1);
}
const { startSandbox } = await import(join(root, 'dist', 'sandbox', 'index.js'));
const { generateSigningKey } = await import(join(root, 'dist', 'core', 'keys.js'));
const runs = Number(process.argv[2] ?? 20);

const sandbox = await startSandbox({ port: 0 });
const home = mkdtempSync(join(tmpdir(), 'smart-bench-token-'));
const key = await generateSigningKey('RS384');
writeFileSync(join(home, 'key.pem'), key.privateKeyPem, { mode: 0o600 });
writeFileSync(join(home, 'jwks.json'), JSON.stringify({ keys: [key.publicJwk] }));
const jwks = createServer((_req, res) =>
  res
    .writeHead(200, { 'content-type': 'application/json' })
    .end(JSON.stringify({ keys: [key.publicJwk] })),
);
await new Promise((r) => jwks.listen(0, '127.0.0.1', r));
const admin = {
  authorization: `Basic ${Buffer.from(`root:${sandbox.adminSecret}`).toString('base64')}`,
};
const put = (path, body) =>
  fetch(`${sandbox.url}${path}`, {
    method: 'PUT',
    headers: { ...admin, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
await put('/Client/bench', {
  type: 'bulk-api-client',
  active: true,
  auth: {
    client_credentials: {
      client_assertion_types: ['urn:ietf:params:oauth:client-assertion-type:jwt-bearer'],
      access_token_expiration: 300,
      token_format: 'jwt',
    },
  },
  scope: ['system/*.read'],
  jwks_uri: `http://127.0.0.1:${jwks.address().port}/`,
  grant_types: ['client_credentials'],
});
await put('/AccessPolicy/bench', {
  engine: 'allow',
  link: [{ id: 'bench', resourceType: 'Client' }],
});

const env = {
  PATH: process.env.PATH,
  HOME: home,
  NO_COLOR: '1',
  SMART_BASE_URL: sandbox.url,
  SMART_CLIENT_ID: 'bench',
  SMART_KEY: join(home, 'key.pem'),
  // spawnSync blocks this process (and the sandbox in it): a request would time out fast.
  SMART_TIMEOUT: '2',
};
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

// Fills the discovery and token caches; async, since the sandbox runs in this process.
await promisify(execFile)(process.execPath, [bin, 'token'], { env });
const before = sandbox.requests.length;
const cases = [
  ['node -e 0', ['-e', '0']],
  ['smart --version', [bin, '--version']],
  ['smart token (warm)', [bin, 'token']],
];
const samples = new Map(cases.map(([name]) => [name, []]));
for (const [, args] of cases) for (let i = 0; i < 3; i++) time(args);
for (let i = 0; i < runs; i++) for (const [name, args] of cases) samples.get(name).push(time(args));
const requests = sandbox.requests.length - before;

const base = median(samples.get('node -e 0'));
const version = median(samples.get('smart --version'));
for (const [name] of cases) {
  const m = median(samples.get(name));
  console.log(
    `${name.padEnd(20)} median ${m.toFixed(1).padStart(7)} ms  ${(m / base).toFixed(2)}x node  ${(m / version).toFixed(2)}x --version`,
  );
}
console.log(`HTTP requests during ${runs + 3} warm \`smart token\` runs: ${requests}`);
jwks.close();
await sandbox.close();
process.exit(requests === 0 ? 0 : 1);
