import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT, createLocalJWKSet, importPKCS8, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { json, makeWorkspace, runSmart } from '../helpers/cli.js';

interface KeygenJson {
  kid: string;
  alg: string;
  bits?: number;
  privateKey: string;
  jwks: string;
  publicJwk: Record<string, unknown>;
}

const PRIVATE = ['d', 'p', 'q', 'dp', 'dq', 'qi'];

describe('smart keygen', () => {
  it('defaults to RS384 2048 in <config>/smart/keys, mode 0600, and saves the key in the profile', async () => {
    const ws = makeWorkspace();
    const r = await runSmart(['keygen', '-o', 'json'], { ws });
    expect(r.exitCode).toBe(0);
    const out = json<KeygenJson>(r);
    const keysDir = join(ws.config, 'smart', 'keys');
    expect(out.alg).toBe('RS384');
    expect(out.bits).toBe(2048);
    expect(out.privateKey).toBe(join(keysDir, `private-rs384-${out.kid.slice(0, 8)}.pem`));
    expect(out.jwks).toBe(join(keysDir, 'jwks.json'));
    expect(statSync(out.privateKey).mode & 0o777).toBe(0o600);
    expect(statSync(out.jwks).mode & 0o777).toBe(0o644);
    const pem = readFileSync(out.privateKey, 'utf8');
    expect(pem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(r.stdout).not.toContain('PRIVATE KEY');

    const jwks = JSON.parse(readFileSync(out.jwks, 'utf8')) as {
      keys: Array<Record<string, unknown>>;
    };
    expect(jwks.keys).toHaveLength(1);
    const [jwk] = jwks.keys;
    expect(jwk).toMatchObject({ kty: 'RSA', kid: out.kid, alg: 'RS384', use: 'sig', e: 'AQAB' });
    for (const m of PRIVATE) expect(jwk).not.toHaveProperty(m);
    expect(Buffer.from(jwk!.n as string, 'base64url').length * 8).toBe(2048);
    expect(out.publicJwk).toEqual(jwk);

    // The key signs, the JWKS verifies.
    const jwt = await new SignJWT({})
      .setProtectedHeader({ alg: 'RS384', kid: out.kid })
      .setIssuer('me')
      .sign(await importPKCS8(pem, 'RS384'));
    await jwtVerify(jwt, createLocalJWKSet(jwks as never));

    expect(r.stderr).toContain('saved key and alg in profile "default"');
    const config = JSON.parse(readFileSync(join(ws.config, 'smart', 'config.json'), 'utf8'));
    expect(config).toEqual({
      currentProfile: 'default',
      profiles: { default: { key: out.privateKey, alg: 'RS384' } },
    });
    const got = await runSmart(['config', 'get', 'key'], { ws });
    expect(got.stdout).toBe(`${out.privateKey}\n`);
  });

  it('makes ES384 keys on P-384', async () => {
    const ws = makeWorkspace();
    const out = json<KeygenJson>(await runSmart(['keygen', '--alg', 'ES384', '--json'], { ws }));
    expect(out.alg).toBe('ES384');
    expect(out.bits).toBeUndefined();
    expect(out.publicJwk).toMatchObject({ kty: 'EC', crv: 'P-384', alg: 'ES384', use: 'sig' });
    expect(out.publicJwk).not.toHaveProperty('d');
    expect(readFileSync(out.privateKey, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
  });

  it('rotates: a second key is added beside the first', async () => {
    const ws = makeWorkspace();
    const dir = join(ws.home, 'keys');
    const a = json<KeygenJson>(await runSmart(['keygen', '--dir', 'keys', '-o', 'json'], { ws }));
    const b = json<KeygenJson>(
      await runSmart(['keygen', '--dir', dir, '--alg', 'ES384', '-o', 'json'], { ws }),
    );
    expect(a.jwks).toBe(join(dir, 'jwks.json'));
    const jwks = JSON.parse(readFileSync(join(dir, 'jwks.json'), 'utf8'));
    expect(jwks.keys.map((k: { kid: string }) => k.kid)).toEqual([a.kid, b.kid]);
    expect(readdirSync(dir).sort()).toEqual(
      [
        'jwks.json',
        `private-es384-${b.kid.slice(0, 8)}.pem`,
        `private-rs384-${a.kid.slice(0, 8)}.pem`,
      ].sort(),
    );
    // The profile now points at the newest key.
    const config = JSON.parse(readFileSync(join(ws.config, 'smart', 'config.json'), 'utf8'));
    expect(config.profiles.default).toEqual({ key: b.privateKey, alg: 'ES384' });
  });

  it('never overwrites a key without --force', async () => {
    const ws = makeWorkspace();
    const first = json<KeygenJson>(
      await runSmart(['keygen', '--kid', 'fixed', '--no-save', '-o', 'json'], { ws }),
    );
    const before = readFileSync(first.privateKey, 'utf8');
    const again = await runSmart(['keygen', '--kid', 'fixed', '--no-save'], { ws });
    expect(again.exitCode).toBe(2);
    expect(again.stdout).toBe('');
    expect(again.stderr).toBe(
      `error: ${first.privateKey} already exists\nhint: use --force to replace it (the old key will be lost)\n`,
    );
    expect(readFileSync(first.privateKey, 'utf8')).toBe(before);
    const forced = await runSmart(
      ['keygen', '--kid', 'fixed', '--no-save', '--force', '-o', 'json'],
      {
        ws,
      },
    );
    expect(forced.exitCode).toBe(0);
    expect(readFileSync(first.privateKey, 'utf8')).not.toBe(before);
    const jwks = JSON.parse(readFileSync(first.jwks, 'utf8'));
    expect(jwks.keys).toHaveLength(1);
    expect(existsSync(join(ws.config, 'smart', 'config.json'))).toBe(false);
  });

  it('refuses a kid already in the JWKS', async () => {
    const ws = makeWorkspace();
    await runSmart(['keygen', '--kid', 'k', '--no-save'], { ws });
    const r = await runSmart(['keygen', '--alg', 'ES256', '--kid', 'k', '--no-save'], { ws });
    expect(r.exitCode).toBe(2);
    expect(r.stderr.split('\n')[0]).toContain('already holds a key with kid "k"');
    expect(readdirSync(join(ws.config, 'smart', 'keys'))).toHaveLength(2);
  });

  it.each([
    [['--alg', 'HS256'], 'error: unsupported algorithm "HS256"'],
    [['--bits', '1024'], 'error: --bits 1024 is not allowed'],
    [['--bits', 'many'], 'error: --bits "many" is not a number'],
    [
      ['--alg', 'ES384', '--bits', '2048'],
      'error: --bits applies to RSA keys only; ES384 uses the P-384 curve',
    ],
  ])('bad input %j is one error line and exit 2', async (args, line) => {
    const ws = makeWorkspace();
    const r = await runSmart(['keygen', ...args], { ws });
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines[0]).toBe(line);
    expect(lines.length).toBeLessThanOrEqual(2);
    expect(existsSync(join(ws.config, 'smart', 'keys'))).toBe(false);
  });

  it('prints kid, alg and paths as a table', async () => {
    const ws = makeWorkspace();
    const r = await runSmart(['keygen', '--no-save', '-o', 'table'], { ws });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(
      /^kid {10}\S+\nalg {10}RS384\nbits {9}2048\nprivate key {2}\S+\.pem\njwks {9}\S+jwks\.json\n$/,
    );
  });

  it('fails clearly on a jwks.json that is not a JWKS', async () => {
    const ws = makeWorkspace();
    const dir = join(ws.home, 'k');
    await runSmart(['keygen', '--dir', dir, '--no-save'], { ws });
    writeFileSync(join(dir, 'jwks.json'), '{"not":"a jwks"}');
    const r = await runSmart(['keygen', '--dir', dir, '--no-save', '--alg', 'ES384'], { ws });
    expect(r.exitCode).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe(
      `error: ${join(dir, 'jwks.json')} is not a JWKS (no "keys" array)`,
    );
  });
});
