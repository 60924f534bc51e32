import { describe, expect, it } from 'vitest';
import { SmartError } from '../../../src/core/errors.js';
import type { Resource } from '../../../src/core/fhir/index.js';
import { compileColumns, splitColumns } from '../../../src/output/fhirpath-columns.js';

const obs: Resource = {
  resourceType: 'Observation',
  id: 'o1',
  code: { coding: [{ system: 'http://loinc.org', code: '4548-4', display: 'HbA1c' }] },
  valueQuantity: { value: 6.1, unit: '%' },
  subject: { reference: 'Patient/p1' },
};

describe('splitColumns', () => {
  it('splits at top-level commas only, and reads label=expression', () => {
    expect(
      splitColumns("id, name.given.join(', '),fam=name.where(use='official').family, iif(a, b, c)"),
    ).toEqual([
      { header: 'id', expression: 'id' },
      { header: "name.given.join(', ')", expression: "name.given.join(', ')" },
      { header: 'fam', expression: "name.where(use='official').family" },
      { header: 'iif(a, b, c)', expression: 'iif(a, b, c)' },
    ]);
  });

  it('keeps comparisons as expressions when they are not a bare label', () => {
    expect(splitColumns("gender = 'male', x!='y', a==b")).toEqual([
      { header: "gender = 'male'", expression: "gender = 'male'" },
      { header: "x!='y'", expression: "x!='y'" },
      { header: 'a==b', expression: 'a==b' },
    ]);
  });

  it.each(['id,,gender', 'id,', 'label='])('rejects %j as a usage error', (spec) => {
    expect(() => splitColumns(spec)).toThrow(SmartError);
  });
});

describe('compileColumns', () => {
  it('evaluates each expression with the R4 model (choice types work)', async () => {
    const cols = await compileColumns(
      'id,code.coding.first().display,v=value.ofType(Quantity).value,value.unit,subject.reference,missing',
      'Observation',
    );
    expect(cols.map((c) => c.header)).toEqual([
      'id',
      'code.coding.first().display',
      'v',
      'value.unit',
      'subject.reference',
      'missing',
    ]);
    expect(cols.map((c) => c.get(obs))).toEqual(['o1', 'HbA1c', 6.1, '%', 'Patient/p1', []]);
  });

  it('returns every value of a multi-valued expression', async () => {
    const [col] = await compileColumns('name.given');
    expect(col!.get({ resourceType: 'Patient', name: [{ given: ['A', 'B'] }] })).toEqual([
      'A',
      'B',
    ]);
  });

  it.each(['foo(', 'code.coding.first(', 'unknownFunction()', "name.where(use='x'"])(
    'a bad expression (%s) is a usage error that names it, exit 2',
    async (expr) => {
      const err = await compileColumns(`id,${expr}`, 'Patient').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SmartError);
      expect((err as SmartError).exitCode).toBe(2);
      expect((err as SmartError).message).toContain(`"${expr}"`);
      // One line: ANTLR's list of expected tokens is dropped.
      expect((err as SmartError).message).not.toContain('\n');
      expect((err as SmartError).message).not.toMatch(/expecting \{/);
    },
  );
});
