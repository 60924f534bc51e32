import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ACCEPTED_OUTPUT_FORMATS,
  checkOutputFormat,
  extensionFor,
  planFiles,
  safeTypeName,
} from '../../../../src/core/export/naming.js';
import type { Manifest } from '../../../../src/core/export/types.js';

describe('file naming', () => {
  const manifest: Manifest = {
    transactionTime: 't',
    request: 'r',
    requiresAccessToken: true,
    output: [
      { type: 'Patient', url: 'http://x/a/../../etc/passwd', count: 2 },
      { type: 'Observation', url: 'http://x/2' },
      { type: 'Patient', url: 'http://x/3', count: 1 },
      { type: '../../evil', url: 'http://x/4' },
    ],
    error: [{ type: 'OperationOutcome', url: 'http://x/e' }],
    deleted: [{ type: 'Bundle', url: 'http://x/d', count: 3 }],
  };
  it('names files by type and index, never by URL', () => {
    expect(planFiles(manifest).map((f) => f.name)).toEqual([
      'Patient.000.ndjson',
      'Observation.000.ndjson',
      'Patient.001.ndjson',
      'unknown______evil.000.ndjson',
      'error/OperationOutcome.000.ndjson',
      'deleted/Bundle.000.ndjson',
    ]);
    expect(planFiles(manifest)[0]).toMatchObject({ kind: 'output', count: 2 });
    expect(planFiles(manifest)[1]!.count).toBeUndefined();
  });
  it('widens the index past 1000 files of a type, and knows gzip', () => {
    const many: Manifest = {
      ...manifest,
      output: Array.from({ length: 1001 }, (_, i) => ({
        type: 'Observation',
        url: `http://x/${i}`,
      })),
      error: [],
      deleted: undefined,
    };
    const names = planFiles(many, 'application/fhir+ndjson+gzip').map((f) => f.name);
    expect(names[0]).toBe('Observation.0000.ndjson.gz');
    expect(names[1000]).toBe('Observation.1000.ndjson.gz');
  });
  it('cleans types', () => {
    expect(safeTypeName('Patient')).toBe('Patient');
    expect(safeTypeName('')).toBe('unknown');
    expect(safeTypeName(undefined)).toBe('unknown');
    expect(safeTypeName('a/b')).toBe('a_b');
  });
});

describe('file names from hostile manifests', () => {
  const only = (output: Manifest['output'], rest: Partial<Manifest> = {}): Manifest => ({
    transactionTime: 't',
    request: 'r',
    requiresAccessToken: false,
    output,
    error: [],
    ...rest,
  });

  it('types that clean to the same name get their own indexes, never the same file', () => {
    const files = planFiles(
      only([
        { type: 'a/b', url: 'http://x/1' },
        { type: 'a_b', url: 'http://x/2' },
        { type: 'a.b', url: 'http://x/3' },
      ]),
    );
    expect(files.map((f) => f.name)).toEqual([
      'a_b.000.ndjson',
      'a_b.001.ndjson',
      'a_b.002.ndjson',
    ]);
    // The type is reported as the server wrote it.
    expect(files.map((f) => f.type)).toEqual(['a/b', 'a_b', 'a.b']);
  });

  it('path parts, control characters, a leading dash, non-ASCII and very long types are cleaned', () => {
    expect(safeTypeName('../..')).toBe('unknown_____');
    expect(safeTypeName('..\\..\\x')).toBe('unknown______x');
    expect(safeTypeName('Pat\u0000ient\n\u001b[31m')).toBe('Pat_ient___31m');
    expect(safeTypeName('-rf')).toBe('unknown-rf');
    expect(safeTypeName('Patiënt')).toBe('Pati_nt');
    expect(safeTypeName('P'.repeat(500))).toBe('P'.repeat(64));
    expect(safeTypeName('_'.repeat(500))).toBe(`unknown${'_'.repeat(57)}`);
    expect(safeTypeName(42)).toBe('unknown');
    expect(safeTypeName({ toString: () => '../x' })).toBe('unknown');
    // A type that is not a string is reported by its cleaned name.
    expect(planFiles(only([{ type: 7 as unknown as string, url: 'http://x/1' }]))[0]).toMatchObject(
      {
        type: 'unknown',
        name: 'unknown.000.ndjson',
      },
    );
  });

  it('every name stays in the export directory and is unique, whatever the types', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.string(), fc.constantFrom('..', '/', '.', 'Patient', '\u0000')), {
          maxLength: 30,
        }),
        (types) => {
          const entries = types.map((type, i) => ({ type, url: `http://x/${i}` }));
          const names = planFiles(only(entries, { error: entries, deleted: entries })).map(
            (f) => f.name,
          );
          expect(new Set(names).size).toBe(names.length);
          for (const n of names) {
            expect(n).toMatch(
              /^(error\/|deleted\/)?[A-Za-z0-9][A-Za-z0-9_-]{0,63}\.\d{3,}\.ndjson$/,
            );
          }
        },
      ),
    );
  });

  it('keeps only counts that are whole numbers from 0', () => {
    const counts = [0, 5, -1, 1.5, '3', Number.NaN, null];
    const files = planFiles(
      only(counts.map((count, i) => ({ type: 'Patient', url: `http://x/${i}`, count }) as never)),
    );
    expect(files.map((f) => f.count)).toEqual([
      0,
      5,
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
    expect(files.filter((f) => 'count' in f)).toHaveLength(2);
  });

  it('lists that are missing or not lists are skipped', () => {
    const m = only([{ type: 'Patient', url: 'http://x/1' }], {
      error: undefined as never,
      deleted: 'no' as never,
    });
    expect(planFiles(m).map((f) => f.name)).toEqual(['Patient.000.ndjson']);
  });
});

describe('output formats', () => {
  it('accepts the NDJSON spellings (any case, trimmed) and the gzip form', () => {
    for (const f of ACCEPTED_OUTPUT_FORMATS) expect(checkOutputFormat(f)).toBe(f);
    expect(checkOutputFormat('  NDJSON ')).toBe('NDJSON');
    expect(checkOutputFormat('Application/FHIR+NDJSON')).toBe('Application/FHIR+NDJSON');
  });

  it('refuses anything else before any request: a usage error (exit 2) naming the formats', () => {
    for (const bad of ['text/csv', 'application/fhir+json', 'parquet', '', 'ndjson; charset=x']) {
      let e: unknown;
      try {
        checkOutputFormat(bad);
      } catch (x) {
        e = x;
      }
      expect(e, bad).toMatchObject({
        kind: 'usage',
        exitCode: 2,
        code: 'bad_output_format',
        message: `--output-format "${bad}" is not one smart can save: it writes NDJSON files`,
        hint: expect.stringContaining('application/fhir+ndjson, application/ndjson, ndjson'),
      });
    }
  });

  it('names gzip files .ndjson.gz, everything else .ndjson', () => {
    expect(extensionFor()).toBe('.ndjson');
    expect(extensionFor('application/fhir+ndjson')).toBe('.ndjson');
    expect(extensionFor('ndjson')).toBe('.ndjson');
    expect(extensionFor('application/fhir+ndjson+gzip')).toBe('.ndjson.gz');
    expect(extensionFor('APPLICATION/NDJSON+GZIP')).toBe('.ndjson.gz');
    expect(extensionFor('application/ndjson+gz')).toBe('.ndjson.gz');
    expect(
      planFiles(
        {
          transactionTime: '',
          request: '',
          requiresAccessToken: false,
          output: [],
          error: [{ type: 'OperationOutcome', url: 'http://x/e' }],
        },
        'application/fhir+ndjson+gzip',
      )[0]!.name,
    ).toBe('error/OperationOutcome.000.ndjson.gz');
  });
});
