import { describe, expect, it } from 'vitest';
import type { Resource } from '../../../src/core/fhir/index.js';
import {
  TYPES_WITH_COLUMNS,
  choice,
  codeableConcept,
  defaultColumns,
  humanName,
  summarize,
} from '../../../src/output/resources.js';
import { cellText } from '../../../src/output/table.js';

const row = (r: Resource) =>
  Object.fromEntries(defaultColumns(r.resourceType).map((c) => [c.header, cellText(c.get(r))]));

// The first Observation of the Aidbox walkthrough (GET /fhir/Observation?code=4548-4&_count=2).
const walkthroughObservation: Resource = {
  resourceType: 'Observation',
  id: '00592410-ec4a-4d64-a674-f0bfb244a978',
  status: 'final',
  meta: { lastUpdated: '2024-08-29T15:51:05.117806Z', versionId: '74' },
  encounter: { reference: 'Encounter/67b8fa04-6e1b-4074-8b8c-3ec44bfec48f' },
  valueQuantity: {
    code: '%',
    unit: '%',
    value: 2.856519918445372,
    system: 'http://unitsofmeasure.org',
  },
  effectiveDateTime: '2014-05-11T12:39:55+04:00',
  code: {
    text: 'Hemoglobin A1c/Hemoglobin.total in Blood',
    coding: [
      {
        code: '4548-4',
        system: 'http://loinc.org',
        display: 'Hemoglobin A1c/Hemoglobin.total in Blood',
      },
    ],
  },
  issued: '2014-05-11T12:39:55.513+04:00',
  subject: { reference: 'Patient/a6a91d7e-7ded-4325-9dbe-42a088e7e039' },
};

describe('default columns', () => {
  it('Observation: id, date, code, value with unit, subject (the walkthrough row)', () => {
    expect(row(walkthroughObservation)).toEqual({
      id: '00592410-ec4a-4d64-a674-f0bfb244a978',
      date: '2014-05-11T12:39:55+04:00',
      code: 'Hemoglobin A1c/Hemoglobin.total in Blood',
      value: '2.856519918445372 %',
      subject: 'Patient/a6a91d7e-7ded-4325-9dbe-42a088e7e039',
    });
  });

  it('Observation values of other kinds: components, codes, strings, absent data', () => {
    const bp: Resource = {
      resourceType: 'Observation',
      id: 'bp',
      effectivePeriod: { start: '2020-01-01T10:00:00Z' },
      code: { coding: [{ code: '85354-9' }] },
      component: [
        { code: {}, valueQuantity: { value: 120, unit: 'mmHg' } },
        { code: {}, valueQuantity: { value: 80, unit: 'mmHg' } },
      ],
    };
    expect(row(bp)).toMatchObject({
      date: '2020-01-01T10:00:00Z',
      code: '85354-9',
      value: '120 mmHg / 80 mmHg',
    });
    expect(
      row({
        resourceType: 'Observation',
        valueCodeableConcept: { coding: [{ display: 'Positive' }] },
      }).value,
    ).toBe('Positive');
    expect(row({ resourceType: 'Observation', valueString: 'see note' }).value).toBe('see note');
    expect(row({ resourceType: 'Observation', valueBoolean: false }).value).toBe('false');
    expect(
      row({ resourceType: 'Observation', dataAbsentReason: { text: 'asked but declined' } }).value,
    ).toBe('(asked but declined)');
    expect(row({ resourceType: 'Observation', issued: '2020-02-02' }).date).toBe('2020-02-02');
  });

  it('Patient: id, name, gender, birthDate', () => {
    expect(
      row({
        resourceType: 'Patient',
        id: 'p1',
        name: [
          { use: 'old', family: 'Old' },
          { use: 'official', family: 'Kessler', given: ['Alicia', 'M'] },
        ],
        gender: 'female',
        birthDate: '1968-03-14',
      }),
    ).toEqual({ id: 'p1', name: 'Alicia M Kessler', gender: 'female', birthDate: '1968-03-14' });
  });

  it('has sensible columns for the common clinical and administrative types', () => {
    for (const t of [
      'Condition',
      'Encounter',
      'MedicationRequest',
      'Procedure',
      'Immunization',
      'AllergyIntolerance',
      'DiagnosticReport',
      'Practitioner',
      'Organization',
      'Group',
    ]) {
      expect(TYPES_WITH_COLUMNS).toContain(t);
      const headers = defaultColumns(t).map((c) => c.header);
      expect(headers[0]).toBe('id');
      expect(headers.length).toBeGreaterThanOrEqual(4);
    }
    expect(
      row({
        resourceType: 'Condition',
        id: 'c',
        onsetDateTime: '2013-09-01',
        code: { coding: [{ display: 'Diabetes' }] },
        clinicalStatus: { coding: [{ code: 'active' }] },
        subject: { reference: 'Patient/1' },
      }),
    ).toEqual({
      id: 'c',
      onset: '2013-09-01',
      code: 'Diabetes',
      status: 'active',
      subject: 'Patient/1',
    });
    expect(
      row({
        resourceType: 'MedicationRequest',
        id: 'm',
        medicationReference: { display: 'metformin' },
        status: 'active',
        intent: 'order',
        authoredOn: '2022-07-19',
        subject: { reference: 'Patient/1' },
      }),
    ).toMatchObject({ medication: 'metformin', intent: 'order' });
    expect(
      row({
        resourceType: 'Group',
        id: 'g',
        name: 'Cohort',
        type: 'person',
        actual: true,
        member: [{}, {}, {}],
      }),
    ).toEqual({ id: 'g', name: 'Cohort', type: 'person', actual: 'true', members: '3' });
    expect(
      row({
        resourceType: 'Encounter',
        id: 'e',
        period: { start: '2021-03-02T09:00:00Z' },
        class: { code: 'AMB' },
      }),
    ).toMatchObject({ start: '2021-03-02T09:00:00Z', class: 'AMB' });
  });

  it('fills every default column of the remaining listed types from typical resources', () => {
    expect(
      row({
        resourceType: 'Procedure',
        id: 'pr',
        status: 'completed',
        code: {
          coding: [{ system: 'http://snomed.info/sct', code: '73761001', display: 'Colonoscopy' }],
        },
        subject: { reference: 'Patient/1' },
        performedPeriod: { start: '2020-02-03T10:00:00Z', end: '2020-02-03T11:00:00Z' },
      }),
    ).toEqual({
      id: 'pr',
      date: '2020-02-03T10:00:00Z',
      code: 'Colonoscopy',
      status: 'completed',
      subject: 'Patient/1',
    });
    expect(
      row({
        resourceType: 'Immunization',
        id: 'im',
        status: 'completed',
        vaccineCode: { text: 'Influenza, seasonal' },
        patient: { reference: 'Patient/1' },
        occurrenceDateTime: '2021-10-01',
      }),
    ).toEqual({
      id: 'im',
      date: '2021-10-01',
      vaccine: 'Influenza, seasonal',
      status: 'completed',
      patient: 'Patient/1',
    });
    expect(
      row({
        resourceType: 'AllergyIntolerance',
        id: 'al',
        clinicalStatus: { coding: [{ code: 'active' }] },
        code: { coding: [{ code: '91936005', display: 'Allergy to penicillin' }] },
        criticality: 'high',
        patient: { reference: 'Patient/1' },
        recordedDate: '2019-05-05',
      }),
    ).toEqual({
      id: 'al',
      recorded: '2019-05-05',
      code: 'Allergy to penicillin',
      criticality: 'high',
      status: 'active',
      patient: 'Patient/1',
    });
    expect(
      row({
        resourceType: 'DiagnosticReport',
        id: 'dr',
        status: 'final',
        code: { text: 'Lipid panel' },
        subject: { reference: 'Patient/1' },
        effectiveDateTime: '2022-01-02',
        result: [{ reference: 'Observation/a' }, { reference: 'Observation/b' }],
      }),
    ).toEqual({
      id: 'dr',
      date: '2022-01-02',
      code: 'Lipid panel',
      status: 'final',
      results: '2',
      subject: 'Patient/1',
    });
    expect(
      row({
        resourceType: 'Practitioner',
        id: 'prac',
        name: [{ family: 'House', given: ['Gregory'], prefix: ['Dr.'] }],
        gender: 'male',
        identifier: [{ system: 'http://hl7.org/fhir/sid/us-npi', value: '1234567890' }],
        qualification: [{ code: { text: 'MD' } }],
      }),
    ).toEqual({
      id: 'prac',
      name: 'Dr. Gregory House',
      gender: 'male',
      identifier: '1234567890',
      qualification: 'MD',
    });
    expect(
      row({
        resourceType: 'Organization',
        id: 'org',
        name: 'General Hospital',
        type: [{ coding: [{ code: 'prov', display: 'Healthcare Provider' }] }],
        identifier: [{ value: 'GH-1' }],
        address: [{ city: 'Boston', state: 'MA', country: 'US' }],
      }),
    ).toEqual({
      id: 'org',
      name: 'General Hospital',
      type: 'Healthcare Provider',
      identifier: 'GH-1',
      address: 'Boston, MA, US',
    });
  });

  it('any other type: id, lastUpdated and a short summary', () => {
    const r: Resource = {
      resourceType: 'CarePlan',
      id: 'cp1',
      meta: { lastUpdated: '2024-01-01T00:00:00Z' },
      status: 'active',
      title: 'Diabetes care',
      description: 'x'.repeat(200),
    };
    expect(defaultColumns('CarePlan').map((c) => c.header)).toEqual([
      'id',
      'lastUpdated',
      'summary',
    ]);
    const cells = row(r);
    expect(cells).toMatchObject({ id: 'cp1', lastUpdated: '2024-01-01T00:00:00Z' });
    expect(cells.summary).toMatch(/^title: Diabetes care; status: active; description: x+…$/);
    expect(cells.summary!.length).toBeLessThanOrEqual(80);
    expect(summarize({ resourceType: 'Basic' })).toBe('');
  });
});

describe('data type views', () => {
  it('humanName prefers official, then text, and skips old names', () => {
    expect(humanName([{ text: 'Dr. A. Silva' }])).toBe('Dr. A. Silva');
    expect(
      humanName([
        { use: 'old', family: 'X' },
        { family: 'Y', given: ['Z'] },
      ]),
    ).toBe('Z Y');
    expect(humanName(undefined)).toBe('');
  });

  it('codeableConcept: text, then a display, then a code', () => {
    expect(codeableConcept({ text: 'T', coding: [{ display: 'D' }] })).toBe('T');
    expect(codeableConcept({ coding: [{ code: 'C' }, { display: 'D' }] })).toBe('D');
    expect(codeableConcept({ coding: [{ code: 'C' }] })).toBe('C');
    expect(codeableConcept('not an object')).toBe('');
  });

  it('choice elements: ranges, ratios, periods', () => {
    expect(
      choice(
        { valueRange: { low: { value: 1, unit: 'g' }, high: { value: 2, unit: 'g' } } },
        'value',
      ),
    ).toBe('1 g – 2 g');
    expect(
      choice({ valueRatio: { numerator: { value: 1 }, denominator: { value: 3 } } }, 'value'),
    ).toBe('1 / 3');
    expect(choice({ valuePeriod: { start: 'a', end: 'b' } }, 'value')).toBe('a – b');
    expect(choice({ valueQuantity: { value: 5, comparator: '<', code: 'mg' } }, 'value')).toBe(
      '<5 mg',
    );
    expect(choice({ values: 'not a choice' }, 'value')).toBe('');
  });
});
