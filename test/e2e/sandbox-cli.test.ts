import { execa, type ResultPromise } from 'execa';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { BIN, makeWorkspace, runSmart } from '../helpers/cli.js';
import { type StreamText, streamText } from '../helpers/wait.js';

/** `smart sandbox` as a user runs it: the built bin, a scrubbed environment, real signals. */

interface Started {
  child: ResultPromise;
  info: {
    url: string;
    tokenUrl: string;
    fhirUrl: string;
    adminClientId: string;
    adminSecret: string;
  };
  stderr: StreamText;
}

const running: ResultPromise[] = [];
afterEach(async () => {
  for (const c of running.splice(0)) {
    if (c.exitCode === null) c.kill('SIGKILL');
    await c.catch(() => undefined);
  }
});

async function startCli(args: string[], env: Record<string, string> = {}): Promise<Started> {
  const ws = makeWorkspace();
  const child = execa(process.execPath, [BIN, 'sandbox', '--port', '0', '-o', 'json', ...args], {
    env: { PATH: process.env.PATH!, NO_COLOR: '1', ...ws.env, ...env },
    extendEnv: false,
    reject: false,
    cwd: ws.home,
    stdin: 'ignore',
  });
  running.push(child);
  const stderr = streamText(child.stderr!);
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', resolve);
    child.once('exit', () => reject(new Error(`exited early: ${stderr()}`)));
  });
  return { child, info: JSON.parse(line) as Started['info'], stderr };
}

describe('smart sandbox (the CLI)', () => {
  it('--help shows the options and examples', async () => {
    const r = await runSmart(['sandbox', '--help']);
    expect(r.exitCode).toBe(0);
    for (const flag of ['--port', '--host', '--data', '--generate', '--admin-secret', '--fault']) {
      expect(r.stdout).toContain(flag);
    }
    expect(r.stdout).toMatch(/Examples:\n\s+\$ smart sandbox\n/);
  });

  it('prints the banner, serves with the flag faults and latency, logs one line per request without secrets, stops on SIGTERM', async () => {
    const s = await startCli(
      ['--fault', '429:/fhir/metadata:1:retry-after=2', '--latency', '150'],
      { SMART_SANDBOX_ADMIN_SECRET: 'env-secret-123' },
    );
    const { url, tokenUrl, fhirUrl, adminSecret } = s.info;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(adminSecret).toBe('env-secret-123');
    await s.stderr.until('Ctrl-C');
    expect(s.stderr()).toMatch(new RegExp(`base URL\\s+${url}\\n`));
    expect(s.stderr()).toMatch(new RegExp(`token URL\\s+${tokenUrl}\\n`));
    expect(s.stderr()).toMatch(new RegExp(`FHIR base\\s+${fhirUrl}\\n`));
    expect(s.stderr()).toMatch(/admin\s+client root, secret env-secret-123 /);

    // --fault: the first metadata request gets 429 + Retry-After; --latency slows every answer.
    const first = await fetch(`${fhirUrl}/metadata`);
    expect(first.status).toBe(429);
    expect(first.headers.get('retry-after')).toBe('2');
    expect((await first.json()) as object).toMatchObject({ resourceType: 'OperationOutcome' });
    const t0 = Date.now();
    const second = await fetch(`${fhirUrl}/metadata`);
    expect(second.status).toBe(200);
    await second.arrayBuffer();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);

    // A client signs its own assertion (jose, not our client code) and reads data.
    const { privateKey, publicKey } = await generateKeyPair('RS384', { extractable: true });
    const jwk = await exportJWK(publicKey);
    const kid = await calculateJwkThumbprint(jwk);
    const admin = {
      authorization: `Basic ${Buffer.from(`root:${adminSecret}`).toString('base64')}`,
      'content-type': 'application/json',
    };
    const put = (path: string, body: unknown) =>
      fetch(`${url}${path}`, { method: 'PUT', headers: admin, body: JSON.stringify(body) });
    const client = await put('/Client/cli-app', {
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
      jwks: [{ ...jwk, kid, alg: 'RS384', use: 'sig' }],
    });
    expect(client.status).toBe(201);
    expect(
      (
        await put('/AccessPolicy/cli-app', {
          engine: 'allow',
          link: [{ resourceType: 'Client', id: 'cli-app' }],
        })
      ).status,
    ).toBe(201);
    const now = Math.floor(Date.now() / 1000);
    const assertion = await new SignJWT({ jti: randomUUID() })
      .setProtectedHeader({ alg: 'RS384', kid, typ: 'JWT' })
      .setIssuer('cli-app')
      .setSubject('cli-app')
      .setAudience(tokenUrl)
      .setExpirationTime(now + 240)
      .sign(privateKey);
    const tok = await fetch(tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: assertion,
        scope: 'system/Observation.read',
      }),
    });
    expect(tok.status).toBe(200);
    const { access_token: token } = (await tok.json()) as { access_token: string };
    const obs = await fetch(`${fhirUrl}/Observation?code=4548-4&_count=2`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(obs.status).toBe(200);
    await obs.arrayBuffer();

    await s.stderr.until(/GET \/fhir\/Observation\S* 200/);
    s.child.kill('SIGTERM');
    const done = await s.child;
    expect(done.exitCode).toBe(0);
    const stderr = s.stderr();
    expect(stderr).toMatch(/sandbox stopped\n$/);
    const log = stderr.split('\n').filter((l) => /^(GET|POST|PUT|DELETE) /.test(l));
    expect(log).toEqual([
      expect.stringMatching(/^GET \/fhir\/metadata 429 \d+ms fault=429$/),
      expect.stringMatching(/^GET \/fhir\/metadata 200 \d+ms$/),
      expect.stringMatching(/^PUT \/Client\/cli-app 201 \d+ms client=root$/),
      expect.stringMatching(/^PUT \/AccessPolicy\/cli-app 201 \d+ms client=root$/),
      expect.stringMatching(/^POST \/auth\/token 200 \d+ms client=cli-app$/),
      expect.stringMatching(
        /^GET \/fhir\/Observation\?code=4548-4&_count=2 200 \d+ms client=cli-app$/,
      ),
    ]);
    for (const secret of [adminSecret, token, assertion, token.split('.')[2]!]) {
      expect(log.join('\n')).not.toContain(secret);
    }
    await expect(fetch(`${fhirUrl}/metadata`)).rejects.toThrow();
  });

  it('generates an admin secret when none is given, and stops cleanly on SIGINT', async () => {
    const s = await startCli([]);
    const secret = s.info.adminSecret;
    expect(secret.length).toBeGreaterThanOrEqual(16);
    await s.stderr.until('Ctrl-C');
    expect(s.stderr()).toContain(`secret ${secret} `);
    const ok = await fetch(`${s.info.url}/Client`, {
      headers: { authorization: `Basic ${Buffer.from(`root:${secret}`).toString('base64')}` },
    });
    expect(ok.status).toBe(200);
    const wrong = await fetch(`${s.info.url}/Client`, {
      headers: { authorization: `Basic ${Buffer.from('root:guess').toString('base64')}` },
    });
    expect(wrong.status).toBe(401);
    s.child.kill('SIGINT');
    const done = await s.child;
    expect(done.exitCode).toBe(0);
    expect(s.stderr()).toMatch(/sandbox stopped\n$/);
  });

  it('a port in use: one error line and its hint, exit 1, no stack trace', async () => {
    const s = await startCli([]);
    const port = new URL(s.info.url).port;
    const r = await runSmart(['sandbox', '--port', port]);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `error: port ${port} on 127.0.0.1 is already in use\n` +
        'hint: choose another with --port, or --port 0 for any free port\n',
    );
    s.child.kill('SIGTERM');
    expect((await s.child).exitCode).toBe(0);
  });
});
