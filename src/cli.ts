import { run } from './program.js';

// The process entry point (bin/smart.js imports this). Only this file ends the process.
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
  argv: process.argv.slice(2),
  io: { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin },
  env: process.env,
  cwd: process.cwd(),
  signal: controller.signal,
});
process.off('SIGINT', onSignal);
process.off('SIGTERM', onSignal);
