import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Temp dirs made by tests. Every one is removed after its test file (test/helpers/setup.ts runs
 * removeTempDirs in an afterAll hook), so a test run leaves nothing in the system temp dir.
 */
const made = new Set<string>();

/** A new empty dir under the system temp dir, removed after the test file. */
export function tempDir(prefix = 'smart-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.add(dir);
  return dir;
}

/** Give back write and search permission below `dir`, so a test that chmod'ed a dir cannot block rm. */
function unlock(dir: string): void {
  try {
    chmodSync(dir, 0o700);
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p, { throwIfNoEntry: false })?.isDirectory()) unlock(p);
    }
  } catch {
    // best effort: rmSync below says what is left
  }
}

export function removeTempDirs(): void {
  for (const dir of made) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      unlock(dir);
      rmSync(dir, { recursive: true, force: true });
    }
  }
  made.clear();
}
