import { join } from 'node:path';
import { SmartError } from '../errors.js';
import { DirectorySink } from './sinks/directory.js';
import type { Sink } from './sinks/types.js';
import type { ExportState } from './types.js';

export const STATE_FILE = 'export.json';
export const MANIFEST_FILE = 'manifest.json';

export function stateFilePath(outDir: string): string {
  return join(outDir, STATE_FILE);
}

/** A sink for a directory given by path. */
export function asSink(target: string | Sink): Sink {
  return typeof target === 'string' ? new DirectorySink(target) : target;
}

/** Read and check `<dest>/export.json`; errors name the destination and say what to do. */
export async function readState(target: string | Sink): Promise<ExportState> {
  const sink = asSink(target);
  const path = sink.describe(STATE_FILE);
  const text = await sink.readText(STATE_FILE);
  if (text === undefined) {
    const dir = sink.kind === 'directory';
    throw new SmartError(
      'usage',
      `${sink.location} is not an export ${dir ? 'directory' : 'destination'}: ${path} not found`,
      {
        code: 'no_export_state',
        hint: `give the --out ${dir ? 'directory' : 'URL'} of an earlier \`smart export\` (it holds export.json)`,
      },
    );
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

  readonly sink: Sink;

  constructor(
    target: string | Sink,
    public state: ExportState,
    private readonly intervalMs = 1_000,
  ) {
    this.sink = asSink(target);
  }

  get path(): string {
    return this.sink.describe(STATE_FILE);
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
      .then(() => this.sink.writeText(STATE_FILE, snapshot));
    return this.writing;
  }

  /** Flush when something changed since the last write. */
  async settle(): Promise<void> {
    if (this.dirty) await this.flush();
    else await this.writing.catch(() => undefined);
  }
}
