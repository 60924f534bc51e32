// Build step: dist/fast-token.js (src/fast-token.ts: a bare `smart token` without Commander)
// becomes one file that holds the modules a cached token needs, so that `$(smart token)` loads 4
// of our files instead of 24 (cli.js, fast.js, this one and core/errors.js). Every other command
// line loads fast.js only, which loads nothing. On Node 20 each ES module costs its own resolve, asynchronous read and
// link (warm `smart token`: 1.41x -> 1.24x `smart --version` in CPU time, 1.35x -> 1.30x wall,
// medians of 40 interleaved runs at load 11).
// Bundling the whole CLI did not pay (the time saved went to compiling the larger file): only
// the list below goes in; every other import stays an import of its own file in dist/.
//
// A module inlined here exists twice when a run also loads it from its own file (a token
// request loads core/http/, an error loads program.js). So only modules whose state and classes
// nothing loaded later shares go in (core/cache.js's warnings: no later module loads it);
// core/errors.js stays out (SmartError is checked with instanceof everywhere).
// A module missing from the list is only slower, never wrong.
import { rename, rm } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rolldown } from 'rolldown';

const dist = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const INLINE = [
  'fast-token.js',
  'context.js',
  'core/clock.js',
  'output/escape.js',
  'commands/token.js',
  'commands/shared.js',
  'output/render.js',
  'output/results.js',
  'output/formats/table.js',
  'output/format.js',
  'output/write.js',
  'core/auth/token.js',
  'core/auth/token-cache.js',
  'core/settings.js',
  'core/settings/table.js',
  'core/registration/types.js',
  'core/json.js',
  'core/discovery.js',
  'core/auth/keys.js',
  'core/cache.js',
  'core/redact.js',
  'core/server-url.js',
  'core/fsutil.js',
].map((f) => join(dist, f));

const bundle = await rolldown({
  input: join(dist, 'fast-token.js'),
  platform: 'node',
  logLevel: 'warn',
  // Asked once with the import as written, again with the resolved path.
  external: (id, importer) => {
    if (isAbsolute(id)) return !INLINE.includes(id);
    if (!id.startsWith('.')) return true; // node: built-ins and packages
    return !INLINE.includes(resolve(dirname(importer ?? dist), id));
  },
});
const tmp = join(dist, 'fast-token.bundle.js');
try {
  await bundle.write({ file: tmp, format: 'esm', codeSplitting: false });
} finally {
  await bundle.close();
}
await rm(join(dist, 'fast-token.js.map'), { force: true });
await rename(tmp, join(dist, 'fast-token.js'));
