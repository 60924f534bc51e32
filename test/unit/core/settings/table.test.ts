import { Option } from 'commander';
import { describe, expect, it } from 'vitest';
import { CONFIG_KEYS } from '../../../../src/commands/config.js';
import {
  ENV_NAMES,
  checkValue,
  describeKey,
  resolveSettings,
} from '../../../../src/core/settings.js';
import {
  PROFILE_KEYS,
  SETTINGS,
  flagAttribute,
  flagOf,
  flagsOf,
  helpOf,
  kebab,
  listOf,
  settingOf,
  type SettingSpec,
} from '../../../../src/core/settings/table.js';
import { buildProgram } from '../../../../src/program.js';
import { quietContext } from '../../../helpers/context.js';

describe('the settings table', () => {
  it('declares every global setting as an option of the program, help and env name derived', async () => {
    const program = await buildProgram(quietContext());
    for (const s of SETTINGS.filter((x) => x.global)) {
      const option = program.options.find((o) => o.long === flagOf(s.key));
      expect(option, s.key).toBeDefined();
      expect(option!.description).toBe(helpOf(s));
      expect(option!.description).toContain(`env ${s.env}`);
      // Commander's name for the value is the key: ctx.globals[key] is the flag.
      expect(option!.attributeName()).toBe(s.key);
      expect(flagAttribute(s.key)).toBe(s.key);
    }
  });

  it('gives every stored key to `smart config`, the resolver and the messages', () => {
    expect([...CONFIG_KEYS]).toEqual([...PROFILE_KEYS]);
    for (const key of PROFILE_KEYS) {
      expect(ENV_NAMES[key]).toMatch(/^SMART_[A-Z_]+$/);
      expect(describeKey(key)).not.toBe('');
    }
    expect(new Set(SETTINGS.map((s) => s.env)).size).toBe(SETTINGS.length);
    expect(checkValue('fhirUrl', 'ftp://x')).toBe('"ftp://x" must be an http(s) URL');
    expect(checkValue('server', 'hapi')).toMatch(/is not a server kind/);
  });

  it('resolves a row by its flag > its environment variable > the profile', async () => {
    const env = {
      HOME: '/nonexistent-smart-home',
      SMART_MAX_RESPONSE: '8',
      SMART_CA_FILE: 'ca.pem',
    };
    const s = await resolveSettings({ flags: { scope: 'system/Patient.rs' }, env, cwd: '/w' });
    expect([s.scope, s.sources.scope]).toEqual(['system/Patient.rs', 'flag']);
    expect([s.maxResponse, s.sources.maxResponse]).toEqual(['8', 'env']);
    // isPath: relative to the working directory.
    expect(s.caFile).toBe('/w/ca.pem');
    const t = await resolveSettings({
      flags: { trustOrigin: ['https://a.example'] },
      env,
      cwd: '/w',
    });
    expect([t.trustedOrigins, t.sources.trustedOrigins]).toEqual(['https://a.example', 'flag']);
  });
});

describe('the rows', () => {
  const check = (key: Parameters<typeof settingOf>[0], value: string) =>
    settingOf(key).check!(value);

  it('derive the flag, its value name and the name of its value', () => {
    expect(kebab('maxResponse')).toBe('max-response');
    expect(kebab('key')).toBe('key');
    expect(flagOf('baseUrl')).toBe('--base-url');
    expect(flagOf('trustedOrigins')).toBe('--trust-origin');
    expect(flagAttribute('trustedOrigins')).toBe('trustOrigin');
    expect(flagsOf(settingOf('baseUrl'))).toBe('--base-url <url>');
    expect(flagsOf(settingOf('insecure'))).toBe('--insecure');
    expect(flagsOf(settingOf('trustedOrigins'))).toBe('--trust-origin <origin>');
  });

  it("name each flag's value as Commander does", () => {
    for (const key of [...PROFILE_KEYS, ...SETTINGS.filter((x) => x.global).map((x) => x.key)]) {
      const k = key as Parameters<typeof flagAttribute>[0];
      expect(flagAttribute(k), key).toBe(new Option(flagsOf(settingOf(k))).attributeName());
    }
  });

  it('derive the --help line: text, default, variable; =1 for a switch; a list repeats', () => {
    expect(helpOf(settingOf('timeout'))).toBe(
      'HTTP timeout per request (default 30; env SMART_TIMEOUT)',
    );
    expect(helpOf(settingOf('clientId'))).toBe('client id (env SMART_CLIENT_ID)');
    expect(helpOf(settingOf('insecure'))).toBe(
      'allow tokens and secrets over plain http to a non-loopback host (env SMART_INSECURE=1)',
    );
    expect(helpOf(settingOf('trustedOrigins'))).toBe(
      'send the token to files on this origin too (requiresAccessToken: true); repeatable (env SMART_TRUST_ORIGIN, comma-separated)',
    );
  });

  it('a profile keeps the stored keys only; each key, flag and variable is unique', () => {
    expect(PROFILE_KEYS).toEqual(SETTINGS.filter((s) => s.stored).map((s) => s.key));
    expect(PROFILE_KEYS).not.toContain('profile');
    expect(PROFILE_KEYS).not.toContain('timeout');
    expect(new Set(SETTINGS.map((s) => s.key)).size).toBe(SETTINGS.length);
    expect(new Set(SETTINGS.map((s) => flagsOf(s as SettingSpec).split(' ')[0])).size).toBe(
      SETTINGS.length,
    );
    expect(settingOf('scope').describe).toBe('scope');
  });

  it('check URLs: absolute and http(s)', () => {
    expect(check('baseUrl', 'https://a.example')).toBeUndefined();
    expect(check('tokenUrl', 'http://127.0.0.1:8080/token')).toBeUndefined();
    expect(check('baseUrl', 'a.example')).toBe('"a.example" is not an absolute URL');
    expect(check('jwksUri', 'file:///k.json')).toBe('"file:///k.json" must be an http(s) URL');
    expect(check('registrationUrl', 'nope')).toMatch(/not an absolute URL/);
  });

  it("check the server's own URL: an origin without a path", () => {
    expect(check('serverUrl', 'http://aidbox:8080')).toBeUndefined();
    expect(check('serverUrl', 'http://aidbox:8080/')).toBeUndefined();
    expect(check('serverUrl', 'http://aidbox:8080/fhir')).toBe(
      '"http://aidbox:8080/fhir" must be an origin, e.g. http://aidbox:8080 (no path)',
    );
    expect(check('serverUrl', 'aidbox')).toBe('"aidbox" is not an absolute URL');
  });

  it('check scope, switches, server kinds, sizes and origins', () => {
    expect(check('scope', ' ')).toBe('must not be empty');
    expect(check('scope', 'system/*.read')).toBeUndefined();
    for (const v of ['true', 'FALSE', '1', '0', 'yes', 'No'])
      expect(check('insecure', v)).toBeUndefined();
    expect(check('insecure', 'maybe')).toBe('"maybe" is not true or false');
    expect(check('server', 'rfc7591')).toBeUndefined();
    expect(check('server', 'hapi')).toBe(
      '"hapi" is not a server kind (use aidbox, rfc7591, smart-reference)',
    );
    expect(check('maxResponse', ' 1.5 ')).toBeUndefined();
    for (const v of ['0', '-1', '1e3', 'lots', ''])
      expect(check('maxResponse', v), v).toBe(`"${v}" is not a positive number of MiB`);
    expect(check('trustedOrigins', 'https://a.example, http://b.example:8080/')).toBeUndefined();
    expect(check('trustedOrigins', 'https://a.example,https://b.example/files')).toBe(
      '"https://b.example/files" is not an origin, e.g. https://files.example.org (http(s), no path)',
    );
  });

  it('parse --timeout as a positive number of seconds (exit 2 otherwise)', () => {
    const parse = settingOf('timeout').parse!;
    expect(parse('2.5')).toBe(2.5);
    for (const v of ['0', '-3', 'soon', 'Infinity']) {
      expect(() => parse(v), v).toThrow(`--timeout: "${v}" is not a positive number of seconds`);
    }
  });

  it('listOf splits on commas and drops blanks', () => {
    expect(listOf('a, b,,c ,')).toEqual(['a', 'b', 'c']);
    expect(listOf('')).toEqual([]);
    expect(listOf(undefined)).toEqual([]);
  });
});
