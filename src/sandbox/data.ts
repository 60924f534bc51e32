import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Resource } from './types.js';

/** Where the shipped dataset lives, from src/sandbox or dist/sandbox alike. */
export const FIXTURES_DIR = fileURLToPath(new URL('../../fixtures/sandbox/', import.meta.url));

const REFERENCE_FIELDS = ['subject', 'patient', 'beneficiary'] as const;
const CODE_FIELDS: Record<string, string> = {
  MedicationRequest: 'medicationCodeableConcept',
  MedicationStatement: 'medicationCodeableConcept',
  Immunization: 'vaccineCode',
};

interface Coding {
  system?: string;
  code?: string;
}

/** The in-memory data, indexed for the searches the sandbox answers quickly. */
export class Store {
  private readonly types = new Map<string, Resource[]>();
  private readonly ids = new Map<string, Map<string, Resource>>();
  /** type -> `Patient/<id>` -> resources whose subject/patient/beneficiary points there */
  private readonly refIndex = new Map<string, Map<string, Resource[]>>();
  /** type -> `code` and `system|code` -> resources with that code */
  private readonly codeIndex = new Map<string, Map<string, Resource[]>>();
  /** patient id -> every other resource in that patient's compartment */
  private readonly compartments = new Map<string, Resource[]>();
  private indexed = false;

  add(resource: Resource): void {
    this.indexed = false;
    let byId = this.ids.get(resource.resourceType);
    if (!byId) {
      byId = new Map();
      this.ids.set(resource.resourceType, byId);
      this.types.set(resource.resourceType, []);
    }
    const list = this.types.get(resource.resourceType)!;
    const old = byId.get(resource.id);
    if (old) list[list.indexOf(old)] = resource;
    else list.push(resource);
    byId.set(resource.id, resource);
  }

  /** Builds the indexes; called once after loading. */
  index(): void {
    this.refIndex.clear();
    this.codeIndex.clear();
    this.compartments.clear();
    for (const [type, list] of this.types) {
      const refs = new Map<string, Resource[]>();
      const codes = new Map<string, Resource[]>();
      for (const r of list) {
        for (const ref of referencesOf(r)) {
          push(refs, ref, r);
          if (type !== 'Patient' && ref.startsWith('Patient/')) {
            push(this.compartments, ref.slice('Patient/'.length), r);
          }
        }
        for (const key of codeKeys(r)) push(codes, key, r);
      }
      this.refIndex.set(type, refs);
      this.codeIndex.set(type, codes);
    }
    this.indexed = true;
  }

  all(type: string): Resource[] {
    return this.types.get(type) ?? [];
  }

  get(type: string, id: string): Resource | undefined {
    return this.ids.get(type)?.get(id);
  }

  /** Resource types present, sorted. */
  typeNames(): string[] {
    return [...this.types.keys()].filter((t) => this.all(t).length > 0).sort();
  }

  counts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const t of this.typeNames()) out[t] = this.all(t).length;
    return out;
  }

  byReference(type: string, ref: string): Resource[] {
    this.ensureIndexed();
    return this.refIndex.get(type)?.get(ref) ?? [];
  }

  byCode(type: string, key: string): Resource[] {
    this.ensureIndexed();
    return this.codeIndex.get(type)?.get(key) ?? [];
  }

  /** The resources (other than the Patient) that point at this patient. */
  compartment(patientId: string): Resource[] {
    this.ensureIndexed();
    return this.compartments.get(patientId) ?? [];
  }

  private ensureIndexed(): void {
    if (!this.indexed) this.index();
  }
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** `Type/id` references in the subject, patient and beneficiary fields. */
export function referencesOf(r: Resource): string[] {
  const out: string[] = [];
  for (const f of REFERENCE_FIELDS) {
    const v = r[f] as { reference?: unknown } | undefined;
    if (v && typeof v.reference === 'string') out.push(v.reference);
  }
  return out;
}

/** The code element a `code` search looks at, by type. */
export function codeElement(r: Resource): { coding?: Coding[] } | undefined {
  return r[CODE_FIELDS[r.resourceType] ?? 'code'] as { coding?: Coding[] } | undefined;
}

function codeKeys(r: Resource): string[] {
  const cc = codeElement(r);
  if (!cc || !Array.isArray(cc.coding)) return [];
  const keys: string[] = [];
  for (const c of cc.coding) {
    if (typeof c?.code !== 'string') continue;
    keys.push(c.code, `${c.system ?? ''}|${c.code}`);
  }
  return keys;
}

function isResource(v: unknown): v is Resource {
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as Resource).resourceType === 'string' &&
    typeof (v as Resource).id === 'string'
  );
}

/** Resources in a parsed JSON value: a resource, a Bundle of them, or an array. */
function* resourcesIn(value: unknown, where: string): Generator<Resource> {
  if (Array.isArray(value)) {
    for (const v of value) yield* resourcesIn(v, where);
    return;
  }
  const v = value as { resourceType?: unknown; entry?: { resource?: unknown }[] };
  if (v && v.resourceType === 'Bundle' && Array.isArray(v.entry)) {
    for (const e of v.entry) if (e?.resource) yield* resourcesIn(e.resource, where);
    return;
  }
  if (!isResource(value)) {
    throw new Error(`${where}: not a FHIR resource with resourceType and id`);
  }
  yield value;
}

/**
 * Loads every .json and .ndjson file of a folder (and its subfolders) into the store. A resource
 * without meta.lastUpdated gets `defaultLastUpdated`.
 */
export async function loadDir(store: Store, dir: string, defaultLastUpdated: string) {
  let info;
  try {
    info = await stat(dir);
  } catch {
    throw new Error(`data folder ${dir} does not exist`);
  }
  if (!info.isDirectory()) throw new Error(`${dir} is not a folder`);
  const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) =>
    a.name.localeCompare(b.name),
  );
  let loaded = 0;
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) {
      loaded += await loadDir(store, path, defaultLastUpdated);
      continue;
    }
    if (!e.name.endsWith('.json') && !e.name.endsWith('.ndjson')) continue;
    const text = await readFile(path, 'utf8');
    const values: [unknown, string][] = [];
    if (e.name.endsWith('.ndjson')) {
      text.split('\n').forEach((line, i) => {
        if (line.trim()) values.push([parse(line, `${path}:${i + 1}`), `${path}:${i + 1}`]);
      });
    } else {
      values.push([parse(text, path), path]);
    }
    for (const [v, where] of values) {
      for (const r of resourcesIn(v, where)) {
        if (!r.meta?.lastUpdated) r.meta = { ...r.meta, lastUpdated: defaultLastUpdated };
        store.add(r);
        loaded++;
      }
    }
  }
  return loaded;
}

function parse(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${where}: invalid JSON (${(e as Error).message})`);
  }
}

/** mulberry32: a small seeded PRNG, so that `--generate N` always builds the same data. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FAMILY = ['Smith', 'Johnson', 'Williams', 'Brown', 'Jones', 'Garcia', 'Miller', 'Davis'];
const GIVEN_F = ['Mary', 'Patricia', 'Jennifer', 'Linda', 'Elena', 'Sofia', 'Aiko', 'Fatima'];
const GIVEN_M = ['James', 'John', 'Robert', 'Michael', 'Ivan', 'Mateo', 'Kenji', 'Omar'];
const CONDITIONS = [
  ['44054006', 'Diabetes mellitus type 2'],
  ['38341003', 'Hypertensive disorder'],
  ['15777000', 'Prediabetes'],
  ['195967001', 'Asthma'],
  ['55822004', 'Hyperlipidemia'],
] as const;
const LOINC = 'http://loinc.org';
const UCUM = 'http://unitsofmeasure.org';
const OBS_CAT = 'http://terminology.hl7.org/CodeSystem/observation-category';

interface ObsKind {
  code: string;
  display: string;
  category: 'laboratory' | 'vital-signs';
  unit: string;
  min: number;
  max: number;
}
const OBSERVATIONS: ObsKind[] = [
  {
    code: '4548-4',
    display: 'Hemoglobin A1c/Hemoglobin.total in Blood',
    category: 'laboratory',
    unit: '%',
    min: 4.5,
    max: 9.5,
  },
  {
    code: '2339-0',
    display: 'Glucose [Mass/volume] in Blood',
    category: 'laboratory',
    unit: 'mg/dL',
    min: 70,
    max: 220,
  },
  {
    code: '8480-6',
    display: 'Systolic blood pressure',
    category: 'vital-signs',
    unit: 'mm[Hg]',
    min: 95,
    max: 170,
  },
  {
    code: '29463-7',
    display: 'Body weight',
    category: 'vital-signs',
    unit: 'kg',
    min: 45,
    max: 130,
  },
];

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/**
 * Adds N synthetic patients, each with 2 Encounters, 1-2 Conditions and 4 Observations per
 * encounter (one of them HbA1c, LOINC 4548-4), and a Group holding every 10th patient.
 * About 12.5 resources per patient; the same N always gives the same resources.
 */
export function generate(store: Store, patients: number, seed = 20240601): number {
  const rand = prng(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)]!;
  const base = Date.UTC(2024, 5, 1);
  let stamp = 0;
  const meta = () => ({ lastUpdated: new Date(base + stamp++ * 1000).toISOString() });
  let added = 0;
  const members: { entity: { reference: string } }[] = [];
  for (let i = 1; i <= patients; i++) {
    const pid = `gen-pat-${i}`;
    const female = rand() < 0.5;
    const by = 1940 + Math.floor(rand() * 70);
    store.add({
      resourceType: 'Patient',
      id: pid,
      meta: meta(),
      active: true,
      name: [{ use: 'official', family: pick(FAMILY), given: [pick(female ? GIVEN_F : GIVEN_M)] }],
      gender: female ? 'female' : 'male',
      birthDate: `${by}-${pad(1 + Math.floor(rand() * 12))}-${pad(1 + Math.floor(rand() * 28))}`,
    });
    added++;
    if (i % 10 === 1) members.push({ entity: { reference: `Patient/${pid}` } });
    const subject = { reference: `Patient/${pid}` };
    const conditions = 1 + Math.floor(rand() * 2);
    for (let c = 1; c <= conditions; c++) {
      const [code, display] = pick(CONDITIONS);
      store.add({
        resourceType: 'Condition',
        id: `gen-cond-${i}-${c}`,
        meta: meta(),
        clinicalStatus: {
          coding: [
            {
              system: 'http://terminology.hl7.org/CodeSystem/condition-clinical',
              code: 'active',
            },
          ],
        },
        category: [
          {
            coding: [
              {
                system: 'http://terminology.hl7.org/CodeSystem/condition-category',
                code: 'problem-list-item',
              },
            ],
          },
        ],
        code: { coding: [{ system: 'http://snomed.info/sct', code, display }], text: display },
        subject,
        recordedDate: `${2015 + Math.floor(rand() * 9)}-${pad(1 + Math.floor(rand() * 12))}-15`,
      });
      added++;
    }
    for (let e = 1; e <= 2; e++) {
      const eid = `gen-enc-${i}-${e}`;
      const day = `${2015 + Math.floor(rand() * 10)}-${pad(1 + Math.floor(rand() * 12))}-${pad(
        1 + Math.floor(rand() * 28),
      )}`;
      const hour = 8 + Math.floor(rand() * 9);
      const start = `${day}T${pad(hour)}:00:00Z`;
      store.add({
        resourceType: 'Encounter',
        id: eid,
        meta: meta(),
        status: 'finished',
        class: {
          system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode',
          code: 'AMB',
          display: 'ambulatory',
        },
        subject,
        period: { start, end: `${day}T${pad(hour + 1)}:00:00Z` },
      });
      added++;
      OBSERVATIONS.forEach((k, o) => {
        const value = Math.round((k.min + rand() * (k.max - k.min)) * 10) / 10;
        store.add({
          resourceType: 'Observation',
          id: `gen-obs-${i}-${e}-${o + 1}`,
          meta: meta(),
          status: 'final',
          category: [{ coding: [{ system: OBS_CAT, code: k.category, display: k.category }] }],
          code: { coding: [{ system: LOINC, code: k.code, display: k.display }], text: k.display },
          subject,
          encounter: { reference: `Encounter/${eid}` },
          effectiveDateTime: `${day}T${pad(hour)}:${pad(10 + o)}:00Z`,
          valueQuantity: { value, unit: k.unit, system: UCUM, code: k.unit },
        });
        added++;
      });
    }
  }
  if (patients > 0) {
    store.add({
      resourceType: 'Group',
      id: 'gen-cohort',
      meta: meta(),
      type: 'person',
      actual: true,
      name: 'Every 10th generated patient',
      quantity: members.length,
      member: members,
    });
    added++;
  }
  return added;
}
