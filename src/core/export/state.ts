import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { SmartError } from '../errors.js';
import { readTextFile, writeFileAtomic } from '../fsutil.js';
import type { ExportState } from './types.js';

export const STATE_FILE = 'export.json';
export const MANIFEST_FILE = 'manifest.json';

export function stateFilePath(outDir: string): string {
  return join(outDir, STATE_FILE);
}

/** Read and check `<dir>/export.json`; errors name the directory and say what to do. */
export async function readState(outDir: string): Promise<ExportState> {
  const path = stateFilePath(outDir);
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new SmartError('usage', `${outDir} is not an export directory: ${path} not found`, {
        code: 'no_export_state',
        cause: e,
        hint: 'give the --out directory of an earlier `smart export` (it holds export.json)',
      });
    }
    // Let the shared helper word the other file errors.
    text = await readTextFile(path, 'export state file');
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new SmartError('usage', `${path} is not valid JSON`, {
      code: 'bad_export_state',
      cause: e,
      hint: 'the file was edited or truncated; start a new export',
    });
  }
  const problem = checkState(raw);
  if (problem) {
    throw new SmartError('usage', `${path}: ${problem}`, {
      code: 'bad_export_state',
      hint: 'the file was edited or comes from another tool; start a new export',
    });
  }
  return raw as ExportState;
}

function checkState(raw: unknown): string | undefined {
  if (!raw || typeof raw !== 'object') return 'expected a JSON object';
  const s = raw as Partial<ExportState>;
  if (s.version !== 1) return `unsupported version ${JSON.stringify(s.version)} (expected 1)`;
  if (typeof s.statusUrl !== 'string' || !/^https?:\/\//.test(s.statusUrl))
    return 'statusUrl: missing or not an http(s) URL';
  if (!s.kickoff || typeof s.kickoff !== 'object' || typeof s.kickoff.url !== 'string')
    return 'kickoff: missing';
  if (s.files !== undefined) {
    if (!Array.isArray(s.files)) return 'files: expected a list';
    for (const [i, f] of s.files.entries()) {
      if (!f || typeof f.name !== 'string' || typeof f.url !== 'string')
        return `files[${i}]: expected name and url`;
      if (f.name.includes('..') || f.name.startsWith('/'))
        return `files[${i}].name: "${f.name}" leaves the export directory`;
    }
  }
  return undefined;
}

/**
 * The state file of a running export. Writes are atomic and serialized; `touch()` coalesces a
 * burst of changes (many small files finishing) into one write per interval, `flush()` writes now.
 */
export class StateFile {
  private writing: Promise<void> = Promise.resolve();
  private timer?: NodeJS.Timeout;
  private dirty = false;

  constructor(
    readonly outDir: string,
    public state: ExportState,
    private readonly intervalMs = 1_000,
  ) {}

  get path(): string {
    return stateFilePath(this.outDir);
  }

  /** Mark the state changed; written within the interval. */
  touch(): void {
    this.dirty = true;
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.flush().catch(() => undefined);
    }, this.intervalMs);
  }

  /** Write the current state now (after any write in progress). */
  flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.dirty = false;
    const snapshot = JSON.stringify(this.state, null, 2) + '\n';
    this.writing = this.writing
      .catch(() => undefined)
      .then(() => writeFileAtomic(this.path, snapshot, { mode: 0o600 }));
    return this.writing;
  }

  /** Flush when something changed since the last write. */
  async settle(): Promise<void> {
    if (this.dirty) await this.flush();
    else await this.writing.catch(() => undefined);
  }
}
