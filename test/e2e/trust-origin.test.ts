import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { json, makeWorkspace, runSmart, type Workspace } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';
import { sendJson, startStubServer, type StubServer } from './query-flow.js';

/**
 * --trust-origin: a manifest with requiresAccessToken: true whose files live on another origin
 * (a file server of its own, as some servers put their storage). Refused, naming the flag, before
 * any download; with the origin trusted, the token goes there, and never to one not trusted.
 */

interface FileServer {
  url: string;
  hits: Array<{ url: string; authorization?: string }>;
  close(): Promise<void>;
}

const BODY = '{"resourceType":"Patient","id":"a"}\n{"resourceType":"Patient","id":"b"}\n';

async function startFileServer(): Promise<FileServer> {
  const hits: FileServer['hits'] = [];
  const server: Server = createServer((req, res) => {
    const h: IncomingHttpHeaders = req.headers;
    hits.push({
      url: req.url ?? '/',
      ...(h.authorization ? { authorization: h.authorization } : {}),
    });
    if (!h.authorization?.startsWith('Bearer stub-token-')) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"no token"}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/fhir+ndjson' }).end(BODY);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('smart export --trust-origin', () => {
  let ws: Workspace;
  let fhir: StubServer;
  let storage: FileServer;
  let other: FileServer;
  /** The file origins of the next manifest. */
  let origins: string[] = [];

  beforeAll(async () => {
    ws = makeWorkspace();
    storage = await startFileServer();
    other = await startFileServer();
    let job = 0;
    fhir = await startStubServer(ws, (req, res, origin) => {
      if (req.url.startsWith('/fhir/$export')) {
        job++;
        res.writeHead(202, { 'content-location': `${origin}/fhir/status/job-${job}` }).end();
        return;
      }
      if (req.url.startsWith('/fhir/status/')) {
        sendJson(
          res,
          200,
          {
            transactionTime: '2024-06-01T00:00:00Z',
            request: `${origin}/fhir/$export`,
            requiresAccessToken: true,
            output: origins.map((o, i) => ({
              type: 'Patient',
              url: `${o}/files/patients-${i}.ndjson`,
              count: 2,
            })),
            error: [],
          },
          'application/json',
        );
        return;
      }
      sendJson(res, 404, { resourceType: 'OperationOutcome', issue: [] });
    });
  });
  afterAll(async () => {
    await fhir?.close();
    await storage?.close();
    await other?.close();
  });

  it('refuses files on another origin naming --trust-origin (exit 1); --resume with it sends the token there', async () => {
    origins = [storage.url];
    const dir = join(tempDir('smart-trust-'), 'out');
    const r = await runSmart(['export', '--type', 'Patient', '--out', dir], { ws, env: fhir.env });
    expect(r.exitCode, r.stderr).toBe(1);
    expect(r.stderr).toContain(
      `error: the manifest's files on ${storage.url} need the access token (requiresAccessToken: true), but that is not the FHIR server's origin (${fhir.url}): refusing to send the token there`,
    );
    expect(r.stderr).toContain(`--trust-origin ${storage.url}`);
    expect(r.stderr).toContain(`smart export --resume ${dir} --trust-origin ${storage.url}`);
    expect(storage.hits).toEqual([]);

    const again = await runSmart(
      ['export', '--resume', dir, '--trust-origin', storage.url, '-o', 'json'],
      { ws, env: fhir.env },
    );
    expect(again.exitCode, again.stderr).toBe(0);
    expect(json<{ resources: number }>(again).resources).toBe(2);
    expect(readFileSync(join(dir, 'Patient.000.ndjson'), 'utf8')).toBe(BODY);
    expect(storage.hits).toHaveLength(1);
    expect(storage.hits[0]!.authorization).toMatch(/^Bearer stub-token-\d+$/);
    expect(again.stderr + again.stdout).not.toContain('stub-token-');
  });

  it('never sends the token to an origin not trusted, even when another one is (SMART_TRUST_ORIGIN)', async () => {
    origins = [storage.url, other.url];
    const before = storage.hits.length;
    const dir = join(tempDir('smart-trust-'), 'out');
    const r = await runSmart(['export', '--type', 'Patient', '--out', dir], {
      ws,
      env: { ...fhir.env, SMART_TRUST_ORIGIN: `${storage.url}/` },
    });
    expect(r.exitCode, r.stderr).toBe(1);
    expect(r.stderr).toContain(`error: the manifest's files on ${other.url} need the access token`);
    expect(r.stderr).toContain(`--trust-origin ${other.url}`);
    expect(r.stderr).not.toContain(`--trust-origin ${storage.url}`);
    // Refused before any download: neither origin saw a request.
    expect(other.hits).toEqual([]);
    expect(storage.hits).toHaveLength(before);
    expect(existsSync(join(dir, 'export.json'))).toBe(true);
  });

  it('the profile key trustedOrigins is an array in the config file; a bad origin is exit 2', async () => {
    const ws2 = makeWorkspace();
    const set = await runSmart(['config', 'set', 'trustedOrigins', `${storage.url},${other.url}`], {
      ws: ws2,
    });
    expect(set.exitCode, set.stderr).toBe(0);
    const file = JSON.parse(readFileSync(join(ws2.config, 'smart', 'config.json'), 'utf8')) as {
      profiles: Record<string, { trustedOrigins?: unknown }>;
    };
    expect(Object.values(file.profiles)[0]!.trustedOrigins).toEqual([storage.url, other.url]);
    const get = await runSmart(['config', 'get', 'trustedOrigins'], { ws: ws2 });
    expect(get.stdout.trim()).toBe(`${storage.url},${other.url}`);

    origins = [storage.url, other.url];
    const dir = join(tempDir('smart-trust-'), 'out');
    const r = await runSmart(['export', '--type', 'Patient', '--out', dir, '-o', 'json'], {
      ws: ws2,
      env: fhir.env,
    });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(other.hits.at(-1)!.authorization).toMatch(/^Bearer stub-token-\d+$/);

    const bad = await runSmart(
      ['export', '--trust-origin', 'https://files.example/x', '--out', dir],
      {
        ws: ws2,
        env: fhir.env,
      },
    );
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain(
      'error: --trust-origin: "https://files.example/x" is not an origin',
    );

    writeFileSync(
      join(ws2.config, 'smart', 'config.json'),
      JSON.stringify({ profiles: { default: { trustedOrigins: storage.url } } }),
    );
    const wrong = await runSmart(['config', 'get', 'trustedOrigins'], { ws: ws2 });
    expect(wrong.exitCode).toBe(2);
    expect(wrong.stderr).toContain('trustedOrigins must be an array of strings');
  });
});
