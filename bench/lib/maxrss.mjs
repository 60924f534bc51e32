// Preloaded (node --import) by the benches when /usr/bin/time is missing: the process writes
// its own peak RSS (KB) to $SMART_BENCH_MAXRSS_FILE as it exits.
import { writeFileSync } from 'node:fs';

const file = process.env.SMART_BENCH_MAXRSS_FILE;
if (file) process.on('exit', () => writeFileSync(file, String(process.resourceUsage().maxRSS)));
