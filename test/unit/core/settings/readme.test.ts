import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  README_END,
  README_START,
  settingsMarkdown,
  withSettingsBlock,
} from '../../../../src/core/settings/readme.js';
import { SETTINGS } from '../../../../src/core/settings/table.js';

describe('the README table of global options', () => {
  it("README.md's table of global options is the one generated from it", () => {
    const readme = readFileSync(new URL('../../../../README.md', import.meta.url), 'utf8');
    // When this fails: npm run build && node scripts/render-settings.mjs
    expect(withSettingsBlock(readme)).toBe(readme);
    expect(readme).toContain(settingsMarkdown());
  });

  it('has one row per global setting: flag and value, env (=1 for a switch), the README words', () => {
    const md = settingsMarkdown();
    const lines = md.split('\n');
    expect(lines[0]).toBe(README_START);
    expect(lines.at(-1)).toBe(README_END);
    expect(lines.slice(1, 3)).toEqual(['| flag | environment | meaning |', '|---|---|---|']);
    expect(md).toContain(
      '| `--base-url <url>` | `SMART_BASE_URL` | server origin (admin API, discovery fallback) |',
    );
    // readmeArg beats arg; a switch has no value and its variable says =1.
    expect(md).toContain('| `--ca-file <pem>` | `SMART_CA_FILE` |');
    expect(md).toContain('| `--insecure` | `SMART_INSECURE=1` |');
    // A row without README words takes its --help line.
    expect(md).toContain('| `--client-id <id>` | `SMART_CLIENT_ID` | the client id (assertion');
    for (const s of SETTINGS) {
      expect(new RegExp(`\`${s.env}(=1)?\``).test(md), s.key).toBe(s.global);
    }
    // The options that are not settings come after.
    expect(lines.at(-2)).toBe('| `--no-input` | | never prompt; a missing value is an error |');
  });

  it('replaces the block between the markers and keeps the rest', () => {
    const readme = `# T\n\nbefore\n${README_START}\nold rows\n${README_END}\nafter\n`;
    expect(withSettingsBlock(readme)).toBe(`# T\n\nbefore\n${settingsMarkdown()}\nafter\n`);
    expect(withSettingsBlock(withSettingsBlock(readme))).toBe(withSettingsBlock(readme));
  });

  it('fails without both markers, in order', () => {
    expect(() => withSettingsBlock('# no markers')).toThrow('no settings:start/end markers');
    expect(() => withSettingsBlock(`${README_START}\n`)).toThrow('markers');
    expect(() => withSettingsBlock(`${README_END}\n${README_START}`)).toThrow('markers');
  });
});
