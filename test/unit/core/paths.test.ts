import { homedir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { resolvePaths } from '../../../src/core/paths.js';

describe('resolvePaths', () => {
  it('uses XDG dirs, with ~/.config and ~/.cache as fallbacks', () => {
    expect(
      resolvePaths({ HOME: '/h', XDG_CONFIG_HOME: '/x/cfg', XDG_CACHE_HOME: '/x/cache' }),
    ).toEqual({
      configDir: '/x/cfg/smart',
      configFile: '/x/cfg/smart/config.json',
      cacheDir: '/x/cache/smart',
      keysDir: '/x/cfg/smart/keys',
    });
    expect(resolvePaths({ HOME: '/h' }).configFile).toBe('/h/.config/smart/config.json');
    expect(resolvePaths({ HOME: '/h' }).cacheDir).toBe('/h/.cache/smart');
  });
});

describe('resolvePaths without HOME', () => {
  it("falls back to the account's home directory", () => {
    expect(resolvePaths({}).cacheDir).toBe(`${homedir()}/.cache/smart`);
    expect(resolvePaths({ XDG_CACHE_HOME: '/c' }).configDir).toBe(`${homedir()}/.config/smart`);
  });
});
