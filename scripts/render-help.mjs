// Build step: render `smart --help` once, so that the most common help call is a file read
// (Commander and the command manifest cost more than Node's own start-up on Node 20).
// test/unit/commands/help-cache.test.ts checks the file against the live rendering.
import { writeFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';

const { run } = await import('../dist/program.js');
const stdout = new PassThrough();
const stderr = new PassThrough();
let text = '';
stdout.on('data', (d) => (text += d.toString()));
const code = await run({
  argv: ['--help'],
  io: { stdout, stderr, stdin: new PassThrough() },
  env: {},
  cwd: process.cwd(),
});
if (code !== 0 || !text.startsWith('Usage: smart')) {
  process.stderr.write(`render-help: smart --help exited ${code}\n`);
  process.exit(1);
}
writeFileSync(new URL('../dist/help.txt', import.meta.url), text);
