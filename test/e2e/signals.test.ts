import { execa, type ResultPromise } from 'execa';
import { request, Agent } from 'node:http';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { BIN, makeWorkspace } from '../helpers/cli.js';
import { startBulkStub } from '../helpers/bulk-stub.js';
import { streamText } from '../helpers/wait.js';

/** SIGTERM and SIGINT: exit codes, and servers that stop even with connections open. */

const running: ResultPromise[] = [];
afterEach(async () => {
  for (const c of running.splice(0)) {
    if (c.exitCode === null) c.kill('SIGKILL');
    await c.catch(() => undefined);
  }
});

function start(args: string[], env: Record<string, string> = {}, ws = makeWorkspace()) {
  const child = execa(process.execPath, [BIN, ...args], {
    env: { PATH: process.env.PATH!, NO_COLOR: '1', ...ws.env, ...env },
    extendEnv: false,
    reject: false,
    cwd: ws.home,
    stdin: 'ignore',
  });
  running.push(child);
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const firstLine = new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', resolve);
    child.once('exit', () => reject(new Error(`exited early: ${stderr}`)));
  });
  return { child, firstLine, stderr: () => stderr };
}

/** A GET on a keep-alive agent, left open afterwards; resolves with the status. */
function get(url: string, agent: Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('signals', () => {
  it('SIGTERM exits 143 (SIGINT is 130), with the export kept to resume', async () => {
    const ws = makeWorkspace();
    const stub = await startBulkStub(ws, {
      // The status never completes: the export waits until the signal.
      status: (_n, res) => {
        res.writeHead(202, { 'retry-after': '30' }).end();
        return true;
      },
    });
    try {
      for (const [signal, code] of [
        ['SIGTERM', 143],
        ['SIGINT', 130],
      ] as const) {
        const { child, stderr } = start(
          ['export', '--out', `${ws.home}/out-${signal}`, '-o', 'ndjson'],
          stub.env,
          ws,
        );
        // Observed: the job was accepted (the ndjson event) before the signal.
        await streamText(child.stdout!).until('"accepted"');
        child.kill(signal);
        const r = await child;
        expect(r.exitCode, stderr()).toBe(code);
        expect(stderr()).toContain('to resume: smart export --resume');
      }
    } finally {
      await stub.close();
    }
  });

  it('smart sandbox stops within a second of SIGTERM with a keep-alive connection and a slow request open', async () => {
    const { child, firstLine, stderr } = start([
      'sandbox',
      '--port',
      '0',
      '-o',
      'json',
      '--fault',
      'delay:/fhir/Patient:ms=20000',
    ]);
    const { fhirUrl } = JSON.parse(await firstLine) as { fhirUrl: string };
    const agent = new Agent({ keepAlive: true });
    try {
      expect(await get(`${fhirUrl}/metadata`, agent)).toBe(200);
      // A slow request in flight: sent, its headers written on an open connection.
      let sent!: () => void;
      const written = new Promise<void>((r) => (sent = r));
      const slow = new Promise<number>((resolve) => {
        const req = request(
          `${fhirUrl}/Patient`,
          { agent: new Agent({ keepAlive: true }) },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
            res.on('error', () => resolve(-1));
          },
        );
        req.on('error', () => resolve(-1));
        req.end(() => sent());
      });
      await written;
      const t0 = Date.now();
      child.kill('SIGTERM');
      const r = await child;
      const took = Date.now() - t0;
      expect(r.exitCode, stderr()).toBe(0);
      expect(stderr()).toContain('sandbox stopped');
      // 1 s of grace for the request in flight, then it is cut (not 20 s).
      expect(took).toBeLessThan(5000);
      expect(await slow).toBe(-1);
    } finally {
      agent.destroy();
    }
  });

  it('smart jwks serve stops on SIGINT with a keep-alive connection open, exit 0', async () => {
    const ws = makeWorkspace();
    const kg = await execa(process.execPath, [BIN, 'keygen', '--alg', 'ES384'], {
      env: { PATH: process.env.PATH!, NO_COLOR: '1', ...ws.env },
      extendEnv: false,
      reject: false,
      cwd: ws.home,
    });
    expect(kg.exitCode, kg.stderr).toBe(0);
    const { child, firstLine, stderr } = start(
      ['jwks', 'serve', '--port', '0', '-o', 'json'],
      {},
      ws,
    );
    const { url } = JSON.parse(await firstLine) as { url: string };
    const agent = new Agent({ keepAlive: true });
    try {
      expect(await get(url, agent)).toBe(200);
      const t0 = Date.now();
      child.kill('SIGINT');
      const r = await child;
      expect(r.exitCode, stderr()).toBe(0);
      expect(Date.now() - t0).toBeLessThan(5000);
    } finally {
      agent.destroy();
    }
  });
});
