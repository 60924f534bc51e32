import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { redactUrl } from '../redact.js';
import type { Run } from './options.js';
import type { Sink } from './sinks/types.js';
import type { ExportIssue, ExportState, ExportSummary } from './types.js';

/** How many error[] issues the summary quotes. */
const MAX_ISSUES = 10;

/** The figures of a completed export, from its state and its error[] files. */
export async function summarize(run: Run, state: ExportState): Promise<ExportSummary> {
  const files = state.files ?? [];
  const resourcesByType: Record<string, number> = {};
  let resources = 0;
  let bytes = 0;
  for (const f of files) {
    bytes += f.bytes ?? 0;
    if (f.kind !== 'output') continue;
    resources += f.resources ?? 0;
    resourcesByType[f.type] = (resourcesByType[f.type] ?? 0) + (f.resources ?? 0);
  }
  const errorFiles = files.filter((f) => f.kind === 'error');
  const errors: ExportIssue[] = [];
  for (const f of errorFiles) {
    if (errors.length >= MAX_ISSUES) break;
    errors.push(...(await readIssues(run.sink, f.name, MAX_ISSUES - errors.length)));
  }
  const downloadedNow = files.filter(
    (f) => f.completedAt && Date.parse(f.completedAt) >= run.started,
  );
  return {
    outDir: run.o.outDir,
    destination: { kind: run.sink.kind, url: run.sink.location },
    statusUrl: redactUrl(state.statusUrl),
    request: redactUrl(state.kickoff.url),
    transactionTime: state.transactionTime ?? '',
    requiresAccessToken: state.requiresAccessToken ?? false,
    files: files.map((f) => ({
      kind: f.kind,
      type: f.type,
      file: f.name,
      resources: f.resources ?? 0,
      bytes: f.bytes ?? 0,
    })),
    resourcesByType,
    resources,
    bytes,
    durationMs: run.now() - run.started,
    downloaded: downloadedNow.length,
    skipped: files.length - downloadedNow.length,
    errors,
    errorCount: errorFiles.reduce((a, f) => a + (f.resources ?? 0), 0),
    mismatches: files
      .filter((f) => f.status === 'mismatch')
      .map((f) => ({ file: f.name, expected: f.count ?? 0, actual: f.resources ?? 0 })),
    errorCountMismatches: errorFiles
      .filter((f) => f.status === 'done' && f.count !== undefined && f.resources !== f.count)
      .map((f) => ({ file: f.name, expected: f.count ?? 0, actual: f.resources ?? 0 })),
  };
}

/** The first issues of an error[] file (NDJSON OperationOutcomes), read line by line. */
export async function readIssues(
  from: string | Sink,
  name: string,
  max: number,
): Promise<ExportIssue[]> {
  const issues: ExportIssue[] = [];
  if (max <= 0) return issues;
  // A path: that file; a sink: its file `name`.
  let input: Readable;
  try {
    input = typeof from === 'string' ? createReadStream(from) : await from.read(name);
  } catch {
    return issues;
  }
  input.setEncoding('utf8');
  input.on('error', () => undefined);
  const lines = createInterface({ input, crlfDelay: Infinity });
  try {
    for await (const line of lines) {
      if (!line.trim()) continue;
      let oo: { resourceType?: string; issue?: Array<Record<string, unknown>> };
      try {
        oo = JSON.parse(line);
      } catch {
        issues.push({ file: name, diagnostics: `not JSON: ${line.slice(0, 120)}` });
        if (issues.length >= max) break;
        continue;
      }
      for (const i of Array.isArray(oo.issue) ? oo.issue : []) {
        const details = i.details as { text?: string } | undefined;
        const issue: ExportIssue = { file: name };
        if (typeof i.severity === 'string') issue.severity = i.severity;
        if (typeof i.code === 'string') issue.code = i.code;
        const text = typeof i.diagnostics === 'string' ? i.diagnostics : details?.text;
        if (text) issue.diagnostics = text;
        issues.push(issue);
        if (issues.length >= max) break;
      }
      if (issues.length >= max) break;
    }
  } catch {
    // An unreadable error file is still listed in files[]; the summary just quotes less.
  } finally {
    lines.close();
    input.destroy();
  }
  return issues;
}
