import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIG_KEYS } from '../../../src/commands/config.js';
import { ENV_NAMES, checkValue, describeKey, resolveSettings } from '../../../src/core/settings.js';
import { settingsMarkdown, withSettingsBlock } from '../../../src/core/settings/readme.js';
import {
  PROFILE_KEYS,
  SETTINGS,
  flagAttribute,
  flagOf,
  helpOf,
} from '../../../src/core/settings/table.js';
import { buildProgram } from '../../../src/program.js';
import { quietContext } from '../../helpers/context.js';

describe('the settings table', () => {
  it("README.md's table of global options is the one generated from it", () => {
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    // When this fails: npm run build && node scripts/render-settings.mjs
    expect(withSettingsBlock(readme)).toBe(readme);
    expect(readme).toContain(settingsMarkdown());
  });

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
