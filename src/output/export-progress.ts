import type { OutStream } from '../context.js';
import type { ExportEvent, ExportSummary, FileKind } from '../core/export/types.js';
import { formatDuration } from '../core/duration.js';
import { escapeControls } from './escape.js';
import { terminalWidth } from './format.js';

/** Draws the export's events; `finish()` clears whatever is live on the terminal. */
export interface ExportReporter {
  onEvent(e: ExportEvent): void;
  finish(): void;
}

export type ReporterMode = 'tty' | 'plain' | 'ndjson' | 'quiet';

export function createExportReporter(
  mode: ReporterMode,
  streams: { stdout: OutStream; stderr: OutStream },
  now: () => number = Date.now,
): ExportReporter {
  switch (mode) {
    case 'ndjson':
      return ndjsonReporter(streams.stdout);
    case 'tty':
      return new TtyReporter(streams.stderr, now);
    case 'plain':
      return plainReporter(streams.stderr);
    case 'quiet':
      return { onEvent: () => undefined, finish: () => undefined };
  }
}

// ---------------------------------------------------------------------------------------------
// formatting

export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = -1;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${v >= 100 ? Math.round(v) : v.toFixed(1)} ${units[u]}`;
}

export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${formatCount(n)} ${n === 1 ? one : many}`;
}

function kindLabel(kind: FileKind): string {
  return kind === 'output' ? '' : ` (${kind})`;
}

/** The closing lines for a person: totals, transactionTime, the server's error[] issues. */
export function summaryLines(s: ExportSummary): string[] {
  const lines: string[] = [];
  const out = s.files.filter((f) => f.kind === 'output').length;
  lines.push(
    `exported ${plural(s.resources, 'resource')} in ${plural(out, 'file')} (${formatBytes(s.bytes)}) to ${s.outDir} in ${formatDuration(s.durationMs, 'clock')}` +
      (s.skipped ? ` (${s.skipped} already downloaded)` : ''),
  );
  if (s.transactionTime) {
    lines.push(`transactionTime ${s.transactionTime}: use it as the next --since`);
  }
  if (s.errorCount > 0 || s.errors.length > 0) {
    const errFiles = s.files.filter((f) => f.kind === 'error').length;
    lines.push(
      `the server reported ${plural(s.errorCount, 'OperationOutcome')} in ${plural(errFiles, 'error file')}:`,
    );
    for (const i of s.errors) {
      const head = [i.severity, i.code].filter(Boolean).join(' ');
      lines.push(`  ${head}${head && i.diagnostics ? ': ' : ''}${i.diagnostics ?? ''}`);
    }
    if (s.errorCount > s.errors.length) lines.push(`  ... see ${s.outDir}/error/ for the rest`);
  }
  for (const m of s.mismatches) {
    lines.push(`mismatch: ${m.file} has ${m.actual} resources, the manifest says ${m.expected}`);
  }
  return lines;
}

// ---------------------------------------------------------------------------------------------
// -o ndjson: the events themselves

function ndjsonReporter(out: OutStream): ExportReporter {
  return {
    onEvent: (e) => void out.write(JSON.stringify(e) + '\n'),
    finish: () => undefined,
  };
}

// ---------------------------------------------------------------------------------------------
// not a TTY: one plain line per step

function plainReporter(err: OutStream): ExportReporter {
  // Lines name files, URLs and the server's words: controls escaped.
  const line = (s: string) => void err.write(escapeControls(s, { oneLine: true }) + '\n');
  let lastProgress: string | undefined;
  let polls = 0;
  return {
    onEvent(e) {
      switch (e.event) {
        case 'kickoff':
          return line(`kick-off: ${e.method} ${e.url}`);
        case 'accepted':
          return line(`export accepted; polling ${e.statusUrl} (state in ${e.outDir}/export.json)`);
        case 'resume':
          return line(`resuming the export started ${e.startedAt}: ${e.statusUrl}`);
        case 'status': {
          const text = e.progress ?? 'in progress';
          polls++;
          if (text === lastProgress) return;
          lastProgress = text;
          return line(`status: ${text} (${formatDuration(e.elapsedMs, 'clock')})`);
        }
        case 'wait':
          return line(`waiting ${formatDuration(e.delayMs, 'clock')}: ${e.reason}`);
        case 'manifest': {
          const parts = [`${e.output} output`];
          if (e.error) parts.push(`${e.error} error`);
          if (e.deleted) parts.push(`${e.deleted} deleted`);
          line(
            `export complete${polls ? ` after ${plural(polls, 'poll')}` : ''}: ${plural(e.files, 'file')} (${parts.join(', ')})` +
              (e.resources !== undefined ? `, ${plural(e.resources, 'resource')}` : '') +
              `; transactionTime ${e.transactionTime || 'not given'}`,
          );
          if (e.pending < e.files)
            line(`${e.files - e.pending} already downloaded, ${e.pending} to fetch`);
          return;
        }
        case 'file-done':
          return line(
            `downloaded ${e.file}${kindLabel(e.kind)}: ${plural(e.resources, 'resource')}, ${formatBytes(e.bytes)}`,
          );
        case 'file-retry':
          return line(
            `retrying ${e.file} (attempt ${e.attempt})${e.delayMs ? ` in ${formatDuration(e.delayMs, 'clock')}` : ''}: ${e.reason}`,
          );
        case 'warning':
          return line(`warning: ${e.message}`);
        case 'complete':
          for (const l of summaryLines(e.summary)) line(l);
          return;
        case 'file-start':
        case 'file-progress':
        case 'file-skip':
        case 'interrupted':
          return;
      }
    },
    finish: () => undefined,
  };
}

// ---------------------------------------------------------------------------------------------
// a TTY: a live area redrawn in place on stderr, about ten times a second

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const FRAME_MS = 100;
/** Above this many files, finished files are not listed one by one. */
const LIST_DONE_MAX = 40;

interface Active {
  file: string;
  count?: number;
  bytes: number;
  resources: number;
}

function bar(fraction: number, width: number): string {
  const f = Math.max(0, Math.min(1, fraction));
  const full = Math.round(f * width);
  return `[${'#'.repeat(full)}${'-'.repeat(width - full)}]`;
}

export class TtyReporter implements ExportReporter {
  private phase: 'start' | 'poll' | 'download' | 'done' = 'start';
  private drawn = 0;
  private timer?: NodeJS.Timeout;
  private frame = 0;
  private pollStart = 0;
  private progress?: string;
  private waitReason?: string;
  private downloadStart = 0;
  private totalFiles = 0;
  private doneFiles = 0;
  private expected?: number;
  private doneBytes = 0;
  /** Bytes of files a resume found already on disk: counted in the totals, not in the rate. */
  private skippedBytes = 0;
  private doneResources = 0;
  private readonly active = new Map<string, Active>();

  constructor(
    private readonly err: OutStream,
    private readonly now: () => number,
  ) {}

  onEvent(e: ExportEvent): void {
    switch (e.event) {
      case 'kickoff':
        this.print(`kick-off: ${e.method} ${e.url}`);
        break;
      case 'accepted':
        this.print(`export accepted; state in ${e.outDir}/export.json`);
        this.startPolling();
        break;
      case 'resume':
        this.print(`resuming the export started ${e.startedAt}`);
        this.startPolling();
        break;
      case 'status':
        this.progress = e.progress;
        this.waitReason = undefined;
        break;
      case 'wait':
        this.waitReason = `waiting ${formatDuration(e.delayMs, 'clock')}: ${e.reason}`;
        if (this.phase === 'download') this.print(this.waitReason);
        break;
      case 'manifest':
        this.phase = 'download';
        this.downloadStart = this.now();
        this.totalFiles = e.files;
        this.expected = e.resources;
        this.print(
          `export ready: ${plural(e.files, 'file')}${e.resources !== undefined ? `, ${plural(e.resources, 'resource')}` : ''}` +
            (e.pending < e.files ? ` (${e.files - e.pending} already downloaded)` : ''),
        );
        this.tick();
        break;
      case 'file-start':
        this.active.set(e.file, { file: e.file, count: e.count, bytes: 0, resources: 0 });
        break;
      case 'file-progress': {
        const a = this.active.get(e.file);
        if (a) {
          a.bytes = e.bytes;
          a.resources = e.resources;
        }
        break;
      }
      case 'file-retry': {
        const a = this.active.get(e.file);
        if (a) {
          a.bytes = 0;
          a.resources = 0;
        }
        this.print(`retrying ${e.file} (attempt ${e.attempt}): ${e.reason}`);
        break;
      }
      case 'file-done':
        this.active.delete(e.file);
        this.doneFiles++;
        this.doneBytes += e.bytes;
        this.doneResources += e.kind === 'output' ? e.resources : 0;
        if (this.totalFiles <= LIST_DONE_MAX) {
          this.print(
            `✓ ${e.file}${kindLabel(e.kind)}  ${plural(e.resources, 'resource')}  ${formatBytes(e.bytes)}`,
          );
        }
        break;
      case 'file-skip':
        this.doneFiles++;
        this.doneBytes += e.bytes;
        this.skippedBytes += e.bytes;
        this.doneResources += e.kind === 'output' ? e.resources : 0;
        break;
      case 'warning':
        this.print(`warning: ${e.message}`);
        break;
      case 'interrupted':
        this.stop();
        break;
      case 'complete':
        this.stop();
        for (const l of summaryLines(e.summary)) this.print(l);
        break;
    }
  }

  finish(): void {
    this.stop();
  }

  private startPolling(): void {
    this.phase = 'poll';
    this.pollStart = this.now();
    this.tick();
  }

  private tick(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.render(), FRAME_MS);
    this.timer.unref();
    this.render();
  }

  private stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.clear();
    this.phase = 'done';
  }

  private width(): number {
    return Math.max(40, terminalWidth(this.err) - 1);
  }

  private live(): string[] {
    const spin = SPINNER[this.frame++ % SPINNER.length];
    if (this.phase === 'poll') {
      const elapsed = formatDuration(this.now() - this.pollStart, 'clock');
      return [
        `${spin} export running  ${elapsed}  ${this.waitReason ?? this.progress ?? 'waiting for the server'}`,
      ];
    }
    if (this.phase !== 'download') return [];
    let bytes = this.doneBytes;
    let resources = this.doneResources;
    for (const a of this.active.values()) {
      bytes += a.bytes;
      resources += a.resources;
    }
    const secs = Math.max(0.001, (this.now() - this.downloadStart) / 1000);
    const fraction =
      this.expected !== undefined && this.expected > 0
        ? resources / this.expected
        : this.totalFiles
          ? this.doneFiles / this.totalFiles
          : 1;
    const lines = [
      `${spin} ${bar(fraction, 24)} ${this.doneFiles}/${this.totalFiles} files  ` +
        `${formatCount(resources)}${this.expected !== undefined ? `/${formatCount(this.expected)}` : ''} resources  ` +
        `${formatBytes(bytes)}  ${formatBytes(Math.round((bytes - this.skippedBytes) / secs))}/s  ${formatDuration(secs * 1000, 'clock')}`,
    ];
    for (const a of this.active.values()) {
      const f = a.count ? a.resources / a.count : undefined;
      lines.push(
        `  ${a.file.padEnd(28)} ${f !== undefined ? `${bar(f, 16)} ` : ''}${formatCount(a.resources)}${a.count !== undefined ? `/${formatCount(a.count)}` : ''}  ${formatBytes(a.bytes)}`,
      );
    }
    return lines;
  }

  private render(): void {
    if (this.phase === 'done') return;
    const w = this.width();
    const lines = this.live()
      .map((l) => escapeControls(l, { oneLine: true }))
      .map((l) => (l.length > w ? `${l.slice(0, w - 1)}…` : l));
    this.err.write(this.clearSeq() + lines.join('\n'));
    this.drawn = lines.length;
  }

  private clearSeq(): string {
    if (this.drawn === 0) return '';
    return `\r${this.drawn > 1 ? `\x1b[${this.drawn - 1}A` : ''}\x1b[J`;
  }

  private clear(): void {
    if (this.drawn) this.err.write(this.clearSeq());
    this.drawn = 0;
  }

  /** A permanent line above the live area. */
  private print(text: string): void {
    this.clear();
    this.err.write(escapeControls(text) + '\n');
    if (this.timer) this.render();
  }
}
