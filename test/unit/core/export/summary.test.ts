import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeRun } from '../../../../src/core/export/options.js';
import { readIssues, summarize } from '../../../../src/core/export/summary.js';
import type { ExportState, FileState } from '../../../../src/core/export/types.js';
import { tempDir } from '../../../helpers/tmp.js';
import { OO, httpSession } from './helpers.js';

const session = httpSession(
  () => 'http://127.0.0.1:9',
  () => {
    throw new Error('no request in these tests');
  },
);
const http = () => {
  throw new Error('no request in these tests');
};

const STARTED = Date.parse('2024-06-01T12:00:00Z');
const before = new Date(STARTED - 60_000).toISOString();
const after = new Date(STARTED + 1_000).toISOString();

function file(over: Partial<FileState> & Pick<FileState, 'name' | 'kind' | 'type'>): FileState {
  return { url: `http://fhir.test/files/${over.name}`, status: 'done', ...over };
}

function stateWith(files: FileState[], over: Partial<ExportState> = {}): ExportState {
  return {
    version: 1,
    statusUrl: 'http://fhir.test/fhir/status/1?sig=s3cr3t',
    kickoff: {
      url: 'http://fhir.test/fhir/$export?access_token=eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.',
      method: 'GET',
      params: { level: { kind: 'system' }, method: 'GET' },
    },
    startedAt: before,
    status: 'complete',
    transactionTime: '2024-06-01T00:00:00Z',
    requiresAccessToken: true,
    files,
    ...over,
  };
}

/** A run that started at STARTED and is looked at 2.5 s later. */
function runIn(outDir: string) {
  let t = STARTED;
  const run = makeRun({ session, http, outDir, now: () => t });
  t += 2_500;
  return run;
}

const ndjson = (...lines: unknown[]) =>
  lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n';

describe('summarize', () => {
  it('adds up resources per type (output[] only), bytes of every file, and the run', async () => {
    const dir = tempDir('smart-export-summary-');
    const s = await summarize(
      runIn(dir),
      stateWith([
        file({
          name: 'Patient.000.ndjson',
          kind: 'output',
          type: 'Patient',
          resources: 3,
          bytes: 300,
          completedAt: before,
        }),
        file({
          name: 'Patient.001.ndjson',
          kind: 'output',
          type: 'Patient',
          resources: 2,
          bytes: 200,
          completedAt: after,
        }),
        file({
          name: 'Observation.000.ndjson',
          kind: 'output',
          type: 'Observation',
          resources: 7,
          bytes: 700,
          completedAt: after,
        }),
        file({
          name: 'deleted/Bundle.000.ndjson',
          kind: 'deleted',
          type: 'Bundle',
          resources: 4,
          bytes: 40,
          completedAt: after,
        }),
      ]),
    );
    expect(s).toMatchObject({
      outDir: dir,
      destination: { kind: 'directory', url: dir },
      transactionTime: '2024-06-01T00:00:00Z',
      requiresAccessToken: true,
      resourcesByType: { Patient: 5, Observation: 7 },
      resources: 12,
      bytes: 1240,
      durationMs: 2_500,
      // Finished in this run, and kept from an earlier one.
      downloaded: 3,
      skipped: 1,
      errors: [],
      errorCount: 0,
      mismatches: [],
      errorCountMismatches: [],
    });
    expect(s.files[3]).toEqual({
      kind: 'deleted',
      type: 'Bundle',
      file: 'deleted/Bundle.000.ndjson',
      resources: 4,
      bytes: 40,
    });
    // URLs that are printed carry no secret.
    expect(s.statusUrl).not.toContain('s3cr3t');
    expect(s.request).not.toContain('eyJ');
  });

  it('an export with no files, no transactionTime: zeros and defaults', async () => {
    const dir = tempDir('smart-export-summary-');
    const st = stateWith([], { transactionTime: undefined, requiresAccessToken: undefined });
    delete st.files;
    expect(await summarize(runIn(dir), st)).toMatchObject({
      transactionTime: '',
      requiresAccessToken: false,
      files: [],
      resources: 0,
      bytes: 0,
      downloaded: 0,
      skipped: 0,
    });
  });

  it('lists mismatched output files and error[] files whose count is not their lines', async () => {
    const dir = tempDir('smart-export-summary-');
    mkdirSync(join(dir, 'error'));
    writeFileSync(join(dir, 'error', 'OperationOutcome.000.ndjson'), ndjson(OO('processing')));
    const s = await summarize(
      runIn(dir),
      stateWith([
        file({
          name: 'Patient.000.ndjson',
          kind: 'output',
          type: 'Patient',
          status: 'mismatch',
          count: 10,
          resources: 9,
        }),
        file({
          name: 'error/OperationOutcome.000.ndjson',
          kind: 'error',
          type: 'OperationOutcome',
          count: 4,
          resources: 1,
        }),
        file({
          name: 'error/OperationOutcome.001.ndjson',
          kind: 'error',
          type: 'OperationOutcome',
          count: 2,
          resources: 2,
        }),
      ]),
    );
    expect(s.mismatches).toEqual([{ file: 'Patient.000.ndjson', expected: 10, actual: 9 }]);
    expect(s.errorCountMismatches).toEqual([
      { file: 'error/OperationOutcome.000.ndjson', expected: 4, actual: 1 },
    ]);
    expect(s.errorCount).toBe(3);
    // error[] lines are not resources of the export.
    expect(s.resources).toBe(9);
  });

  it('quotes the first 10 issues of the error[] files, the missing one skipped', async () => {
    const dir = tempDir('smart-export-summary-');
    mkdirSync(join(dir, 'error'));
    const many = Array.from({ length: 6 }, (_, i) => OO('processing', `problem ${i}`));
    writeFileSync(join(dir, 'error', 'OperationOutcome.001.ndjson'), ndjson(...many));
    writeFileSync(join(dir, 'error', 'OperationOutcome.002.ndjson'), ndjson(...many));
    const s = await summarize(
      runIn(dir),
      stateWith(
        ['000', '001', '002'].map((n) =>
          file({
            name: `error/OperationOutcome.${n}.ndjson`,
            kind: 'error',
            type: 'OperationOutcome',
            resources: 6,
          }),
        ),
      ),
    );
    expect(s.errors).toHaveLength(10);
    expect(s.errors[0]).toEqual({
      file: 'error/OperationOutcome.001.ndjson',
      severity: 'error',
      code: 'processing',
      diagnostics: 'problem 0',
    });
    expect(s.errors[9]).toMatchObject({
      file: 'error/OperationOutcome.002.ndjson',
      diagnostics: 'problem 3',
    });
    expect(s.errorCount).toBe(18);
  });
});

describe('readIssues', () => {
  const dir = tempDir('smart-export-issues-');
  const path = join(dir, 'errors.ndjson');
  writeFileSync(
    path,
    [
      JSON.stringify({
        resourceType: 'OperationOutcome',
        issue: [
          { severity: 'error', code: 'not-found', details: { text: 'Patient/9 is gone' } },
          {
            severity: 'warning',
            code: 'informational',
            diagnostics: 'both',
            details: { text: 'x' },
          },
          { severity: 7, code: null },
        ],
      }),
      '',
      '   ',
      '{"resourceType": "OperationOutcome", "issue": "not a list"}',
      `not json \u001b[31m ${'x'.repeat(200)}`,
      JSON.stringify(OO('exception', 'last')),
    ].join('\r\n'),
  );

  it('reads each issue: diagnostics, else details.text; skips blank lines; names a line that is not JSON', async () => {
    const issues = await readIssues(path, 'error/OperationOutcome.000.ndjson', 100);
    expect(issues).toEqual([
      {
        file: 'error/OperationOutcome.000.ndjson',
        severity: 'error',
        code: 'not-found',
        diagnostics: 'Patient/9 is gone',
      },
      {
        file: 'error/OperationOutcome.000.ndjson',
        severity: 'warning',
        code: 'informational',
        diagnostics: 'both',
      },
      { file: 'error/OperationOutcome.000.ndjson' },
      {
        file: 'error/OperationOutcome.000.ndjson',
        diagnostics: `not JSON: ${`not json \u001b[31m ${'x'.repeat(200)}`.slice(0, 120)}`,
      },
      {
        file: 'error/OperationOutcome.000.ndjson',
        severity: 'error',
        code: 'exception',
        diagnostics: 'last',
      },
    ]);
  });

  it('stops at max, also inside one OperationOutcome and at a line that is not JSON', async () => {
    expect(await readIssues(path, 'e', 0)).toEqual([]);
    expect(await readIssues(path, 'e', 2)).toHaveLength(2);
    expect(await readIssues(path, 'e', 4)).toHaveLength(4);
    expect((await readIssues(path, 'e', 4))[3]!.diagnostics).toMatch(/^not JSON/);
  });

  it('a missing file quotes nothing and does not fail', async () => {
    expect(await readIssues(join(dir, 'nope.ndjson'), 'e', 10)).toEqual([]);
  });
});
