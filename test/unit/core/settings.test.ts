import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONFIG_KEYS } from '../../../src/commands/config.js';
import { SmartError } from '../../../src/core/errors.js';
import {
  PROFILE_KEYS,
  loadConfig,
  requireSetting,
  resolveSettings,
  selectProfile,
  updateProfile,
  useProfile,
} from '../../../src/core/settings.js';
import { tempDir } from '../../helpers/tmp.js';
import { rejected } from '../../helpers/rejected.js';

function workspace(config?: unknown) {
  const home = tempDir('smart-settings-');
  const env = {
    HOME: home,
    XDG_CONFIG_HOME: join(home, 'cfg'),
    XDG_CACHE_HOME: join(home, 'cache'),
  };
  const file = join(home, 'cfg', 'smart', 'config.json');
  if (config !== undefined) {
    mkdirSync(join(home, 'cfg', 'smart'), { recursive: true });
    writeFileSync(file, typeof config === 'string' ? config : JSON.stringify(config));
  }
  return { home, env, file };
}

describe('resolveSettings precedence', () => {
  const config = {
    currentProfile: 'dev',
    profiles: {
      dev: {
        baseUrl: 'http://profile.example',
        clientId: 'profile-client',
        scope: 'system/Patient.rs',
        alg: 'ES384',
      },
      other: { baseUrl: 'http://other.example' },
    },
  };

  it('flag > env > profile > default', async () => {
    const ws = workspace(config);
    const s = await resolveSettings({
      flags: { baseUrl: 'http://flag.example/' },
      env: { ...ws.env, SMART_BASE_URL: 'http://env.example', SMART_CLIENT_ID: 'env-client' },
      cwd: ws.home,
    });
    expect(s.profile).toBe('dev');
    expect(s.baseUrl).toBe('http://flag.example');
    expect(s.sources.baseUrl).toBe('flag');
    expect(s.clientId).toBe('env-client');
    expect(s.sources.clientId).toBe('env');
    expect(s.scope).toBe('system/Patient.rs');
    expect(s.sources.scope).toBe('profile');
    expect(s.fhirUrl).toBe('http://flag.example/fhir');
    expect(s.sources.fhirUrl).toBe('derived');
    expect(s.timeoutMs).toBe(30_000);
    expect(s.sources.timeout).toBe('default');
  });

  it("a key from a flag or SMART_KEY does not take the profile's alg (it belongs to the profile's key)", async () => {
    const ws = workspace({
      profiles: { default: { key: '/keys/ec.pem', alg: 'ES384' } },
    });
    const byFlag = await resolveSettings({ flags: { key: 'rsa.pem' }, env: ws.env, cwd: ws.home });
    expect(byFlag.key).toBe(join(ws.home, 'rsa.pem'));
    expect(byFlag.alg).toBeUndefined();
    expect(byFlag.sources.alg).toBeUndefined();
    const byEnv = await resolveSettings({
      flags: {},
      env: { ...ws.env, SMART_KEY: '/keys/rsa.pem' },
      cwd: ws.home,
    });
    expect(byEnv.alg).toBeUndefined();
    // An explicit alg still counts, and the profile's own key keeps its alg.
    const explicit = await resolveSettings({
      flags: { key: 'rsa.pem', alg: 'RS256' },
      env: ws.env,
      cwd: ws.home,
    });
    expect(explicit.alg).toBe('RS256');
    const byEnvAlg = await resolveSettings({
      flags: { key: 'rsa.pem' },
      env: { ...ws.env, SMART_ALG: 'PS384' },
      cwd: ws.home,
    });
    expect(byEnvAlg.alg).toBe('PS384');
    const same = await resolveSettings({
      flags: { key: '/keys/ec.pem' },
      env: ws.env,
      cwd: ws.home,
    });
    expect(same.alg).toBe('ES384');
    const fromProfile = await resolveSettings({ flags: {}, env: ws.env, cwd: ws.home });
    expect(fromProfile.alg).toBe('ES384');
  });

  it('falls back to defaults with no config file', async () => {
    const ws = workspace();
    const s = await resolveSettings({ flags: {}, env: ws.env, cwd: ws.home });
    expect(s.profile).toBe('default');
    expect(s.profileExists).toBe(false);
    expect(s.scope).toBe('system/*.read');
    expect(s.sources.scope).toBe('default');
    expect(s.baseUrl).toBeUndefined();
  });

  it('selects the profile by flag, then SMART_PROFILE, then currentProfile', async () => {
    const ws = workspace(config);
    const byEnv = await resolveSettings({
      flags: {},
      env: { ...ws.env, SMART_PROFILE: 'other' },
      cwd: ws.home,
    });
    expect(byEnv.baseUrl).toBe('http://other.example');
    expect(byEnv.sources.profile).toBe('env');
    const byFlag = await resolveSettings({
      flags: { profile: 'dev' },
      env: { ...ws.env, SMART_PROFILE: 'other' },
      cwd: ws.home,
    });
    expect(byFlag.baseUrl).toBe('http://profile.example');
    expect(selectProfile(undefined, {}, { profiles: {} })).toEqual({
      name: 'default',
      source: 'default',
    });
  });

  it('names an unknown profile and lists the known ones', async () => {
    const ws = workspace(config);
    const e = await rejected(
      resolveSettings({ flags: { profile: 'prod' }, env: ws.env, cwd: ws.home }),
    );
    expect(e.exitCode).toBe(2);
    expect(e.message).toContain('"prod"');
    expect(e.hint).toContain('dev, other');
  });

  it('derives the origin from a FHIR URL and resolves relative key paths against cwd', async () => {
    const ws = workspace();
    const s = await resolveSettings({
      flags: { fhirUrl: 'https://h.example/r4/', key: 'keys/k.pem', timeout: 5 },
      env: { ...ws.env, SMART_TIMEOUT: '9' },
      cwd: '/work/dir',
    });
    expect(s.fhirUrl).toBe('https://h.example/r4');
    expect(s.baseUrl).toBe('https://h.example');
    expect(s.key).toBe('/work/dir/keys/k.pem');
    expect(s.timeoutMs).toBe(5000);
  });

  it('rejects a bad URL naming where it came from', async () => {
    const ws = workspace();
    const e = await rejected(
      resolveSettings({ flags: {}, env: { ...ws.env, SMART_BASE_URL: 'not a url' }, cwd: ws.home }),
    );
    expect(e.message).toContain('SMART_BASE_URL');
    expect(e.exitCode).toBe(2);
  });

  it("an empty flag is a usage error, never silently the profile's value", async () => {
    const ws = workspace({
      currentProfile: 'dev',
      profiles: { dev: { scope: 'system/Patient.rs' } },
    });
    for (const flags of [{ scope: '' }, { clientId: '  ' }, { baseUrl: '' }]) {
      const e = await rejected(resolveSettings({ flags, env: ws.env, cwd: ws.home }));
      expect(e.exitCode).toBe(2);
      expect(e.message).toMatch(/^--(scope|client-id|base-url) is empty$/);
      expect(e.hint).toMatch(/SMART_(SCOPE|CLIENT_ID|BASE_URL)/);
    }
    // An empty environment variable still means unset, as shells treat it.
    const s = await resolveSettings({
      flags: {},
      env: { ...ws.env, SMART_SCOPE: '' },
      cwd: ws.home,
    });
    expect(s.scope).toBe('system/Patient.rs');
  });

  it('reads the admin secret from the environment only', async () => {
    const ws = workspace();
    const s = await resolveSettings({
      flags: {},
      env: { ...ws.env, SMART_ADMIN_SECRET: 's' },
      cwd: ws.home,
    });
    expect(s.adminSecret).toBe('s');
  });
});

describe('malformed config files', () => {
  it('names the file when it is not JSON', async () => {
    const ws = workspace('{ "profiles": ');
    const e = await rejected(loadConfig(ws.file));
    expect(e.kind).toBe('config');
    expect(e.exitCode).toBe(2);
    expect(e.message).toContain(ws.file);
    expect(e.message).toContain('not valid JSON');
  });

  it('names the file and the unknown key', async () => {
    const ws = workspace({ profiles: { dev: { baseURL: 'http://x' } } });
    const e = await rejected(resolveSettings({ flags: {}, env: ws.env, cwd: ws.home }));
    expect(e.message).toContain(ws.file);
    expect(e.message).toContain('profiles.dev.baseURL');
  });

  it('names a value of the wrong type or shape', async () => {
    const notString = workspace({ profiles: { dev: { scope: 42 } } });
    expect((await rejected(loadConfig(notString.file))).message).toContain(
      'profiles.dev.scope must be a string',
    );
    const badUrl = workspace({ profiles: { dev: { fhirUrl: 'ftp://x' } } });
    expect((await rejected(loadConfig(badUrl.file))).message).toContain('profiles.dev.fhirUrl');
    const array = workspace([]);
    expect((await rejected(loadConfig(array.file))).message).toContain('top level');
    const extra = workspace({ profiles: {}, colour: 'red' });
    expect((await rejected(loadConfig(extra.file))).message).toContain('"colour"');
  });

  it('treats a missing or empty file as an empty config', async () => {
    expect(await loadConfig(workspace().file)).toEqual({ profiles: {} });
    expect(await loadConfig(workspace('  \n').file)).toEqual({ profiles: {} });
  });
});

describe('writing profiles', () => {
  it('creates the file with mode 0600 and makes the first profile current', async () => {
    const ws = workspace();
    await updateProfile(ws.file, 'local', { baseUrl: 'http://localhost:8080', clientId: 'c' });
    expect(statSync(ws.file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(ws.file, 'utf8'))).toEqual({
      currentProfile: 'local',
      profiles: { local: { baseUrl: 'http://localhost:8080', clientId: 'c' } },
    });
    await updateProfile(ws.file, 'local', { clientId: undefined });
    expect((await loadConfig(ws.file)).profiles.local).toEqual({
      baseUrl: 'http://localhost:8080',
    });
  });

  it('validates values on write', async () => {
    const ws = workspace();
    const e = await rejected(updateProfile(ws.file, 'p', { tokenUrl: 'nope' }));
    expect(e.message).toContain('tokenUrl');
  });

  it('switches profiles, refusing unknown ones unless asked to create', async () => {
    const ws = workspace({ profiles: { a: {}, b: {} }, currentProfile: 'a' });
    await useProfile(ws.file, 'b');
    expect((await loadConfig(ws.file)).currentProfile).toBe('b');
    const e = await rejected(useProfile(ws.file, 'c'));
    expect(e.hint).toContain('a, b');
    const { created } = await useProfile(ws.file, 'c', { create: true });
    expect(created).toBe(true);
    expect((await loadConfig(ws.file)).profiles.c).toEqual({});
  });

  it('requireSetting says every way to give a missing value', async () => {
    const ws = workspace();
    const s = await resolveSettings({ flags: {}, env: ws.env, cwd: ws.home });
    try {
      requireSetting(s, 'clientId', 'to get a token');
      throw new Error('no throw');
    } catch (e) {
      const err = e as SmartError;
      expect(err.message).toContain('client id');
      expect(err.hint).toContain('--client-id');
      expect(err.hint).toContain('SMART_CLIENT_ID');
    }
  });

  it('the config command knows every profile key', () => {
    expect([...CONFIG_KEYS]).toEqual([...PROFILE_KEYS]);
  });
});
