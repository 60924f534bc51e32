import type { Resource } from '../core/fhir/index.js';
import type { Column } from './table.js';

/** Plain-text views of FHIR data types, for table cells. Each returns '' for nothing. */

type Json = Record<string, unknown>;

const obj = (v: unknown): Json | undefined =>
  v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined;
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : v === undefined ? [] : [v]);
const str = (v: unknown): string =>
  typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : '';

/** `given family` of the official (else first) name, or its text. */
export function humanName(v: unknown): string {
  const names = list(v)
    .map(obj)
    .filter((n): n is Json => !!n);
  const n =
    names.find((x) => x.use === 'official') ?? names.find((x) => x.use !== 'old') ?? names[0];
  if (!n) return '';
  if (typeof n.text === 'string' && n.text) return n.text;
  return [...list(n.prefix), ...list(n.given), n.family, ...list(n.suffix)]
    .map(str)
    .filter(Boolean)
    .join(' ');
}

export function coding(v: unknown): string {
  const c = obj(v);
  if (!c) return '';
  return str(c.display) || str(c.code);
}

/** CodeableConcept: its text, else the first coding's display, else its code. */
export function codeableConcept(v: unknown): string {
  const c = obj(v);
  if (!c) return '';
  if (typeof c.text === 'string' && c.text) return c.text;
  const codings = list(c.coding)
    .map(obj)
    .filter((x): x is Json => !!x);
  const withDisplay = codings.find((x) => str(x.display));
  return withDisplay ? str(withDisplay.display) : (codings.map(coding).find(Boolean) ?? '');
}

export function codeableConcepts(v: unknown): string {
  return list(v).map(codeableConcept).filter(Boolean).join(', ');
}

export function reference(v: unknown): string {
  const r = obj(v);
  if (!r) return '';
  return str(r.reference) || str(r.display) || str(obj(r.identifier)?.value);
}

export function quantity(v: unknown): string {
  const q = obj(v);
  if (!q) return '';
  const value = str(q.value);
  const unit = str(q.unit) || str(q.code);
  return [str(q.comparator) + value, unit].filter(Boolean).join(' ');
}

export function period(v: unknown): string {
  const p = obj(v);
  if (!p) return '';
  const start = str(p.start);
  const end = str(p.end);
  return end && end !== start ? `${start} – ${end}` : start;
}

/** The value of a choice element `prefix[x]` (value[x], effective[x], onset[x]...). */
export function choice(r: Json, prefix: string): string {
  for (const [k, v] of Object.entries(r)) {
    if (!k.startsWith(prefix) || k.length === prefix.length) continue;
    const kind = k.slice(prefix.length);
    if (!/^[A-Z]/.test(kind)) continue;
    switch (kind) {
      case 'Quantity':
      case 'Age':
      case 'Duration':
      case 'Count':
      case 'Distance':
      case 'SimpleQuantity':
        return quantity(v);
      case 'CodeableConcept':
        return codeableConcept(v);
      case 'Coding':
        return coding(v);
      case 'Period':
        return period(v);
      case 'Range': {
        const range = obj(v);
        return range ? `${quantity(range.low)} – ${quantity(range.high)}` : '';
      }
      case 'Ratio': {
        const ratio = obj(v);
        return ratio ? `${quantity(ratio.numerator)} / ${quantity(ratio.denominator)}` : '';
      }
      case 'Reference':
        return reference(v);
      case 'SampledData':
        return '(sampled data)';
      case 'Attachment':
        return str(obj(v)?.title) || str(obj(v)?.contentType) || '(attachment)';
      default:
        return str(v);
    }
  }
  return '';
}

/** The date a choice element starts: dateTime, instant, or a Period's start. */
function when(r: Json, prefix: string): string {
  for (const [k, v] of Object.entries(r)) {
    if (!k.startsWith(prefix)) continue;
    const kind = k.slice(prefix.length);
    if (kind === 'DateTime' || kind === 'Instant' || kind === 'Date' || kind === 'String')
      return str(v);
    if (kind === 'Period') return str(obj(v)?.start);
  }
  return '';
}

function observationValue(r: Json): string {
  const v = choice(r, 'value');
  if (v) return v;
  const parts = list(r.component)
    .map(obj)
    .filter((c): c is Json => !!c)
    .map((c) => choice(c, 'value'))
    .filter(Boolean);
  if (parts.length) return parts.join(' / ');
  const absent = codeableConcept(r.dataAbsentReason);
  return absent ? `(${absent})` : '';
}

function firstIdentifier(v: unknown): string {
  const ids = list(v)
    .map(obj)
    .filter((x): x is Json => !!x);
  return str(ids[0]?.value);
}

function address(v: unknown): string {
  const a = obj(list(v)[0]);
  if (!a) return '';
  if (typeof a.text === 'string' && a.text) return a.text;
  return [a.city, a.state, a.country].map(str).filter(Boolean).join(', ');
}

const col = (header: string, get: (r: Json) => unknown): Column<Resource> => ({
  header,
  get: (r) => get(r as Json),
});

const idCol = col('id', (r) => r.id);

const COLUMNS: Record<string, Column<Resource>[]> = {
  Patient: [
    idCol,
    col('name', (r) => humanName(r.name)),
    col('gender', (r) => r.gender),
    col('birthDate', (r) => r.birthDate),
  ],
  Observation: [
    idCol,
    col('date', (r) => when(r, 'effective') || str(r.issued)),
    col('code', (r) => codeableConcept(r.code)),
    // The value keeps its unit (at its end) on a narrow terminal: the other columns give first.
    { ...col('value', observationValue), keep: true },
    col('subject', (r) => reference(r.subject)),
  ],
  Condition: [
    idCol,
    col('onset', (r) => when(r, 'onset') || str(r.recordedDate)),
    col('code', (r) => codeableConcept(r.code)),
    col('status', (r) => codeableConcept(r.clinicalStatus)),
    col('subject', (r) => reference(r.subject)),
  ],
  Encounter: [
    idCol,
    col('start', (r) => str(obj(r.period)?.start)),
    col('class', (r) => coding(r.class)),
    col('type', (r) => codeableConcepts(r.type)),
    col('status', (r) => r.status),
    col('subject', (r) => reference(r.subject)),
  ],
  MedicationRequest: [
    idCol,
    col('authoredOn', (r) => r.authoredOn),
    col(
      'medication',
      (r) => codeableConcept(r.medicationCodeableConcept) || reference(r.medicationReference),
    ),
    col('status', (r) => r.status),
    col('intent', (r) => r.intent),
    col('subject', (r) => reference(r.subject)),
  ],
  Procedure: [
    idCol,
    col('date', (r) => when(r, 'performed')),
    col('code', (r) => codeableConcept(r.code)),
    col('status', (r) => r.status),
    col('subject', (r) => reference(r.subject)),
  ],
  Immunization: [
    idCol,
    col('date', (r) => when(r, 'occurrence')),
    col('vaccine', (r) => codeableConcept(r.vaccineCode)),
    col('status', (r) => r.status),
    col('patient', (r) => reference(r.patient)),
  ],
  AllergyIntolerance: [
    idCol,
    col('recorded', (r) => str(r.recordedDate) || when(r, 'onset')),
    col('code', (r) => codeableConcept(r.code)),
    col('criticality', (r) => r.criticality),
    col('status', (r) => codeableConcept(r.clinicalStatus)),
    col('patient', (r) => reference(r.patient)),
  ],
  DiagnosticReport: [
    idCol,
    col('date', (r) => when(r, 'effective') || str(r.issued)),
    col('code', (r) => codeableConcept(r.code)),
    col('status', (r) => r.status),
    col('results', (r) => list(r.result).length || ''),
    col('subject', (r) => reference(r.subject)),
  ],
  Practitioner: [
    idCol,
    col('name', (r) => humanName(r.name)),
    col('gender', (r) => r.gender),
    col('identifier', (r) => firstIdentifier(r.identifier)),
    col('qualification', (r) =>
      list(r.qualification)
        .map((q) => codeableConcept(obj(q)?.code))
        .filter(Boolean)
        .join(', '),
    ),
  ],
  Organization: [
    idCol,
    col('name', (r) => r.name),
    col('type', (r) => codeableConcepts(r.type)),
    col('identifier', (r) => firstIdentifier(r.identifier)),
    col('address', (r) => address(r.address)),
  ],
  Group: [
    idCol,
    col('name', (r) => r.name),
    col('type', (r) => r.type),
    col('actual', (r) => r.actual),
    col('members', (r) => (typeof r.quantity === 'number' ? r.quantity : list(r.member).length)),
  ],
};

const SUMMARY_FIELDS = ['name', 'title', 'code', 'type', 'status', 'description'];

/** A short one-line view of any resource: up to three telling fields. */
export function summarize(r: Resource, max = 80): string {
  const parts: string[] = [];
  for (const f of SUMMARY_FIELDS) {
    const v = (r as Json)[f];
    if (v === undefined) continue;
    let text: string;
    if (f === 'name' && Array.isArray(v)) text = humanName(v);
    else if (typeof v === 'object')
      text = Array.isArray(v) ? codeableConcepts(v) : codeableConcept(v) || reference(v);
    else text = str(v);
    if (text) parts.push(`${f}: ${text.replace(/\s+/g, ' ')}`);
    if (parts.length === 3) break;
  }
  const s = parts.join('; ');
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

const GENERIC: Column<Resource>[] = [
  idCol,
  col('lastUpdated', (r) => obj(r.meta)?.lastUpdated),
  { header: 'summary', get: (r) => summarize(r) },
];

/** The default table and CSV columns for a resource type. */
export function defaultColumns(type: string): Column<Resource>[] {
  return COLUMNS[type] ?? GENERIC;
}

/** Types with their own default columns (for help text and tests). */
export const TYPES_WITH_COLUMNS = Object.keys(COLUMNS);
