import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { runSmart } from '../helpers/cli.js';
import {
  ESCAPED,
  ESCAPES,
  smartOnTty,
  startHostile,
  type HostileServer,
} from '../helpers/hostile.js';

/**
 * The built CLI against a server that misbehaves in one precise way per route
 * (test/helpers/hostile.ts): every failure is one line with the documented exit code, nothing
 * hangs, and nothing from the server reaches a terminal raw.
 */

let h: HostileServer;
beforeAll(async () => {
  h = await startHostile();
});
afterAll(() => h?.close());

const run = (args: string[], env: Record<string, string> = {}) =>
  runSmart(args, { ws: h.ws, env: { ...h.env, ...env } });
const onTty = (args: string[], env: Record<string, string> = {}) =>
  smartOnTty(args, { ws: h.ws, env: { ...h.env, ...env } });

/** No raw terminal control from the server: no ESC, BEL or C1 CSI. */
function expectInert(text: string) {
  expect(text).not.toContain('\u001b');
  expect(text).not.toContain('\u0007');
  expect(text).not.toContain('\u009b');
}

describe('paging cycles', () => {
  it('stops when a next link points back to an earlier page (2 -> 3 -> 2)', async () => {
    const before = h.hits.filter((x) => x.startsWith('GET /fhir/Cycle')).length;
    const r = await run(['query', 'Cycle', '--all', '-o', 'ndjson']);
    expect(r.exitCode, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/^error: next link of page 3 points back to page 2: /m);
    expect(r.stderr).toContain('hint: ');
    expect(r.stderr).not.toMatch(/\n\s+at /);
    // Three pages, each fetched once.
    expect(h.hits.filter((x) => x.startsWith('GET /fhir/Cycle')).length - before).toBe(3);
    expect(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).id),
    ).toEqual(['p1', 'p2', 'p3']);
  });
});

describe('terminal injection', () => {
  it('a table cell shows the escapes of a resource, not their effect', async () => {
    const r = await onTty(['query', 'Patient']);
    expect(r.exitCode, r.output).toBe(0);
    expectInert(r.output);
    expect(r.output).toContain('female\\u001b[2J');
    expect(r.output).toContain('shown 1 of 1');
  });

  it('a read as a table, and CSV on a terminal, are escaped too', async () => {
    const read = await onTty(['query', 'Patient/evil']);
    expect(read.exitCode, read.output).toBe(0);
    expectInert(read.output);
    expect(read.output).toContain('female\\u001b');
    const csv = await onTty(['query', 'Patient', '-o', 'csv']);
    expect(csv.exitCode, csv.output).toBe(0);
    expectInert(csv.output);
    expect(csv.output).toContain(`female${ESCAPED}`);
  });

  it('CSV and JSON to a pipe stay byte-exact', async () => {
    const csv = await run(['query', 'Patient', '-o', 'csv']);
    expect(csv.exitCode, csv.stderr).toBe(0);
    expect(csv.stdout).toContain(`female${ESCAPES}`);
    const json = await run(['query', 'Patient/evil', '-o', 'json']);
    expect(JSON.parse(json.stdout).gender).toBe(`female${ESCAPES}`);
  });

  it("an OperationOutcome's diagnostics on the error line are escaped (pipe and terminal)", async () => {
    const piped = await run(['query', 'Outcome']);
    expect(piped.exitCode).toBe(1);
    expectInert(piped.stderr);
    expect(piped.stderr).toContain(`bad search${ESCAPED}`);
    expect(piped.stderr.trim().split('\n').length).toBeLessThanOrEqual(2);
    const tty = await onTty(['query', 'Outcome']);
    expect(tty.exitCode).toBe(1);
    expectInert(tty.output);
    expect(tty.output).toContain(`bad search${ESCAPED}`);
  });

  it('api: a body to a terminal is escaped, to a pipe byte-exact', async () => {
    const tty = await onTty(['api', 'Text']);
    expect(tty.exitCode, tty.output).toBe(0);
    expectInert(tty.output);
    expect(tty.output).toContain(`line one${ESCAPED}\nline two\n`);
    const json = await onTty(['api', 'Patient/evil']);
    expect(json.exitCode, json.output).toBe(0);
    expectInert(json.output);
    expect(json.output).toContain('"gender": "female\\u001b[2J');
    const piped = await run(['api', 'Text']);
    expect(piped.exitCode, piped.stderr).toBe(0);
    expect(piped.stdout).toBe(`line one${ESCAPES}\nline two\n`);
  });

  it("discover's fields and decode's claims are escaped on a terminal", async () => {
    const d = await onTty(['discover']);
    expectInert(d.output);
    expect(d.output).toContain(`private_key_jwt${ESCAPED}`);
    const jwt = [
      { alg: 'none', typ: `JWT${ESCAPES}` },
      { sub: `someone${ESCAPES}`, exp: 4102444800 },
    ]
      .map((part) => Buffer.from(JSON.stringify(part)).toString('base64url'))
      .concat('sig')
      .join('.');
    const r = await onTty(['decode', jwt]);
    expect(r.exitCode, r.output).toBe(0);
    expectInert(r.output);
    expect(r.output).toContain('someone\\u001b[2J');
  });
});

describe('huge tables', () => {
  it('query --all -o table renders 125,000 rows, widths from the first page', async () => {
    const r = await run(['query', 'Many', '--all', '-o', 'table'], { COLUMNS: '100' });
    expect(r.exitCode, r.stderr.slice(0, 500)).toBe(0);
    expect(r.stderr).toBe('shown 125000 of 125000\n');
    const lines = r.stdout.trimEnd().split('\n');
    // Top border, header, 125,000 rows, bottom border.
    expect(lines.length).toBe(125_003);
    expect(lines[2]).toMatch(/^│ p0 +│ +│ name: N0 Short +│$/);
    // Later pages are cut to the first page's widths.
    const last = lines[lines.length - 2]!;
    expect(last).toMatch(/^│ p124… │ +│ name: N124999 Mu… │$/);
    expect(new Set(lines.map((l) => l.length)).size).toBe(1);
  }, 180_000);
});

describe('unbounded bodies (--max-response)', () => {
  /** One line, exit 1, and the server saw the client stop reading. */
  function expectTooLarge(r: { exitCode: number; stderr: string }, url: string, mib: number) {
    expect(r.exitCode, r.stderr).toBe(1);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines[0]).toBe(`error: response from ${url} is over ${mib} MiB`);
    expect(lines.length).toBeLessThanOrEqual(2);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  }

  it('a search page that never ends stops at --max-response 1 (streamed page)', async () => {
    const r = await run(['query', 'Endless', '--max-response', '1', '-o', 'ndjson']);
    expectTooLarge(r, `${h.fhirUrl}/Endless`, 1);
    expect(r.stderr).toContain('hint: raise --max-response');
    expect(r.stderr).toContain('smart api');
  });

  it('a read that never ends stops at the cap from SMART_MAX_RESPONSE', async () => {
    const before = h.endlessBytes();
    const r = await run(['query', 'Patient/endless', '-o', 'json'], { SMART_MAX_RESPONSE: '2' });
    expectTooLarge(r, `${h.fhirUrl}/Patient/endless`, 2);
    // The socket was dropped near the cap, not read on for ever (socket buffers allow some slack).
    expect(h.endlessBytes() - before).toBeLessThan(64 * 1024 * 1024);
  });

  it('an error body (OperationOutcome) that never ends is capped too', async () => {
    // `api` streams a 2xx body, but reads an error body whole to describe it; query too.
    const api = await run(['api', 'EndlessOutcome', '--max-response', '1']);
    expectTooLarge(api, `${h.fhirUrl}/EndlessOutcome`, 1);
    const query = await run(['query', 'EndlessOutcome', '--max-response', '1']);
    expectTooLarge(query, `${h.fhirUrl}/EndlessOutcome`, 1);
  });

  it('a token answer that never ends stops at 1 MiB, whatever --max-response says', async () => {
    const r = await run(['token', '--no-cache', '--max-response', '100'], {
      SMART_TOKEN_URL: `${h.url}/token-endless`,
    });
    expectTooLarge(r, `${h.url}/token-endless`, 1);
    expect(r.stderr).toContain('hint: a token or discovery answer is never this big');
  });

  it('a discovery document that never ends stops at 1 MiB', async () => {
    const fhir = `${h.url}/endless-fhir`;
    const r = await run(['discover', fhir]);
    expectTooLarge(r, `${fhir}/.well-known/smart-configuration`, 1);
  });

  it('a bad --max-response is a usage error', async () => {
    const r = await run(['query', 'Patient/evil', '--max-response', 'lots']);
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toContain('"lots" is not a positive number of MiB');
  });
});

describe('output errors', () => {
  it('stdout on a full disk: one line on stderr, exit 1 (token, query, api)', async () => {
    const { spawn } = await import('node:child_process');
    const { BIN } = await import('../helpers/cli.js');
    const { openSync, closeSync } = await import('node:fs');
    // A descriptor, not a path: the child writes to /dev/full itself.
    const full = openSync('/dev/full', 'w');
    onTestFinished(() => closeSync(full));
    for (const args of [['token'], ['query', 'Patient/evil', '-o', 'json'], ['api', 'Text']]) {
      const child = spawn(process.execPath, [BIN, ...args], {
        env: { PATH: process.env.PATH, NO_COLOR: '1', ...h.ws.env, ...h.env },
        stdio: ['ignore', full, 'pipe'],
        cwd: h.ws.home,
      });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const exitCode = await new Promise<number | null>((r) => child.on('close', r));
      const r = { exitCode, stderr: stderr.trimEnd() };
      expect(r.exitCode, `${args.join(' ')}: ${r.stderr}`).toBe(1);
      expect(r.stderr).toBe('error: cannot write output: no space left on device');
    }
  });
});

describe('small ones', () => {
  it('a redirect loop is its own error (exit 1), not a network error', async () => {
    const r = await run(['query', 'Loop', '-o', 'json']);
    expect(r.exitCode, r.stderr).toBe(1);
    expect(r.stderr).toContain(`error: ${h.fhirUrl}/Loop redirected more than 20 times`);
    expect(r.stderr).toContain('hint: the server sends redirects in a loop');
    expect(r.stderr).not.toContain('is the server running');
    expect(r.stderr).not.toContain('running and reachable');
    // 21 requests, not more: the loop was cut.
    expect(h.hits.filter((x) => x.startsWith('GET /fhir/Loop')).length).toBeLessThanOrEqual(22);
  });

  it('https:// to a plain-http port: "does not speak TLS", not a private-CA hint', async () => {
    const https = h.url.replace(/^http:/, 'https:');
    const r = await run(['discover', `${https}/fhir`]);
    expect(r.exitCode, r.stderr).toBe(4);
    expect(r.stderr).toContain(
      `error: the server at ${new URL(h.url).host} does not speak TLS on this port (try http://)`,
    );
    expect(r.stderr).toContain(`hint: if it is a plain http server, use ${h.url}/fhir`);
    expect(r.stderr).not.toMatch(/ca-file|private CA|NODE_EXTRA_CA_CERTS/);
  });

  it('a corrupt config.json: the hint names the file and `smart config path`, which works', async () => {
    const { mkdirSync, writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { makeWorkspace } = await import('../helpers/cli.js');
    const ws = makeWorkspace();
    const file = join(ws.config, 'smart', 'config.json');
    mkdirSync(join(ws.config, 'smart'), { recursive: true });
    writeFileSync(file, '{"profiles": {');
    const r = await runSmart(['config', 'list'], { ws });
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toContain(`error: config file ${file} is not valid JSON`);
    expect(r.stderr).toContain(`hint: fix the JSON in ${file}`);
    expect(r.stderr).toContain('`smart config path`');
    const path = await runSmart(['config', 'path'], { ws });
    expect(path.exitCode, path.stderr).toBe(0);
    expect(path.stdout).toBe(`${file}\n`);
  });

  it('an unknown key in config.json: the hint `smart config unset <key>` works', async () => {
    const { mkdirSync, readFileSync, writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { makeWorkspace } = await import('../helpers/cli.js');
    const ws = makeWorkspace();
    const file = join(ws.config, 'smart', 'config.json');
    mkdirSync(join(ws.config, 'smart'), { recursive: true });
    writeFileSync(file, JSON.stringify({ profiles: { default: { scpoe: 'x', clientId: 'c' } } }));
    const r = await runSmart(['config', 'list'], { ws });
    expect(r.exitCode, r.stderr).toBe(2);
    const hint = /hint: remove it with `(smart [^`]+)`/.exec(r.stderr);
    expect(hint?.[1]).toBe('smart --profile default config unset scpoe');
    const unset = await runSmart(hint![1]!.split(' ').slice(1), { ws });
    expect(unset.exitCode, unset.stderr).toBe(0);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({
      profiles: { default: { clientId: 'c' } },
    });
    expect((await runSmart(['config', 'list'], { ws })).exitCode).toBe(0);
  });

  it('a --ca-file holding no certificate is exit 2', async () => {
    const { writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const file = join(h.ws.home, 'empty.pem');
    writeFileSync(file, 'not a certificate\n');
    const r = await run(['query', 'Patient/evil', '--ca-file', file]);
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toContain(`error: CA file ${file} holds no PEM certificate`);
  });
});
