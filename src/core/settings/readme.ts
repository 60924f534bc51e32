import { SETTINGS, flagOf, type SettingSpec } from './table.js';

// The README's table of global options, generated from the settings table by
// `node scripts/render-settings.mjs` (after `npm run build`); test/unit/core/settings/readme.test.ts
// fails when README.md is behind.

export const README_START =
  '<!-- settings:start (generated from src/core/settings/table.ts by `node scripts/render-settings.mjs`; do not edit) -->';
export const README_END = '<!-- settings:end -->';

/** The global options that are not settings, after the settings' rows. */
const OTHER_ROWS = [
  '| `-o, --output table\\|json\\|ndjson\\|csv`, `--json` | | output format (below) |',
  '| `--verbose` | | one stderr line per HTTP request: method, URL, status, ms (secrets redacted) |',
  '| `--debug` | | stack traces and error cause chains |',
  '| `--no-color` | `NO_COLOR` | no colours |',
  '| `--no-input` | | never prompt; a missing value is an error |',
];

function row(s: SettingSpec): string {
  const arg = s.readmeArg ?? s.arg;
  const flag = `${flagOf(s.key as 'baseUrl')}${arg ? ` ${arg}` : ''}`;
  const env = `${s.env}${s.boolean ? '=1' : ''}`;
  return `| \`${flag}\` | \`${env}\` | ${s.readme ?? s.help} |`;
}

/** The generated block, markers included. */
export function settingsMarkdown(): string {
  return [
    README_START,
    '| flag | environment | meaning |',
    '|---|---|---|',
    ...SETTINGS.filter((s) => s.global).map(row),
    ...OTHER_ROWS,
    README_END,
  ].join('\n');
}

/** README.md with its generated block replaced (an error when the markers are missing). */
export function withSettingsBlock(readme: string): string {
  const start = readme.indexOf(README_START);
  const end = readme.indexOf(README_END);
  if (start < 0 || end < start) throw new Error('README.md has no settings:start/end markers');
  return readme.slice(0, start) + settingsMarkdown() + readme.slice(end + README_END.length);
}
