// Build step: dist/bundle/, the CLI as CommonJS chunks that src/compile-cache.ts runs with V8's
// code cache. dist/entry.js is the entry; every `await import('./x.js')` of ours becomes a chunk
// boundary, so that a command line loads only its own code. Commander, chalk, jose and
// cli-table3 are inlined (they are read and compiled like our code, from the cache); the large
// or rarely used packages (the AWS and Azure SDKs, undici, fhirpath, inquirer) stay imports of
// node_modules.
//
// Each chunk is written as the function compile-cache.ts compiles (CHUNK_HEAD ... CHUNK_TAIL),
// which gives its code, besides CommonJS's require/module/exports:
//   __smartImport(specifier)  import() of a package or built-in: a script run by node:vm has no
//                             import() of its own (V8 loses it with a code cache on Node 20).
//   __smartUrl(path)          what import.meta.url was in the module's own file under dist/
//                             (`new URL('../package.json', import.meta.url)` must still work).
// The library (dist/index.js) and the unit tests use the ES modules under dist/ and src/; the
// CLI process runs only the bundle, so every module of ours exists once in it.
import { createHash } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rolldown } from 'rolldown';
import { CHUNK_HEAD, CHUNK_TAIL } from '../dist/compile-cache.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const out = join(dist, 'bundle');

/** Packages (and scopes) left to node_modules: loaded by import() when a command needs them. */
const EXTERNAL = ['@aws-sdk', '@azure', 'undici', 'fhirpath', 'inquirer'];
const builtins = new Set(builtinModules);
const isExternal = (id) =>
  id.startsWith('node:') ||
  builtins.has(id) ||
  EXTERNAL.some((p) => id === p || id.startsWith(`${p}/`));

const ours = (id) => id.startsWith(dist + sep) && !id.startsWith(out + sep);

/** A test for modules of dist/: files, or folders (ending in '/'), relative to dist/. */
const under = (...paths) => {
  const full = paths.map((p) => (p.endsWith('/') ? join(dist, p, sep) : join(dist, p)));
  return (id) => full.some((p) => (p.endsWith(sep) ? id.startsWith(p) : id === p));
};

/**
 * Chunks of modules that run together: a run reads, checks and deserializes a handful of files
 * rather than one per module (a warm `smart token`: 24 chunks -> 4, ~5 ms less). Each group
 * takes exactly the modules it names; the others, and the commands, get chunks of their own.
 * A module missing from a group is only a little slower, never wrong: strictExecutionOrder
 * keeps every module's top level running when and in the order it would unbundled.
 */
const GROUPS = [
  {
    // What every command runs: the context, settings, token and its cache, discovery, errors
    // and the output registry (all a warm `smart token` needs). Not the key's parser
    // (core/auth/keys.js): it loads node:crypto, which a cached token does without.
    name: 'base',
    test: under(
      'fast-run.js',
      'context.js',
      'commands/shared.js',
      'commands/token.js',
      'core/errors.js',
      'core/paths.js',
      'core/clock.js',
      'core/json.js',
      'core/redact.js',
      'core/server-url.js',
      'core/fsutil.js',
      'core/cache.js',
      'core/trust.js',
      'core/discovery.js',
      'core/settings.js',
      'core/settings/',
      'core/auth/token.js',
      'core/auth/token-cache.js',
      'core/auth/algs.js',
      'core/auth/key-file.js',
      'core/hash.js',
      'core/registration/types.js',
      'output/render.js',
      'output/results.js',
      'output/format.js',
      'output/formats/',
      'output/csv.js',
      'output/write.js',
      'output/escape.js',
    ),
  },
  {
    // Every command line that is not a fast one: Commander and the program around it.
    name: 'program',
    test: (id) =>
      under('program.js', 'commands/index.js', 'commands/options.js')(id) ||
      /[\\/]node_modules[\\/]commander[\\/]/.test(id),
  },
  {
    // Requests and FHIR: the HTTP client, the session, paging and the streamed output, with
    // the two commands that run them most (query and api, often without Commander).
    name: 'fhir',
    test: under(
      'commands/query.js',
      'commands/api.js',
      'core/http/',
      'core/fhir/',
      'core/auth/session.js',
      'core/bundle-scan.js',
      'output/stream.js',
      'output/resources.js',
    ),
  },
].map((group) => ({ ...group, includeDependenciesRecursively: false }));

const bundle = await rolldown({
  input: { main: join(dist, 'entry.js') },
  platform: 'node',
  logLevel: 'warn',
  // What includeDependenciesRecursively: false needs (rolldown would set it, with a warning):
  // the entry's exports may gain names; nothing imports the entry but the loader.
  preserveEntrySignatures: 'allow-extension',
  // "dynamic import will not move module into another chunk": a module that one command imports
  // on demand and another statically is simply in the chunk of the latter.
  onLog: (level, log, handler) => {
    if (log.code !== 'INEFFECTIVE_DYNAMIC_IMPORT') handler(level, log);
  },
  external: (id) => isExternal(id),
  plugins: [
    {
      name: 'smart-module-urls',
      transform(code, id) {
        if (!code.includes('import.meta')) return null;
        if (!ours(id)) {
          throw new Error(`${relative(root, id)} uses import.meta: teach bundle-cli.mjs its URL`);
        }
        const path = relative(dist, id).split(sep).join('/');
        return code.replaceAll('import.meta.url', `__smartUrl(${JSON.stringify(path)})`);
      },
    },
    {
      // Commander loads node:child_process at start-up (~4 ms) for executable subcommands, which
      // smart has none of: it is loaded when spawn() is first called, if ever.
      name: 'commander-lazy-child-process',
      transform(code, id) {
        if (!/[\\/]node_modules[\\/]commander[\\/]lib[\\/]command\.js$/.test(id)) return null;
        const eager = "const childProcess = require('node:child_process');";
        const uses = code.match(/\bchildProcess\b/g)?.length ?? 0;
        const spawns = code.match(/\bchildProcess\.spawn\(/g)?.length ?? 0;
        if (!code.includes(eager) || uses !== spawns + 1) {
          throw new Error(
            'commander changed how it uses node:child_process: review bundle-cli.mjs',
          );
        }
        return code.replace(
          eager,
          "const childProcess = { spawn: (...args) => require('node:child_process').spawn(...args) };",
        );
      },
    },
    {
      name: 'smart-dynamic-imports',
      renderChunk(code) {
        // An import() left in the output is one of an external (a package or a built-in).
        const rewritten = code.replace(/\bimport\(("[^"]+")\)/g, (all, spec) =>
          isExternal(JSON.parse(spec)) ? `__smartImport(${spec})` : all,
        );
        if (/\bimport\.meta\b/.test(rewritten)) throw new Error('import.meta left in a chunk');
        return rewritten;
      },
    },
  ],
});
await rm(out, { recursive: true, force: true });
try {
  const { output } = await bundle.generate({
    format: 'cjs',
    comments: { legal: true, annotation: false, jsdoc: false },
    // One byte per character: V8 keeps a source with any other character as two bytes each.
    charset: 'ascii',
    minify: {
      compress: false,
      mangle: false,
      codegen: { removeWhitespace: true, asciiOnly: true, legalComments: 'inline' },
    },
    strictExecutionOrder: true,
    codeSplitting: { groups: GROUPS },
    entryFileNames: '[name].cjs',
    chunkFileNames: '[name]-[hash].cjs',
  });
  await mkdir(out, { recursive: true });
  // Each chunk wrapped (here: rolldown drops a function expression that nothing calls), and its
  // hash for the names of its code cache entries (an entry is valid for these bytes only).
  const hashes = {};
  for (const chunk of output) {
    if (chunk.type !== 'chunk') throw new Error(`${chunk.fileName}: an asset in the bundle`);
    const left = /\bimport\((?!")/.exec(chunk.code);
    if (left) throw new Error(`${chunk.fileName}: an import() the loader cannot serve`);
    const text = `${CHUNK_HEAD}${chunk.code}${CHUNK_TAIL}`;
    // The loader reads chunks as Latin-1 (no UTF-8 decoding), and V8 keeps an ASCII source at
    // one byte a character.
    const wide = /\P{ASCII}/u.exec(text);
    if (wide) throw new Error(`${chunk.fileName}: non-ASCII character at ${wide.index}`);
    hashes[chunk.fileName] = createHash('sha256').update(text).digest('base64url').slice(0, 16);
    await writeFile(join(out, chunk.fileName), text);
  }
  await writeFile(join(out, 'hashes.json'), `${JSON.stringify(hashes, null, 1)}\n`);
} finally {
  await bundle.close();
}

// The loader itself (compile-cache.ts and what it imports) as one CommonJS file, which src/cli.cts
// runs itself (less than loading two ES modules, or the CommonJS loader).
const loader = await rolldown({
  input: join(dist, 'compile-cache.js'),
  platform: 'node',
  logLevel: 'warn',
  external: (id) => isExternal(id),
});
try {
  const { output } = await loader.write({
    file: join(out, 'loader.cjs'),
    format: 'cjs',
    codeSplitting: false,
  });
  // src/cli.cts gives it built-in modules only.
  for (const [, id] of output[0].code.matchAll(/\brequire\((["'][^"']*["'])\)/g)) {
    if (!JSON.parse(id.replace(/^'|'$/g, '"')).startsWith('node:'))
      throw new Error(`loader.cjs requires ${id}: src/cli.cts gives it built-in modules only`);
  }
} finally {
  await loader.close();
}
