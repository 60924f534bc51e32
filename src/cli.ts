import { createRequire } from 'node:module';

// The process entry point (bin/smart.js imports this). Only this file ends the process.

// `smart | head` closes our stdout early: that is the reader's choice, not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}

const argv = process.argv.slice(2);
if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
  // The fast path: no Commander, no command modules.
  const { version } = createRequire(import.meta.url)('../package.json') as { version: string };
  process.stdout.write(`${version}\n`);
} else {
  const { run } = await import('./program.js');
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    interrupts++;
    // A second Ctrl-C means "now": skip the clean shutdown.
    if (interrupts > 1) process.exit(130);
    controller.abort(sig);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  process.exitCode = await run({
    argv,
    io: { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin },
    env: process.env,
    cwd: process.cwd(),
    signal: controller.signal,
  });
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
}
