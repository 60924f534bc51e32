import { describe, expect, it } from 'vitest';
import { planFiles, safeTypeName } from '../../../../src/core/export/naming.js';
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
