// Rewrites the table of global options in README.md (between the settings:start and
// settings:end markers) from the settings table, src/core/settings/table.ts. Run it after
// `npm run build` whenever a row changes; test/unit/core/settings/readme.test.ts fails until then.
import { readFileSync, writeFileSync } from 'node:fs';
import { withSettingsBlock } from '../dist/core/settings/readme.js';

const path = new URL('../README.md', import.meta.url);
const before = readFileSync(path, 'utf8');
const after = withSettingsBlock(before);
if (after !== before) writeFileSync(path, after);
process.stdout.write(after === before ? 'README.md is up to date\n' : 'README.md rewritten\n');
