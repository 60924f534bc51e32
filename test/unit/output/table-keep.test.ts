import { describe, expect, it } from 'vitest';
import { fitWidths, renderTable } from '../../../src/output/table.js';
import { defaultColumns } from '../../../src/output/resources.js';
import type { Resource } from '../../../src/core/fhir/index.js';

// The walkthrough's HbA1c Observations, as the sandbox serves them.
const a1c = (id: string, value: number): Resource =>
  ({
    resourceType: 'Observation',
    id,
    effectiveDateTime: '2014-05-11T10:00:00+00:00',
    code: { coding: [{ display: 'Hemoglobin A1c/Hemoglobin.total in Blood' }] },
    valueQuantity: { value, unit: '%' },
    subject: { reference: 'Patient/a6a91d7e-7ded-4325-9dbe-42a088e7e039' },
  }) as Resource;

describe('a column that keeps its width (the Observation value)', () => {
  it('is shrunk only after the others are down to 8', () => {
    // id, date, code, value (kept), subject at 80 columns: 64 for the cells.
    const widths = fitWidths([36, 25, 40, 19, 44], 80, [false, false, false, true, false]);
    expect(widths[3]).toBe(19);
    expect(widths.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(80 - 16);
    // Without the mark, the value is cut like the others.
    expect(fitWidths([36, 25, 40, 19, 44], 80)[3]).toBeLessThan(19);
  });

  it('takes at most half the width, so a long text cannot starve the others', () => {
    const widths = fitWidths([10, 300], 80, [false, true]);
    expect(widths[0]).toBe(10);
    expect(widths[1]).toBe(80 - 7 - 10);
    expect(fitWidths([60, 300], 80, [false, true])[1]).toBeGreaterThanOrEqual(36);
  });

  it('the walkthrough table shows every value with its unit at 80 columns, and at 60', () => {
    const rows = [
      a1c('00592410-ec4a-4d64-a674-f0bfb244a978', 2.856519918445372),
      a1c('01e57d19-35b7-47d0-9c3b-29d14d16d3f5', 3.1257055258079536),
    ];
    const at80 = renderTable(rows, defaultColumns('Observation'), 80);
    for (const line of at80.trimEnd().split('\n')) expect(line.length).toBeLessThanOrEqual(80);
    expect(at80).toContain('│ 2.856519918445372 %  │');
    expect(at80).toContain('│ 3.1257055258079536 % │');
    const at60 = renderTable(rows, defaultColumns('Observation'), 60);
    for (const line of at60.trimEnd().split('\n')) expect(line.length).toBeLessThanOrEqual(60);
    expect(at60).toMatch(/│ 2\.8565\d*… % │/);
  });
});
