import type { Quirks } from './quirks.js';
import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { AccessToken } from './auth.js';
import type { Store } from './data.js';
import { requireKnownType, requirePermission } from './fhir.js';
import {
  type Exchange,
  HttpError,
  JSON_TYPE,
  NDJSON,
  fhirError,
  mediaType,
  outcome,
  readBody,
  send,
  sendLines,
} from './http.js';
import { R4_RESOURCE_TYPES } from './resource-types.js';
import { permsFor } from './scopes.js';
import { dateRange, runSearch } from './search.js';
import type { Resource } from './types.js';

/**
 * Bulk Data $export (STU2). Kick-off: GET (query) or POST (Parameters) at /fhir/$export,
 * /fhir/Patient/$export and /fhir/Group/<id>/$export, with `Accept: application/fhir+json` and
 * `Prefer: respond-async`. Parameters: _outputFormat, _since, _type, _typeFilter, patient.
 * One export runs at a time on the whole server, as on Aidbox: another kick-off, from any client,
 * gets 429 + Retry-After.
 * An unknown type in _type does not fail the export: it becomes an OperationOutcome in error[].
 * Files need the Bearer token, or (requiresAccessToken false) carry a signature in their URL.
 */

/** Aidbox's extra format: gzip-compressed NDJSON files (`.ndjson.gz`). */
const GZIP_FORMAT = 'application/fhir+ndjson+gzip';
const OUTPUT_FORMATS = ['application/fhir+ndjson', 'application/ndjson', 'ndjson', GZIP_FORMAT];
const SUPPORTED = new Set(['_outputFormat', '_since', '_type', '_typeFilter', 'patient']);

export type ExportLevel = { kind: 'system' } | { kind: 'patient' } | { kind: 'group'; id: string };

interface ExportFile {
  type: string;
  name: string;
  lines: number;
  line: (i: number) => string;
  /** What the manifest says the count is, when it is not `lines` (the error-counts quirk). */
  count?: number;
}

interface ExportJob {
  id: string;
  clientId: string;
  origin: string;
  request: string;
  transactionTime: string;
  createdAt: number;
  readyAt: number;
  /** Status polls still to answer 202, whatever the time (ExportOptions.minPolls). */
  pollsLeft: number;
  output: ExportFile[];
  errors: ExportFile[];
  /** _outputFormat application/fhir+ndjson+gzip: output files are gzip-compressed. */
  gzip?: boolean;
}

export interface ExportOptions {
  fileSize: number;
  delayMs: number;
  /** Status polls answered 202 before the manifest, however fast the client is; default 0. */
  minPolls?: number;
  /** False: file URLs are pre-signed (`?exp=&sig=`) and need no token. */
  requiresAccessToken: boolean;
  /**
   * The origin of the storage listener (another port, as Aidbox's GCS/S3/Azure storage): file
   * URLs are pre-signed `<origin>/exports/<id>/<name>?exp=&sig=` there. Undefined: on the FHIR
   * server's origin.
   */
  storageOrigin?: () => string | undefined;
  /** How long a signed file URL is valid; default one hour. */
  signedUrlLifetimeSec?: number;
  /** The sandbox's clock, in milliseconds since 1970; default Date.now. */
  now?: () => number;
  /** Behaviours of real servers this sandbox reproduces (quirks.ts). */
  quirks?: Quirks;
  /**
   * False: no cloud storage configured, as an Aidbox without it: every kick-off answers 500
   * "storage-type not specified".
   */
  storage?: boolean;
}

/**
 * Pre-signed file URLs, as cloud storage hands out (Aidbox's requiresAccessToken: false):
 * `exp` (epoch seconds) and `sig`, an HMAC-SHA256 of `<path>\n<exp>` with a secret that lives
 * and dies with this sandbox. The path holds the export id, so a URL opens one file only.
 */
export class UrlSigner {
  constructor(
    private readonly secret: Buffer = randomBytes(32),
    private readonly now: () => number = Date.now,
  ) {}

  /** The query string (without `?`) that opens `path` until `exp`. */
  sign(path: string, exp: number): string {
    return new URLSearchParams({ exp: String(exp), sig: this.mac(path, exp) }).toString();
  }

  check(path: string, query: URLSearchParams): 'ok' | 'bad' | 'expired' {
    const sig = query.get('sig') ?? '';
    const expText = query.get('exp') ?? '';
    if (!/^\d{1,12}$/.test(expText)) return 'bad';
    const exp = Number(expText);
    const want = Buffer.from(this.mac(path, exp));
    const got = Buffer.from(sig);
    if (got.length !== want.length || !timingSafeEqual(got, want)) return 'bad';
    return this.now() >= exp * 1000 ? 'expired' : 'ok';
  }

  private mac(path: string, exp: number): string {
    return createHmac('sha256', this.secret).update(`${path}\n${exp}`).digest('base64url');
  }
}

export class Exports {
  private readonly jobs = new Map<string, ExportJob>();
  private readonly signer: UrlSigner;
  private readonly now: () => number;
  constructor(
    private readonly store: Store,
    private readonly options: ExportOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.signer = new UrlSigner(undefined, this.now);
  }

  async kickoff(ex: Exchange, token: AccessToken, level: ExportLevel) {
    if (ex.method !== 'GET' && ex.method !== 'POST') {
      throw fhirError(405, 'not-supported', `${ex.method} is not allowed on $export`);
    }
    const accept = String(ex.req.headers.accept ?? '');
    if (!/application\/fhir\+json/i.test(accept)) {
      throw fhirError(
        400,
        'invalid',
        `$export requires the header Accept: application/fhir+json (got '${accept || 'none'}')`,
      );
    }
    const prefer = String(ex.req.headers.prefer ?? '');
    if (!/respond-async/i.test(prefer)) {
      throw fhirError(400, 'invalid', '$export requires the header Prefer: respond-async');
    }
    if (this.options.storage === false) {
      throw fhirError(
        500,
        'exception',
        'storage-type not specified: $export needs cloud storage (GCP, Azure or AWS) configured',
      );
    }
    const lenient = /handling\s*=\s*lenient/i.test(prefer);
    const params = await exportParams(ex);

    for (const name of params.keys()) {
      if (SUPPORTED.has(name)) continue;
      if (!lenient) {
        throw fhirError(
          400,
          'not-supported',
          `$export parameter '${name}' is not supported (send Prefer: handling=lenient to ignore it)`,
        );
      }
    }
    for (const f of params.get('_outputFormat') ?? []) {
      if (!OUTPUT_FORMATS.includes(f)) {
        throw fhirError(
          400,
          'not-supported',
          `_outputFormat '${f}' is not supported; use ${OUTPUT_FORMATS.join(', ')}`,
        );
      }
    }
    let since: number | undefined;
    const sinceValues = params.get('_since') ?? [];
    if (sinceValues.length > 1) throw fhirError(400, 'invalid', '_since: give one instant');
    if (sinceValues.length === 1) {
      const r = dateRange(sinceValues[0]!);
      if (!r) throw fhirError(400, 'invalid', `_since: '${sinceValues[0]}' is not a FHIR instant`);
      since = r[0];
    }
    if (level.kind === 'system' && params.has('patient')) {
      throw fhirError(400, 'invalid', 'patient: only for Patient- and Group-level export');
    }

    // Types: as asked (unknown ones reported in error[]), or all those the scopes allow.
    const errors: string[] = [];
    let types: string[];
    const asked = params.get('_type');
    if (asked) {
      types = [];
      for (const t of new Set(asked)) {
        if (!R4_RESOURCE_TYPES.has(t)) {
          errors.push(
            JSON.stringify(
              outcome('not-supported', `_type: unknown resource type '${t}', skipped`),
            ),
          );
          continue;
        }
        requirePermission(token, t, 'r');
        types.push(t);
      }
    } else {
      types = this.store
        .typeNames()
        .filter((t) => token.admin || permsFor(token.scopes, t).has('r'));
    }

    // _typeFilter: a resource of a filtered type is kept when it matches one of its queries.
    const typeFilters = new Map<string, Set<Resource>>();
    for (const f of params.get('_typeFilter') ?? []) {
      const q = f.indexOf('?');
      const type = q < 0 ? f : f.slice(0, q);
      requireKnownType(type);
      const query = [...new URLSearchParams(q < 0 ? '' : f.slice(q + 1))];
      const hits = runSearch(this.store, { type, params: query, strict: !lenient });
      const set = typeFilters.get(type) ?? new Set();
      for (const r of hits) set.add(r);
      typeFilters.set(type, set);
    }

    this.options.quirks?.kickoff();
    const running = [...this.jobs.values()].find((j) => !this.isReady(j));
    if (running) {
      const wait = Math.max(1, Math.ceil((running.readyAt - this.now()) / 1000));
      throw new HttpError(
        429,
        outcome('throttled', 'an export is already running on this server; one runs at a time'),
        { 'Retry-After': wait },
      );
    }

    const byType = this.select(level, types, params.get('patient'));
    const keep = (r: Resource) => {
      if (since !== undefined) {
        const t = r.meta?.lastUpdated ? dateRange(r.meta.lastUpdated) : undefined;
        if (!t || t[0] <= since) return false;
      }
      const filter = typeFilters.get(r.resourceType);
      return !filter || filter.has(r);
    };

    const id = randomUUID();
    const gzip = (params.get('_outputFormat') ?? []).includes(GZIP_FORMAT);
    const output: ExportFile[] = [];
    const size = this.options.fileSize;
    for (const type of types) {
      const list = (byType.get(type) ?? []).filter(keep);
      for (let part = 0; part * size < list.length; part++) {
        const chunk = list.slice(part * size, (part + 1) * size);
        output.push({
          type,
          name: `${type}-${part + 1}.ndjson${gzip ? '.gz' : ''}`,
          lines: chunk.length,
          line: (i) => JSON.stringify(chunk[i]) + '\n',
        });
      }
    }
    const errorFiles: ExportFile[] =
      errors.length === 0
        ? []
        : [
            {
              type: 'OperationOutcome',
              name: 'errors-1.ndjson',
              lines: errors.length,
              line: (i) => errors[i] + '\n',
            },
          ];
    const quirkErrors = this.options.quirks?.errorFile(output.reduce((n, f) => n + f.lines, 0));
    if (quirkErrors) {
      errorFiles.push({
        type: 'OperationOutcome',
        name: `errors-${errorFiles.length + 1}.ndjson`,
        lines: quirkErrors.lines.length,
        line: (i) => quirkErrors.lines[i] + '\n',
        count: quirkErrors.count,
      });
    }
    const now = this.now();
    const job: ExportJob = {
      id,
      clientId: token.clientId,
      origin: ex.origin,
      request: `${ex.origin}${ex.req.url}`,
      transactionTime: new Date(now).toISOString(),
      createdAt: now,
      readyAt: now + this.options.delayMs,
      pollsLeft: this.options.minPolls ?? 0,
      output,
      errors: errorFiles,
      gzip,
    };
    this.jobs.set(id, job);
    send(ex, 202, outcome('informational', `export ${id} accepted`, 'information'), undefined, {
      'Content-Location': `${ex.origin}/fhir/$export-status/${id}`,
    });
  }

  /** The resources per type for the export level, before _since and _typeFilter. */
  private select(level: ExportLevel, types: string[], patientParam?: string[]) {
    const byType = new Map<string, Resource[]>();
    if (level.kind === 'system') {
      for (const t of types) byType.set(t, this.store.all(t));
      return byType;
    }
    let patients: Resource[];
    if (level.kind === 'group') {
      const group = this.store.get('Group', level.id);
      if (!group) throw fhirError(404, 'not-found', `Group/${level.id} not found`);
      const members = (Array.isArray(group.member) ? group.member : []) as {
        entity?: { reference?: string };
        inactive?: boolean;
      }[];
      patients = members
        .filter((m) => !m.inactive && m.entity?.reference?.startsWith('Patient/'))
        .map((m) => this.store.get('Patient', m.entity!.reference!.slice('Patient/'.length)))
        .filter((p): p is Resource => !!p);
    } else {
      patients = this.store.all('Patient');
    }
    if (patientParam) {
      const wanted = new Set(patientParam.map((p) => p.replace(/^.*Patient\//, '')));
      patients = patients.filter((p) => wanted.has(p.id));
    }
    const wantedTypes = new Set(types);
    for (const t of types) byType.set(t, []);
    for (const p of patients) {
      if (wantedTypes.has('Patient')) byType.get('Patient')!.push(p);
      for (const r of this.store.compartment(p.id)) {
        if (wantedTypes.has(r.resourceType)) byType.get(r.resourceType)!.push(r);
      }
    }
    return byType;
  }

  private isReady(job: ExportJob): boolean {
    return this.now() >= job.readyAt && job.pollsLeft <= 0;
  }

  private job(id: string, token: AccessToken): ExportJob {
    const job = this.jobs.get(id);
    // Another client's export is as invisible as a missing one.
    if (!job || (!token.admin && job.clientId !== token.clientId)) {
      throw fhirError(
        404,
        'not-found',
        `no export '${id}' (unknown, deleted or of another client)`,
      );
    }
    return job;
  }

  /** GET (poll) and DELETE (cancel) of /fhir/$export-status/<id> */
  status(ex: Exchange, token: AccessToken, id: string): void {
    const job = this.job(id, token);
    if (ex.method === 'DELETE') {
      this.jobs.delete(id);
      send(ex, 202, outcome('informational', `export ${id} deleted`, 'information'));
      return;
    }
    if (ex.method !== 'GET') throw fhirError(405, 'not-supported', `${ex.method} on an export`);
    const now = this.now();
    if (!this.isReady(job)) {
      job.pollsLeft--;
      const total = Math.max(1, job.readyAt - job.createdAt);
      const pct = Math.min(99, Math.floor(((now - job.createdAt) / total) * 100));
      send(ex, 202, undefined, undefined, {
        'X-Progress': `in progress: ${pct}%`,
        'Retry-After': Math.max(1, Math.ceil((job.readyAt - now) / 1000)),
      });
      return;
    }
    const storage = this.options.storageOrigin?.();
    const signed = !this.options.requiresAccessToken || storage !== undefined;
    // Signed URLs are made afresh on each poll, as storage services do.
    const exp = Math.floor(now / 1000) + (this.options.signedUrlLifetimeSec ?? 3600);
    const fileUrl = (f: ExportFile) => {
      if (storage !== undefined) {
        const path = `/exports/${job.id}/${f.name}`;
        return `${storage}${path}?${this.signer.sign(path, exp)}`;
      }
      const path = `/fhir/$export-file/${job.id}/${f.name}`;
      return `${job.origin}${path}${signed ? `?${this.signer.sign(path, exp)}` : ''}`;
    };
    send(
      ex,
      200,
      {
        // Aidbox's non-standard extra member.
        status: 'completed',
        transactionTime: job.transactionTime,
        request: job.request,
        requiresAccessToken: !signed,
        output: job.output.map((f) => ({ type: f.type, url: fileUrl(f), count: f.lines })),
        error: job.errors.map((f) => ({
          type: f.type,
          url: fileUrl(f),
          count: f.count ?? f.lines,
        })),
      },
      JSON_TYPE,
      signed ? { Expires: new Date(exp * 1000).toUTCString() } : {},
    );
  }

  /**
   * GET /fhir/$export-file/<id>/<name>?exp=&sig=: the URL is the credential, whatever the
   * Authorization header says (a token sent along is neither needed nor checked).
   */
  async signedFile(ex: Exchange, id: string, name: string): Promise<void> {
    if (ex.method !== 'GET')
      throw fhirError(405, 'not-supported', `${ex.method} on an export file`);
    const verdict = this.signer.check(ex.pathname, ex.url.searchParams);
    if (verdict === 'bad') {
      throw fhirError(403, 'forbidden', 'the signature of this export file URL does not match');
    }
    if (verdict === 'expired') {
      throw fhirError(
        403,
        'forbidden',
        'this export file URL has expired; poll the status URL for fresh ones',
      );
    }
    const job = this.jobs.get(id);
    if (!job) throw fhirError(404, 'not-found', `no export '${id}' (unknown or deleted)`);
    ex.clientId = job.clientId;
    await this.serveFile(ex, job, name);
  }

  /** GET /fhir/$export-file/<id>/<name>: one NDJSON file, streamed. */
  async file(ex: Exchange, token: AccessToken, id: string, name: string): Promise<void> {
    if (ex.method !== 'GET')
      throw fhirError(405, 'not-supported', `${ex.method} on an export file`);
    await this.serveFile(ex, this.job(id, token), name);
  }

  private async serveFile(ex: Exchange, job: ExportJob, name: string): Promise<void> {
    const file = this.isReady(job)
      ? [...job.output, ...job.errors].find((f) => f.name === name)
      : undefined;
    if (!file) throw fhirError(404, 'not-found', `export ${job.id} has no file '${name}'`);
    if (job.gzip && job.output.includes(file)) {
      const text = Array.from({ length: file.lines }, (_, i) => file.line(i)).join('');
      send(ex, 200, gzipSync(Buffer.from(text, 'utf8')), 'application/gzip');
      return;
    }
    await sendLines(ex, 200, NDJSON, file.lines, file.line);
  }
}

/** Kick-off parameters from the query and, for POST, a Parameters body; values comma-split. */
async function exportParams(ex: Exchange): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  const add = (name: string, value: string, split: boolean) => {
    const list = out.get(name) ?? [];
    // _typeFilter queries may hold commas of their own: split only before `Type?`.
    const parts = !split
      ? [value]
      : name === '_typeFilter'
        ? value.split(/,(?=[A-Z][A-Za-z]*\?)/)
        : value.split(',');
    for (const v of parts) if (v.trim()) list.push(v.trim());
    out.set(name, list);
  };
  for (const [k, v] of ex.url.searchParams) add(k, v, true);
  if (ex.method === 'POST') {
    const text = await readBody(ex);
    if (text.trim()) {
      const ct = mediaType(ex.req.headers['content-type']);
      if (ct !== 'application/fhir+json' && ct !== 'application/json') {
        throw fhirError(415, 'not-supported', `$export POST body must be application/fhir+json`);
      }
      let body: { resourceType?: string; parameter?: Record<string, unknown>[] };
      try {
        body = JSON.parse(text);
      } catch {
        throw fhirError(400, 'structure', 'the $export POST body is not valid JSON');
      }
      if (body?.resourceType !== 'Parameters') {
        throw fhirError(400, 'structure', 'the $export POST body must be a Parameters resource');
      }
      for (const p of body.parameter ?? []) {
        const name = String(p.name ?? '');
        const valueKey = Object.keys(p).find((k) => k.startsWith('value'));
        let value = valueKey ? p[valueKey] : undefined;
        if (value && typeof value === 'object') value = (value as { reference?: string }).reference;
        if (typeof value !== 'string') {
          throw fhirError(400, 'structure', `Parameters: '${name}' has no usable value[x]`);
        }
        add(name, value, name === '_type' || name === 'patient');
      }
    }
  }
  return out;
}
