import { type Store, codeElement } from './data.js';
import { fhirError } from './http.js';
import type { Resource } from './types.js';

/**
 * FHIR search over the in-memory store. Supported parameters (others are ignored, as FHIR
 * servers do by default, or rejected with 400 under `Prefer: handling=strict`):
 * all types `_id`, `_lastUpdated`; `code`, `subject`, `patient`, `encounter`, `date`, `status`,
 * `category`, `identifier` where the type has the element; Patient/Practitioner `name`,
 * `family`, `given`, `gender`, `birthdate`; Organization `name`.
 */

type Filter = (r: Resource) => boolean;
interface Coding {
  system?: string;
  code?: string;
}

/** Parameters that steer the result rather than filter it. */
export const CONTROL_PARAMS = new Set([
  '_count',
  '_page',
  '_summary',
  '_format',
  '_total',
  '_pretty',
  '_elements',
  '_sort',
]);

const DATE_ELEMENTS: Record<string, string[]> = {
  Observation: ['effectiveDateTime', 'effectivePeriod', 'effectiveInstant'],
  DiagnosticReport: ['effectiveDateTime', 'effectivePeriod'],
  Encounter: ['period'],
  Procedure: ['performedDateTime', 'performedPeriod'],
  Immunization: ['occurrenceDateTime'],
  MedicationRequest: ['authoredOn'],
  AllergyIntolerance: ['recordedDate'],
  CarePlan: ['period'],
};
const HUMAN_NAMED = new Set(['Patient', 'Practitioner', 'RelatedPerson', 'Person']);

/** [start, end) in epoch ms for a FHIR date, dateTime or instant; undefined when malformed. */
export function dateRange(value: string): [number, number] | undefined {
  const m =
    /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/.exec(
      value,
    );
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac, tz] = m;
  const out = (v: string | undefined, lo: number, hi: number) =>
    v !== undefined && (Number(v) < lo || Number(v) > hi);
  if (out(mo, 1, 12) || out(d, 1, 31) || out(h, 0, 23) || out(mi, 0, 59) || out(s, 0, 60)) {
    return undefined;
  }
  if (h !== undefined) {
    const iso = `${y}-${mo}-${d}T${h}:${mi}:${s ?? '00'}${frac ?? ''}${tz ?? 'Z'}`;
    const start = Date.parse(iso);
    if (Number.isNaN(start)) return undefined;
    const step = s === undefined ? 60_000 : frac ? 1 : 1000;
    return [start, start + step];
  }
  const Y = Number(y);
  if (mo === undefined) return [Date.UTC(Y, 0, 1), Date.UTC(Y + 1, 0, 1)];
  const M = Number(mo) - 1;
  if (d === undefined) return [Date.UTC(Y, M, 1), Date.UTC(Y, M + 1, 1)];
  const D = Number(d);
  return [Date.UTC(Y, M, D), Date.UTC(Y, M, D + 1)];
}

function valueRange(v: unknown): [number, number] | undefined {
  if (typeof v === 'string') return dateRange(v);
  if (v && typeof v === 'object') {
    const p = v as { start?: string; end?: string };
    const s = p.start ? dateRange(p.start) : undefined;
    const e = p.end ? dateRange(p.end) : undefined;
    if (!s && !e) return undefined;
    return [s ? s[0] : -Infinity, e ? e[1] : Infinity];
  }
  return undefined;
}

const PREFIXES = ['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb'] as const;

/** A date test for one parameter value such as `ge2020-01-01`. */
export function dateTest(raw: string, param: string): (t: [number, number]) => boolean {
  let prefix = 'eq';
  let value = raw;
  const p = raw.slice(0, 2);
  if ((PREFIXES as readonly string[]).includes(p) && /^\d/.test(raw.slice(2))) {
    prefix = p;
    value = raw.slice(2);
  }
  const q = dateRange(value);
  if (!q)
    throw fhirError(400, 'invalid', `${param}: '${raw}' is not a FHIR date (e.g. ge2020-01-01)`);
  const [qs, qe] = q;
  const eq = (t: [number, number]) => t[0] >= qs && t[1] <= qe;
  switch (prefix) {
    case 'ne':
      return (t) => !eq(t);
    case 'gt':
    case 'sa':
      return (t) => t[1] > qe;
    case 'lt':
    case 'eb':
      return (t) => t[0] < qs;
    case 'ge':
      return (t) => t[1] > qe || eq(t);
    case 'le':
      return (t) => t[0] < qs || eq(t);
    default:
      return eq;
  }
}

function tokenTest(value: string): (c: Coding) => boolean {
  const bar = value.indexOf('|');
  if (bar < 0) return (c) => c.code === value;
  const system = value.slice(0, bar);
  const code = value.slice(bar + 1);
  if (system === '') return (c) => !c.system && c.code === code;
  if (code === '') return (c) => c.system === system;
  return (c) => c.system === system && c.code === code;
}

function codingsOf(v: unknown): Coding[] {
  if (Array.isArray(v)) return v.flatMap(codingsOf);
  const cc = v as { coding?: Coding[] } | undefined;
  return cc && Array.isArray(cc.coding) ? cc.coding : [];
}

const norm = (s: string) =>
  s
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase();

function stringTest(values: string[], modifier: string | undefined): (s: string) => boolean {
  const wanted = values.map(norm);
  if (modifier === 'exact') return (s) => values.includes(s);
  if (modifier === 'contains') return (s) => wanted.some((w) => norm(s).includes(w));
  return (s) => wanted.some((w) => norm(s).startsWith(w));
}

function namesOf(r: Resource, part: 'name' | 'family' | 'given'): string[] {
  if (!HUMAN_NAMED.has(r.resourceType)) {
    return part === 'name' && typeof r.name === 'string' ? [r.name] : [];
  }
  const names = (Array.isArray(r.name) ? r.name : []) as {
    family?: string;
    given?: string[];
    text?: string;
  }[];
  const out: string[] = [];
  for (const n of names) {
    if ((part === 'name' || part === 'family') && n.family) out.push(n.family);
    if ((part === 'name' || part === 'given') && Array.isArray(n.given)) out.push(...n.given);
    if (part === 'name' && n.text) out.push(n.text);
  }
  return out;
}

/** `Patient/x`, `x`, or an absolute URL ending in `Patient/x` -> `Patient/x`. */
function normalizeReference(value: string, defaultType: string): string {
  const m = /([A-Za-z]+)\/([^/]+)$/.exec(value);
  if (m) return `${m[1]}/${m[2]}`;
  return `${defaultType}/${value}`;
}

function refOf(v: unknown): string | undefined {
  const r = v as { reference?: unknown } | undefined;
  return typeof r?.reference === 'string' ? r.reference : undefined;
}

export interface SearchRequest {
  type: string;
  params: [string, string][];
  strict: boolean;
}

/**
 * The resources of `type` matching every parameter, in store order. Index-backed parameters
 * (`_id`, `code`, `subject`/`patient`) narrow the candidates first; the rest filter them.
 */
export function runSearch(store: Store, { type, params, strict }: SearchRequest): Resource[] {
  let candidates: Resource[] | undefined;
  const narrow = (list: Resource[]) => {
    if (!candidates) candidates = list;
    else {
      const keep = new Set(list);
      candidates = candidates.filter((r) => keep.has(r));
    }
  };
  const filters: Filter[] = [];
  const unknown = (name: string) => {
    if (strict)
      throw fhirError(400, 'not-supported', `unknown search parameter '${name}' for ${type}`);
  };

  for (const [rawName, rawValue] of params) {
    const [name, modifier] = rawName.split(':') as [string, string | undefined];
    if (CONTROL_PARAMS.has(name)) continue;
    const values = rawValue.split(',').filter((v) => v !== '');
    if (values.length === 0) continue;
    switch (name) {
      case '_id': {
        narrow(values.map((id) => store.get(type, id)).filter((r): r is Resource => !!r));
        break;
      }
      case '_lastUpdated': {
        const tests = values.map((v) => dateTest(v, name));
        filters.push((r) => {
          const t = r.meta?.lastUpdated ? dateRange(r.meta.lastUpdated) : undefined;
          return !!t && tests.some((f) => f(t));
        });
        break;
      }
      case 'code': {
        if (modifier) {
          unknown(rawName);
          break;
        }
        const seen = new Set<Resource>();
        const list: Resource[] = [];
        for (const v of values) {
          const key = v.startsWith('|') ? undefined : v;
          const hits = key && !key.endsWith('|') ? store.byCode(type, key) : undefined;
          const found =
            hits ?? store.all(type).filter((r) => codingsOf(codeElement(r)).some(tokenTest(v)));
          for (const r of found) {
            if (seen.has(r)) continue;
            seen.add(r);
            list.push(r);
          }
        }
        // Keep store order across several codes.
        narrow(values.length > 1 ? store.all(type).filter((r) => seen.has(r)) : list);
        break;
      }
      case 'subject':
      case 'patient': {
        if (name === 'patient' && type === 'Patient') {
          unknown(rawName);
          break;
        }
        const refs = values.map((v) => normalizeReference(v, 'Patient'));
        if (name === 'patient' && refs.some((r) => !r.startsWith('Patient/'))) {
          throw fhirError(400, 'invalid', `patient: '${rawValue}' is not a Patient reference`);
        }
        const lists = refs.map((ref) => store.byReference(type, ref));
        if (lists.length === 1) narrow(lists[0]!);
        else {
          const set = new Set(lists.flat());
          narrow(store.all(type).filter((r) => set.has(r)));
        }
        break;
      }
      case 'encounter': {
        const refs = new Set(values.map((v) => normalizeReference(v, 'Encounter')));
        filters.push((r) => refs.has(refOf(r.encounter) ?? ''));
        break;
      }
      case 'date':
      case 'birthdate': {
        const elements =
          name === 'birthdate' ? (type === 'Patient' ? ['birthDate'] : []) : DATE_ELEMENTS[type];
        if (!elements || elements.length === 0) {
          unknown(rawName);
          break;
        }
        const tests = values.map((v) => dateTest(v, name));
        filters.push((r) => {
          for (const el of elements) {
            const t = valueRange(r[el]);
            if (t) return tests.some((f) => f(t));
          }
          return false;
        });
        break;
      }
      case 'status':
      case 'gender': {
        filters.push((r) => typeof r[name] === 'string' && values.includes(r[name] as string));
        break;
      }
      case 'category':
      case 'identifier': {
        const tests = values.map(tokenTest);
        filters.push((r) => {
          const field = r[name];
          const codings: Coding[] =
            name === 'identifier'
              ? (Array.isArray(field) ? field : []).map(
                  (i: { system?: string; value?: string }) => ({
                    system: i.system,
                    code: i.value,
                  }),
                )
              : codingsOf(field);
          return codings.some((c) => tests.some((t) => t(c)));
        });
        break;
      }
      case 'name':
      case 'family':
      case 'given': {
        if (!HUMAN_NAMED.has(type) && !(name === 'name' && type === 'Organization')) {
          unknown(rawName);
          break;
        }
        const test = stringTest(values, modifier);
        filters.push((r) => namesOf(r, name).some(test));
        break;
      }
      default:
        unknown(rawName);
    }
  }
  const base = candidates ?? store.all(type);
  if (filters.length === 0) return base;
  return base.filter((r) => filters.every((f) => f(r)));
}
