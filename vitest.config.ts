import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Vitest's default is one worker less than the cores: on 2 cores, one file at a time while
    // a test waits on a server or a child process. Two at least.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    setupFiles: ['test/helpers/setup.ts'],
  },
});
