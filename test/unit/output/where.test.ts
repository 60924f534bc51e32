import { describe, expect, it } from 'vitest';
import { compileWhere, fhirpathTruth } from '../../../src/output/fhirpath-columns.js';
import type { Resource } from '../../../src/core/fhir/index.js';

describe('--where', () => {
  it('reads a FHIRPath result as yes or no', () => {
    expect(fhirpathTruth([])).toBe(false);
    expect(fhirpathTruth([false])).toBe(false);
    expect(fhirpathTruth([true])).toBe(true);
    expect(fhirpathTruth(['Kessler'])).toBe(true);
    expect(fhirpathTruth([0])).toBe(true);
  });

  it('compiles once and keeps the resources it is true for', async () => {
    const keep = await compileWhere("gender = 'female' and name.exists()", 'Patient');
    const p = (gender: string, name?: string): Resource =>
      ({
        resourceType: 'Patient',
        id: gender,
        gender,
        name: name ? [{ family: name }] : undefined,
      }) as Resource;
    expect(keep(p('female', 'A'))).toBe(true);
    expect(keep(p('female'))).toBe(false);
    expect(keep(p('male', 'B'))).toBe(false);
    const choice = await compileWhere('value.ofType(Quantity).value > 7', 'Observation');
    const obs = (v: number) =>
      ({ resourceType: 'Observation', valueQuantity: { value: v } }) as Resource;
    expect(choice(obs(7.5))).toBe(true);
    expect(choice(obs(6))).toBe(false);
  });

  it('a bad expression is a usage error naming it', async () => {
    await expect(compileWhere('gender =', 'Patient')).rejects.toMatchObject({
      kind: 'usage',
      code: 'bad_where',
      message: expect.stringContaining('"gender ="'),
    });
  });
});
