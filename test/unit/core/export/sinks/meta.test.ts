import { describe, expect, it } from 'vitest';
import {
  META_LINES,
  META_MANIFEST,
  META_SOURCE,
  objectMetadata,
} from '../../../../../src/core/export/sinks/meta.js';

describe('sinks/meta', () => {
  it('keys valid for both S3 and Azure metadata: lowercase letters only', () => {
    for (const k of [META_LINES, META_MANIFEST, META_SOURCE]) expect(k).toMatch(/^[a-z]+$/);
  });

  it('the counted lines, the manifest and the source URL; no lines key when not counted', () => {
    const manifest = 'https://fhir.example/$export-poll/1';
    const source = 'https://fhir.example/files/Patient.1.ndjson';
    expect(objectMetadata({ lines: 0, manifest, source })).toEqual({
      smartlines: '0',
      smartmanifest: manifest,
      smartsource: source,
    });
    expect(objectMetadata({ manifest, source })).toEqual({
      smartmanifest: manifest,
      smartsource: source,
    });
  });
});
