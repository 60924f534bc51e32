import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { OutStream } from '../../../src/context.js';
import type { ExportEvent, ExportSummary } from '../../../src/core/export/types.js';
import {
  createExportReporter,
  formatBytes,
  summaryLines,
} from '../../../src/output/export-progress.js';

function sink(tty = false): OutStream & { text: () => string } {
  let text = '';
  const s = new Writable({
    write(chunk, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  }) as OutStream & { text: () => string };
  s.isTTY = tty;
  s.columns = 100;
  s.text = () => text;
  return s;
}

const summary: ExportSummary = {
  outDir: '/tmp/out',
  destination: { kind: 'directory', url: '/tmp/out' },
  statusUrl: 'http://x/status/1',
  transactionTime: '2024-06-01T00:00:00Z',
  requiresAccessToken: true,
  files: [
    { kind: 'output', type: 'Patient', file: 'Patient.000.ndjson', resources: 10, bytes: 2048 },
    {
      kind: 'error',
      type: 'OperationOutcome',
      file: 'error/OperationOutcome.000.ndjson',
      resources: 12,
      bytes: 900,
    },
  ],
  resourcesByType: { Patient: 10 },
  resources: 10,
  bytes: 2948,
  durationMs: 1234,
  downloaded: 2,
  skipped: 0,
  errors: [
    {
      file: 'error/OperationOutcome.000.ndjson',
      severity: 'error',
      code: 'processing',
      diagnostics: 'bad thing',
    },
  ],
  errorCount: 12,
  mismatches: [],
  errorCountMismatches: [],
};

const events: ExportEvent[] = [
  { event: 'kickoff', method: 'GET', url: 'http://x/fhir/$export?_type=Patient' },
  { event: 'accepted', statusUrl: 'http://x/status/1', outDir: '/tmp/out' },
  { event: 'status', progress: '10%', elapsedMs: 10, nextPollMs: 1000 },
  { event: 'status', progress: '10%', elapsedMs: 1010, nextPollMs: 1000 },
  { event: 'wait', status: 429, reason: 'slow down', delayMs: 2000, elapsedMs: 2000 },
  { event: 'status', progress: '80%', elapsedMs: 4010, nextPollMs: 1000 },
  {
    event: 'manifest',
    transactionTime: '2024-06-01T00:00:00Z',
    requiresAccessToken: true,
    files: 2,
    output: 1,
    error: 1,
    deleted: 0,
    resources: 10,
    pending: 2,
  },
  {
    event: 'file-start',
    file: 'Patient.000.ndjson',
    kind: 'output',
    resourceType: 'Patient',
    count: 10,
  },
  { event: 'file-progress', file: 'Patient.000.ndjson', bytes: 1000, resources: 5 },
  {
    event: 'file-retry',
    file: 'Patient.000.ndjson',
    attempt: 2,
    delayMs: 500,
    reason: 'connection broke off',
  },
  {
    event: 'file-done',
    file: 'Patient.000.ndjson',
    kind: 'output',
    resourceType: 'Patient',
    bytes: 2048,
    resources: 10,
    ms: 5,
  },
  { event: 'complete', summary },
];

describe('export reporters', () => {
  it('plain: one line per step, repeated statuses folded', () => {
    const err = sink();
    const r = createExportReporter('plain', { stdout: sink(), stderr: err });
    for (const e of events) r.onEvent(e);
    r.finish();
    expect(err.text().split('\n')).toEqual([
      'kick-off: GET http://x/fhir/$export?_type=Patient',
      'export accepted; polling http://x/status/1 (state in /tmp/out/export.json)',
      'status: 10% (0.0 s)',
      'waiting 2.0 s: slow down',
      'status: 80% (4.0 s)',
      'export complete after 3 polls: 2 files (1 output, 1 error), 10 resources; transactionTime 2024-06-01T00:00:00Z',
      'retrying Patient.000.ndjson (attempt 2) in 0.5 s: connection broke off',
      'downloaded Patient.000.ndjson: 10 resources, 2.0 kB',
      'exported 10 resources in 1 file (2.9 kB) to /tmp/out in 1.2 s',
      'transactionTime 2024-06-01T00:00:00Z: use it as the next --since',
      'the server reported 12 OperationOutcomes in 1 error file:',
      '  error processing: bad thing',
      '  ... see /tmp/out/error/ for the rest',
      '',
    ]);
  });

  it('ndjson: the events themselves on stdout, nothing on stderr', () => {
    const out = sink();
    const err = sink();
    const r = createExportReporter('ndjson', { stdout: out, stderr: err });
    for (const e of events) r.onEvent(e);
    const lines = out
      .text()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toEqual(events);
    expect(err.text()).toBe('');
  });

  it('tty: redraws a live area in place and leaves only permanent lines', () => {
    const err = sink(true);
    const r = createExportReporter('tty', { stdout: sink(), stderr: err }, () => 0);
    for (const e of events) r.onEvent(e);
    r.finish();
    const text = err.text();
    expect(text).toContain('\x1b[J'); // cleared and redrawn
    expect(text).toMatch(/export running {2}0\.0 s/);
    expect(text).toMatch(/\[-+\] 0\/2 files/);
    expect(text).toContain('✓ Patient.000.ndjson  10 resources  2.0 kB\n');
    // What stays on screen once the live area is gone:
    const ESC = String.fromCharCode(27);
    const final = text.replace(new RegExp(`[^\n]*\r(${ESC}\\[\\d+A)?${ESC}\\[J`, 'g'), '');
    expect(final).toContain('exported 10 resources in 1 file');
    expect(
      final.endsWith(
        'use it as the next --since\nthe server reported 12 OperationOutcomes in 1 error file:\n  error processing: bad thing\n  ... see /tmp/out/error/ for the rest\n',
      ),
    ).toBe(true);
  });

  it('tty: the rate counts only bytes downloaded now, not files a resume found on disk', () => {
    const err = sink(true);
    let t = 0;
    const r = createExportReporter('tty', { stdout: sink(), stderr: err }, () => t);
    r.onEvent({ event: 'resume', statusUrl: 'http://x/s/1', outDir: '/o', startedAt: 'then' });
    r.onEvent({
      event: 'manifest',
      transactionTime: '',
      requiresAccessToken: true,
      files: 2,
      output: 2,
      error: 0,
      deleted: 0,
      pending: 1,
    });
    r.onEvent({
      event: 'file-skip',
      file: 'Patient.000.ndjson',
      kind: 'output',
      resourceType: 'Patient',
      bytes: 50_000_000,
      resources: 1000,
    });
    r.onEvent({
      event: 'file-start',
      file: 'Patient.001.ndjson',
      kind: 'output',
      resourceType: 'Patient',
    });
    t = 2000;
    r.onEvent({
      event: 'file-progress',
      file: 'Patient.001.ndjson',
      bytes: 2_000_000,
      resources: 10,
    });
    r.onEvent({ event: 'warning', message: 'redraw' });
    r.finish();
    // 2 MB in 2 s, not 52 MB in 2 s.
    expect(err.text()).toMatch(/1\/2 files {2}1,010 resources {2}52\.0 MB {2}1\.0 MB\/s {2}2\.0 s/);
  });

  it('summarizes mismatches and sizes', () => {
    expect(
      summaryLines({
        ...summary,
        errors: [],
        errorCount: 0,
        mismatches: [{ file: 'a', expected: 3, actual: 2 }],
      }),
    ).toContain('mismatch: a has 2 resources, the manifest says 3');
    expect([0, 999, 1000, 1_500_000, 2e9].map(formatBytes)).toEqual([
      '0 B',
      '999 B',
      '1.0 kB',
      '1.5 MB',
      '2.0 GB',
    ]);
  });
});
