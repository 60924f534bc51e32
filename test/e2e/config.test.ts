import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { json, makeWorkspace, runSmart, type Workspace } from '../helpers/cli.js';

const configFile = (ws: Workspace) => join(ws.config, 'smart', 'config.json');
const readConfig = (ws: Workspace) => JSON.parse(readFileSync(configFile(ws), 'utf8'));

describe('smart config', () => {
  it("an empty flag value is exit 2 before any request, not the profile's value", async () => {
    const ws = makeWorkspace();
    expect((await runSmart(['config', 'set', 'scope', 'system/Patient.rs'], { ws })).exitCode).toBe(
      0,
    );
    for (const args of [
      ['token', '--scope', ''],
      ['token', '--client-id', ''],
      ['config', 'get', 'scope', '--scope', ''],
    ]) {
      const r = await runSmart(args, { ws });
      expect(r.exitCode, args.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(
        /^error: --(scope|client-id) is empty\nhint: give a value, or leave/,
      );
    }
  });

  it('set / get / unset in the active profile', async () => {
    const ws = makeWorkspace();
    const set = await runSmart(['config', 'set', 'baseUrl', 'http://localhost:8080'], { ws });
    expect(set).toMatchObject({ exitCode: 0, stdout: '' });
    expect(set.stderr).toContain('set baseUrl in profile "default"');
    expect((await runSmart(['config', 'set', 'clientId', 'my-client'], { ws })).exitCode).toBe(0);
    expect(readConfig(ws)).toEqual({
      currentProfile: 'default',
      profiles: { default: { baseUrl: 'http://localhost:8080', clientId: 'my-client' } },
    });
    expect((await runSmart(['config', 'get', 'clientId'], { ws })).stdout).toBe('my-client\n');
    // Derived and default values resolve too.
    expect((await runSmart(['config', 'get', 'fhirUrl'], { ws })).stdout).toBe(
      'http://localhost:8080/fhir\n',
    );
    expect((await runSmart(['config', 'get', 'scope'], { ws })).stdout).toBe('system/*.read\n');
    // The environment wins over the profile.
    const env = await runSmart(['config', 'get', 'clientId'], {
      ws,
      env: { SMART_CLIENT_ID: 'from-env' },
    });
    expect(env.stdout).toBe('from-env\n');
    const asJson = await runSmart(['config', 'get', 'clientId', '--json'], { ws });
    expect(json(asJson)).toEqual({ key: 'clientId', value: 'my-client', source: 'profile' });

    expect((await runSmart(['config', 'unset', 'clientId'], { ws })).exitCode).toBe(0);
    expect(readConfig(ws).profiles.default).toEqual({ baseUrl: 'http://localhost:8080' });
    const missing = await runSmart(['config', 'get', 'clientId'], { ws });
    expect(missing.exitCode).toBe(1);
    expect(missing.stdout).toBe('');
    expect(missing.stderr.split('\n')[0]).toBe('error: clientId is not set (profile "default")');
  });

  it('stores key paths absolute and normalizes alg', async () => {
    const ws = makeWorkspace();
    const r = await runSmart(['config', 'set', 'key', 'keys/k.pem'], { ws });
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toContain('does not exist');
    await runSmart(['config', 'set', 'alg', 'es384'], { ws });
    expect(readConfig(ws).profiles.default).toEqual({
      key: join(ws.home, 'keys', 'k.pem'),
      alg: 'ES384',
    });
    const bad = await runSmart(['config', 'set', 'alg', 'none'], { ws });
    expect(bad.exitCode).toBe(2);
  });

  it('rejects unknown keys with a did-you-mean, bad values, and secrets', async () => {
    const ws = makeWorkspace();
    const typo = await runSmart(['config', 'set', 'baseURL', 'http://x'], { ws });
    expect(typo.exitCode).toBe(2);
    expect(typo.stderr.split('\n')[0]).toBe(
      'error: unknown config key "baseURL" (did you mean baseUrl?)',
    );
    const badUrl = await runSmart(['config', 'set', 'fhirUrl', 'not-a-url'], { ws });
    expect(badUrl.exitCode).toBe(2);
    expect(badUrl.stderr).toContain('fhirUrl');
    const secret = await runSmart(['config', 'set', 'adminSecret', 'hunter2'], { ws });
    expect(secret.exitCode).toBe(2);
    expect(secret.stderr).toContain('SMART_ADMIN_SECRET');
    expect(secret.stderr).not.toContain('hunter2');
  });

  it('lists resolved settings with their sources', async () => {
    const ws = makeWorkspace();
    await runSmart(['config', 'set', 'baseUrl', 'http://localhost:8080'], { ws });
    const r = await runSmart(['config', 'list', '--client-id', 'flag-client'], {
      ws,
      env: { SMART_SCOPE: 'system/Patient.rs', SMART_ADMIN_SECRET: 'do-not-show' },
    });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).not.toContain('do-not-show');
    expect(json(r)).toEqual({
      profile: 'default',
      profileExists: true,
      configFile: configFile(ws),
      settings: {
        profile: { value: 'default', source: 'profile' },
        baseUrl: { value: 'http://localhost:8080', source: 'profile' },
        fhirUrl: { value: 'http://localhost:8080/fhir', source: 'derived' },
        clientId: { value: 'flag-client', source: 'flag' },
        scope: { value: 'system/Patient.rs', source: 'env' },
        timeout: { value: '30', source: 'default' },
      },
      adminSecret: 'set (from the environment)',
    });
    const table = await runSmart(['config', 'list', '-o', 'table'], { ws });
    expect(table.stdout).toMatch(/baseUrl\s.*http:\/\/localhost:8080\s.*profile/);
    expect(table.stdout).toMatch(/scope\s.*system\/\*\.read\s.*default/);
  });

  it('writes to the profile named by --profile, and switches with use', async () => {
    const ws = makeWorkspace();
    await runSmart(['config', 'set', 'baseUrl', 'http://a.example'], { ws });
    const other = await runSmart(
      ['--profile', 'staging', 'config', 'set', 'baseUrl', 'http://b.example'],
      { ws },
    );
    expect(other.exitCode).toBe(0);
    expect(readConfig(ws)).toEqual({
      currentProfile: 'default',
      profiles: {
        default: { baseUrl: 'http://a.example' },
        staging: { baseUrl: 'http://b.example' },
      },
    });
    expect(
      (await runSmart(['config', 'get', 'baseUrl', '--profile', 'staging'], { ws })).stdout,
    ).toBe('http://b.example\n');

    const use = await runSmart(['config', 'use', 'staging'], { ws });
    expect(use.exitCode).toBe(0);
    expect(readConfig(ws).currentProfile).toBe('staging');
    expect((await runSmart(['config', 'get', 'baseUrl'], { ws })).stdout).toBe(
      'http://b.example\n',
    );
    expect((await runSmart(['config', 'get', 'profile'], { ws })).stdout).toBe('staging\n');

    const unknown = await runSmart(['config', 'use', 'prod'], { ws });
    expect(unknown.exitCode).toBe(2);
    expect(unknown.stderr).toBe(
      `error: profile "prod" does not exist in ${configFile(ws)}\nhint: known profiles: default, staging; pass --create to make an empty one, or run \`smart init --profile prod\`\n`,
    );
    expect((await runSmart(['config', 'use', 'prod', '--create'], { ws })).exitCode).toBe(0);
    expect(readConfig(ws).profiles.prod).toEqual({});
  });

  it('profiles: lists them (current marked), renames, deletes with --yes', async () => {
    const ws = makeWorkspace();
    const empty = await runSmart(['config', 'profiles', '-o', 'table'], { ws });
    expect(empty).toMatchObject({ exitCode: 0, stdout: '' });
    expect(empty.stderr).toContain('no profiles yet');
    await runSmart(['--profile', 'prod', 'config', 'set', 'baseUrl', 'http://prod.example'], {
      ws,
    });
    await runSmart(['--profile', 'prod', 'config', 'set', 'clientId', 'prod-client'], { ws });
    await runSmart(['config', 'use', 'local', '--create'], { ws });

    const list = await runSmart(['config', 'profiles', '-o', 'json'], { ws });
    expect(json(list)).toEqual([
      { name: 'prod', current: false, baseUrl: 'http://prod.example', clientId: 'prod-client' },
      { name: 'local', current: true },
    ]);
    const table = await runSmart(['config', 'profiles', '-o', 'table'], { ws });
    expect(table.stdout).toMatch(/│\s+│ prod\s+│ http:\/\/prod\.example │ prod-client │/);
    expect(table.stdout).toMatch(/│ \* +│ local /);
    expect((await runSmart(['config', 'profiles', '--names'], { ws })).stdout).toBe(
      'prod\nlocal\n',
    );
    // SMART_PROFILE is what commands use: it is the one marked.
    const env = await runSmart(['config', 'profiles', '-o', 'json'], {
      ws,
      env: { SMART_PROFILE: 'prod' },
    });
    expect(json<Array<{ current: boolean }>>(env).map((p) => p.current)).toEqual([true, false]);

    const rename = await runSmart(['config', 'rename', 'local', 'dev'], { ws });
    expect(rename.exitCode, rename.stderr).toBe(0);
    expect(rename.stderr).toContain('renamed profile "local" to "dev", still the current one');
    expect(readConfig(ws)).toEqual({
      currentProfile: 'dev',
      profiles: { prod: { baseUrl: 'http://prod.example', clientId: 'prod-client' }, dev: {} },
    });
    const taken = await runSmart(['config', 'rename', 'dev', 'prod'], { ws });
    expect(taken.exitCode).toBe(2);
    expect(taken.stderr.split('\n')[0]).toBe(
      `error: profile "prod" already exists in ${configFile(ws)}`,
    );
    const missing = await runSmart(['config', 'rename', 'nope', 'x'], { ws });
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toContain('hint: known profiles: prod, dev');

    // No terminal: --yes or exit 2, and nothing changes.
    const ask = await runSmart(['config', 'delete', 'dev'], { ws });
    expect(ask.exitCode).toBe(2);
    expect(ask.stderr).toBe(
      'error: not deleting profile "dev" without confirmation\nhint: pass --yes to delete it: smart config delete dev --yes\n',
    );
    expect(Object.keys(readConfig(ws).profiles)).toEqual(['prod', 'dev']);
    const del = await runSmart(['config', 'delete', 'dev', '--yes'], { ws });
    expect(del.exitCode, del.stderr).toBe(0);
    expect(del.stderr).toContain('deleted profile "dev"');
    expect(del.stderr).toContain('it was the current profile');
    expect(readConfig(ws)).toEqual({
      profiles: { prod: { baseUrl: 'http://prod.example', clientId: 'prod-client' } },
    });
    const gone = await runSmart(['config', 'delete', 'dev', '--yes'], { ws });
    expect(gone.exitCode).toBe(2);
    expect(gone.stderr.split('\n')[0]).toBe(
      `error: profile "dev" does not exist in ${configFile(ws)}`,
    );
  });

  it('list --profile shows another profile, list --all every profile as stored', async () => {
    const ws = makeWorkspace();
    await runSmart(['config', 'set', 'baseUrl', 'http://a.example'], { ws });
    await runSmart(['--profile', 'b', 'config', 'set', 'clientId', 'b-client'], { ws });
    await runSmart(['config', 'use', 'empty', '--create'], { ws });
    await runSmart(['config', 'use', 'default'], { ws });

    const one = await runSmart(['config', 'list', '--profile', 'b', '-o', 'json'], { ws });
    expect(json(one)).toMatchObject({
      profile: 'b',
      settings: { clientId: { value: 'b-client', source: 'profile' } },
    });
    const all = await runSmart(['config', 'list', '--all', '-o', 'json'], {
      ws,
      env: { SMART_CLIENT_ID: 'from-env' },
    });
    expect(json(all)).toEqual({
      configFile: configFile(ws),
      currentProfile: 'default',
      profiles: {
        default: { baseUrl: 'http://a.example' },
        b: { clientId: 'b-client' },
        empty: {},
      },
    });
    const table = await runSmart(['config', 'list', '--all', '-o', 'table'], { ws });
    expect(table.exitCode).toBe(0);
    expect(table.stdout).toMatch(/│ default \* │ baseUrl +│ http:\/\/a\.example │/);
    expect(table.stdout).toMatch(/│ b +│ clientId +│ b-client +│/);
    expect(table.stdout).toMatch(/│ empty +│ +│ \(empty\) +│/);
    expect(table.stderr).toContain(`3 profiles in ${configFile(ws)}`);
  });

  it('a malformed config file is exit 2 naming the file (and the key)', async () => {
    const ws = makeWorkspace();
    mkdirSync(join(ws.config, 'smart'), { recursive: true });
    writeFileSync(configFile(ws), '{"profiles": {');
    const r = await runSmart(['config', 'list'], { ws });
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.split('\n')[0]).toMatch(
      new RegExp(`^error: config file ${configFile(ws)} is not valid JSON`),
    );
    writeFileSync(configFile(ws), JSON.stringify({ profiles: { default: { clientID: 'x' } } }));
    const key = await runSmart(['keygen'], { ws });
    expect(key.exitCode).toBe(2);
    expect(key.stderr.split('\n')[0]).toContain(
      `config file ${configFile(ws)}: profiles.default.clientID is not a known key`,
    );
    expect(key.stderr).not.toContain('    at ');
  });
});

describe('smart init', () => {
  it('writes a profile from flags without a terminal and makes it current', async () => {
    const ws = makeWorkspace();
    await runSmart(['config', 'set', 'baseUrl', 'http://a.example'], { ws });
    const r = await runSmart(
      [
        'init',
        '--profile',
        'local',
        '--base-url',
        'http://localhost:8080',
        '--client-id',
        'c1',
        '--key',
        'k.pem',
        '--alg',
        'rs384',
        '-o',
        'json',
      ],
      { ws },
    );
    expect(r.exitCode).toBe(0);
    const profile = {
      baseUrl: 'http://localhost:8080',
      clientId: 'c1',
      key: join(ws.home, 'k.pem'),
      alg: 'RS384',
    };
    expect(json(r)).toEqual({ profile: 'local', configFile: configFile(ws), ...profile });
    expect(readConfig(ws)).toEqual({
      currentProfile: 'local',
      profiles: { default: { baseUrl: 'http://a.example' }, local: profile },
    });
    expect(r.stderr).toContain('now the current profile');
  });

  it('needs --base-url or --fhir-url without a terminal', async () => {
    const ws = makeWorkspace();
    const r = await runSmart(['init', '--no-input', '--client-id', 'x'], { ws });
    expect(r.exitCode).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe(
      'error: smart init needs a server: no --base-url or --fhir-url given',
    );
    expect(r.stderr).toContain('--base-url');
  });
});
