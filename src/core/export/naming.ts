import { usageError } from '../errors.js';
import type { FileKind, Manifest, ManifestEntry, PlannedFile } from './types.js';

const DIRS: Record<FileKind, string> = { output: '', error: 'error/', deleted: 'deleted/' };

/** A resource type made safe as a file name: FHIR types are [A-Z][A-Za-z]*, anything else is cleaned. */
export function safeTypeName(type: unknown): string {
  const s = typeof type === 'string' ? type.replace(/[^A-Za-z0-9_-]/g, '_') : '';
  return /^[A-Za-z0-9]/.test(s) ? s.slice(0, 64) : `unknown${s}`.slice(0, 64);
}

/**
 * The `_outputFormat` values smart can save and count: NDJSON in the three spellings the Bulk
 * Data spec makes every server accept. Anything else (text/csv, parquet...) is refused before any
 * request. Add a format here, and only here.
 */
export const ACCEPTED_OUTPUT_FORMATS: readonly string[] = [
  'application/fhir+ndjson',
  'application/ndjson',
  'ndjson',
  // Aidbox's gzip form: the files are kept byte-exact as .ndjson.gz, lines counted through gunzip.
  'application/fhir+ndjson+gzip',
];

/** The --output-format value when smart can handle it; a usage error (exit 2) otherwise. */
export function checkOutputFormat(value: string): string {
  const v = value.trim();
  if (ACCEPTED_OUTPUT_FORMATS.includes(v.toLowerCase())) return v;
  throw usageError(
    `--output-format "${value}" is not one smart can save: it writes NDJSON files`,
    `use one of ${ACCEPTED_OUTPUT_FORMATS.join(', ')}, or leave it out (the server's default is application/fhir+ndjson)`,
    { code: 'bad_output_format' },
  );
}

/** `.ndjson`, or `.ndjson.gz` for a gzip output format. */
export function extensionFor(outputFormat?: string): string {
  return outputFormat && /gzip|\+gz\b/i.test(outputFormat) ? '.ndjson.gz' : '.ndjson';
}

/**
 * Local names for the manifest's files: the type plus an index per type, in manifest order
 * (`Patient.000.ndjson`, `Patient.001.ndjson`, `error/OperationOutcome.000.ndjson`,
 * `deleted/Bundle.000.ndjson`). The URL path is never used: it is the server's, not ours.
 */
export function planFiles(manifest: Manifest, outputFormat?: string): PlannedFile[] {
  const ext = extensionFor(outputFormat);
  const planned: PlannedFile[] = [];
  const lists: Array<[FileKind, ManifestEntry[] | undefined]> = [
    ['output', manifest.output],
    ['error', manifest.error],
    ['deleted', manifest.deleted],
  ];
  for (const [kind, entries] of lists) {
    if (!Array.isArray(entries)) continue;
    const perType = new Map<string, number>();
    for (const e of entries) {
      const type = safeTypeName(e.type);
      perType.set(type, (perType.get(type) ?? 0) + 1);
    }
    const seen = new Map<string, number>();
    for (const e of entries) {
      const type = safeTypeName(e.type);
      const i = seen.get(type) ?? 0;
      seen.set(type, i + 1);
      const width = Math.max(3, String(perType.get(type)! - 1).length);
      const file: PlannedFile = {
        kind,
        type: typeof e.type === 'string' ? e.type : type,
        url: e.url,
        name: `${DIRS[kind]}${type}.${String(i).padStart(width, '0')}${ext}`,
      };
      if (typeof e.count === 'number' && Number.isInteger(e.count) && e.count >= 0)
        file.count = e.count;
      planned.push(file);
    }
  }
  return planned;
}
