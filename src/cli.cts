import fs = require('node:fs');
import path = require('node:path');

// The process entry point (bin/smart.cjs requires it). Only this file ends the process.
//
// CommonJS, like the shim, on purpose: a process whose main module is an ES module starts
// Node 20's ES module loader (resolver, loader, module map, translators), ~10 ms before any code
// of ours runs, for `smart --version` as for the rest. From here the CLI runs as CommonJS chunks
// (dist/bundle/), and the loader is reached only by import() of a package the bundle leaves out.
const { existsSync, readFileSync } = fs;
const { join } = path;

// The ES modules this file reaches, as types (an import() from CommonJS resolves as ESM).
type Entry = typeof import('./entry.js', { with: { 'resolution-mode': 'import' } });
type CompileCacheModule = typeof import('./compile-cache.js', {
  with: { 'resolution-mode': 'import' },
});
type CompileCache = InstanceType<CompileCacheModule['CompileCache']>;

/** "no space left on device" from "ENOSPC: no space left on device, write". */
function writeFailure(e: NodeJS.ErrnoException): string {
  const m = /^E[A-Z]+: (.*?)(?:, \w+)?$/.exec(e.message ?? '');
  return m?.[1] ?? e.code ?? String(e.message);
}

// `smart | head` closes our stdout early: that is the reader's choice, not an error. Any other
// write error (a full disk, an I/O error) is one line on stderr, if stderr can take it, and exit 1.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    if (stream === process.stdout) {
      try {
        process.stderr.write(`error: cannot write output: ${writeFailure(e)}\n`);
      } catch {
        // stderr is gone too: the exit code says it
      }
    }
    process.exit(1);
  });
}

/** `smart --help` as rendered at build time (scripts/render-help.mjs), if present. */
function prerenderedHelp(): string | undefined {
  try {
    return readFileSync(join(__dirname, 'help.txt'), 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * Memory for long transfers. A streamed export or `query --all` allocates little on V8's heap
 * but churns through socket buffers held outside it (two per 64 KB read: the socket's, and the
 * HTTP parser's copy of the body), which are freed only when the young generation is collected.
 * Left alone, V8 grows the young generation to 2 x 16 MB and collects it rarely: ~30 MB of dead
 * buffers wait, and peak RSS grows with the size of the transfer (bench/memory.mjs: export of
 * 100k resources 103 MB). Every buffer then also lands on memory the process has never touched,
 * and each fresh 4 KB page costs the kernel a fault (~17 us each on the 2-core bench machine: ~8
 * ms for each MB downloaded), where a buffer freed in time is reused as it is. So: keep the
 * young generation at its size (`--max-semi-space-size` would need a flag at process start), and
 * once a transfer is under way, collect it every time 1 MB more of buffers is outstanding than
 * after the last collection (measured against what was live then, so that buffers an upload
 * holds on purpose never make it collect in a loop). Both are V8 flags set at run time; if a V8
 * refuses them, only memory and speed are at stake.
 *
 * Neither is set at start-up: after a V8 flag is changed at run time, each built-in module
 * loaded (node:http, node:net, ...) takes longer to compile (its code cache seems to be
 * refused), which cost a one-page `smart query` or `smart api` 0.1-0.2x of `smart --version`
 * (bench/startup.mjs); set after they are loaded, it costs nothing measurable. A transfer is
 * taken to be under way once 256 KB of buffers are outstanding (its modules are loaded; a
 * one-page query holds under 100 KB); the poll then goes from every 20 ms to every 5 ms (about
 * 1 MB at the speed of a local download). An export to an object store (`now`) fixes the young
 * generation's size at once: it is a long transfer whatever else, and its SDK (~12 MB of heap for
 * @azure/storage-blob) loads before the first buffer, growing the young generation on the way
 * (bench/export.mjs, Azurite row: +4 MB of peak RSS).
 *
 * V8 also refuses a code cache entry made after a flag changed (its flags are not those of the
 * next start), so `beforeFlags` is called first: the loader writes the entries of the chunks run
 * so far, while they are still good. Without it, `smart export` and `query --all` never had an
 * entry for their own chunks (~20 ms of compiling on every run).
 */
function leanMemory(now: boolean, beforeFlags: () => void): void {
  let setFlags: ((flags: string) => void) | undefined;
  const changed = () => {
    if (!flagsChanged) beforeFlags();
    flagsChanged = true;
  };
  let collect: ((options: { type: 'minor' }) => void) | undefined;
  /** Buffers outstanding after the last collection: live ones, not garbage to collect. */
  let live = 0;
  let transfer = false;
  const stop = () => clearInterval(timer);
  const tick = () => {
    const buffers = process.memoryUsage().arrayBuffers;
    if (!transfer) {
      if (buffers < 256 * 1024) return;
      transfer = true;
      stop();
      timer = setInterval(tick, 5);
      timer.unref();
      if (!setFlags) {
        // A short command never gets here: the flags and the collector come only when needed.
        // As a CommonJS object: an import() would build an ES module facade.
        setFlags = process.getBuiltinModule('node:v8').setFlagsFromString;
        try {
          changed();
          setFlags('--semi-space-growth-factor=1');
        } catch {
          return stop();
        }
      }
    }
    // Less than after the last collection: what it left was freed since, or had not yet been.
    if (buffers < live) live = buffers;
    if (buffers - live < 1024 * 1024) return;
    if (!collect) {
      setFlags!('--expose-gc');
      collect = process.getBuiltinModule('node:vm').runInNewContext('gc') as typeof collect;
      if (typeof collect !== 'function') return stop();
    }
    collect!({ type: 'minor' });
    // At most this much is still live. V8 frees the dead buffers' memory on another thread,
    // usually done by the next turn of the loop, which shows what the collection left.
    live = buffers;
    setImmediate(() => {
      live = Math.min(live, process.memoryUsage().arrayBuffers);
    }).unref();
  };
  let timer = setInterval(tick, 20);
  timer.unref();
  if (now) {
    // Before the SDK loads, not at the first tick of the timer.
    try {
      setFlags = process.getBuiltinModule('node:v8').setFlagsFromString;
      changed();
      setFlags('--semi-space-growth-factor=1');
    } catch {
      setFlags = undefined;
    }
  }
}

/** Whether leanMemory() changed a V8 flag (the code cache is then not written again). */
let flagsChanged = false;

/**
 * The CLI's code: the bundle the build makes (dist/bundle/), run by its loader with V8's code
 * cache (compile-cache.ts, built into dist/bundle/loader.cjs so that it loads as one CommonJS
 * file), or the ES modules under dist/ when there is no bundle (a build by `tsc` alone).
 */
async function loadEntry(): Promise<{
  entry: Entry;
  cache?: CompileCache;
}> {
  const bundleDir = join(__dirname, 'bundle');
  const loaderFile = join(bundleDir, 'loader.cjs');
  if (!existsSync(loaderFile)) return { entry: (await import('./entry.js')) as Entry };
  const loader = runLoader(loaderFile);
  const cache = loader.openCompileCache({
    bundleDir,
    distDir: __dirname,
    env: process.env,
    importer: (specifier) => import(specifier),
  });
  return { entry: cache.require('main.cjs') as Entry, cache };
}

/**
 * dist/bundle/loader.cjs, run as a CommonJS module without Node's module loader (~1 ms less):
 * it requires built-in modules only (bundle-cli.mjs checks), which come straight from Node.
 */
function runLoader(file: string): CompileCacheModule {
  const { compileFunction } = process.getBuiltinModule('node:vm');
  const run = compileFunction(readFileSync(file, 'utf8'), ['exports', 'require', 'module'], {
    filename: file,
  });
  const loaderModule = { exports: {} };
  const requireBuiltin = (id: string) => {
    const builtin = id.startsWith('node:') ? process.getBuiltinModule(id) : undefined;
    if (!builtin) throw new Error(`${file}: require('${id}') is not a built-in module`);
    return builtin;
  };
  run(loaderModule.exports, requireBuiltin, loaderModule);
  return loaderModule.exports as CompileCacheModule;
}

/** `--out s3://...`, `--resume az://...`, `cancel s3://...`: a command on an object store. */
function onObjectStore(args: string[]): boolean {
  return args.some((a) => /^(?:--(?:out|resume)=)?(?:s3|az):\/\//i.test(a));
}

/**
 * The AWS SDK (an export to s3://) warns on stderr, once per process, that its releases from
 * 2027 on need Node 22: noise in an export's output that the user of `smart` cannot act on. The
 * SDK's own switch is this variable; the CLI, as the process, sets it (unless the user did), so
 * that the library (src/core) never mutates process.env.
 */
function quietSdks(): void {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
}

/** Resolves once what was written to `stream` has been handed to the OS (at once if nothing waits). */
function drained(stream: NodeJS.WriteStream): Promise<void> | undefined {
  // An empty write's callback runs after every write before it. Usually nothing waits (a
  // terminal or a file takes a write at once, a pipe while it has room); a pipe to a slow reader,
  // or any pipe on macOS, may still hold the last writes when the run is over.
  return stream.writableLength > 0
    ? new Promise((resolve) => stream.write('', () => resolve()))
    : undefined;
}

/**
 * A command line other than --version and --help: its run, from the bundle, either a fast command
 * line's (src/fast.ts: no Commander) or Commander's.
 */
async function main(): Promise<void> {
  const { entry, cache } = await loadEntry();
  const fast = entry.fastRun(argv);
  let run = fast;
  if (!run) {
    leanMemory(onObjectStore(argv), () => cache?.flush());
    quietSdks();
    run = entry.run;
  }
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    interrupts++;
    // A second Ctrl-C means "now": skip the clean shutdown.
    if (interrupts > 1) process.exit(sig === 'SIGTERM' ? 143 : 130);
    controller.abort(sig);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  process.exitCode = await run({
    argv,
    io: {
      stdout: process.stdout,
      stderr: process.stderr,
      // Made on first use: most commands never read stdin, and making its stream costs start-up.
      get stdin() {
        return process.stdin;
      },
    },
    env: process.env,
    cwd: process.cwd(),
    signal: controller.signal,
  });
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  // Entries made after a V8 flag changed would be refused at the next start.
  if (!flagsChanged) cache?.flush();
  // A fast command line (a bare `smart token`, a plain `query` or `api`) is done once its output
  // is out: it awaits every request, cache write and line it prints, and holds no server. Left to
  // end on its own, the process would first wait for V8's background work (optimising code
  // that will never run again, a collection's last tasks) and tear down the heap and threads:
  // 1-2 ms of a warm `smart token` (150 interleaved runs). Other commands end when their event
  // loop is empty, as Node's do: their libraries (prompts, SDKs, servers) get to finish.
  if (fast) {
    await Promise.all([drained(process.stdout), drained(process.stderr)]);
    process.exit();
  }
}

const argv = process.argv.slice(2);
const only = argv.length === 1 ? argv[0] : undefined;
const help = only === '--help' || only === '-h' ? prerenderedHelp() : undefined;
// The fast paths: no Commander, no command modules.
if (only === '--version' || only === '-V') {
  const pkg = readFileSync(join(__dirname, '..', 'package.json'), 'utf8');
  const { version } = JSON.parse(pkg) as { version: string };
  process.stdout.write(`${version}\n`);
} else if (help !== undefined) {
  process.stdout.write(help);
} else {
  // A rejection here is a bug or a broken build: Node prints it and exits 1, as for a throw.
  void main();
}
