import type { FileMeta } from './types.js';

/** Object metadata keys (S3 `x-amz-meta-*`, Azure `x-ms-meta-*`): lowercase, no dashes for Azure. */
export const META_LINES = 'smartlines';
export const META_MANIFEST = 'smartmanifest';
export const META_SOURCE = 'smartsource';

/** A file's metadata as object metadata (ASCII values only: URLs are already encoded). */
export function objectMetadata(meta: FileMeta): Record<string, string> {
  return {
    ...(meta.lines !== undefined ? { [META_LINES]: String(meta.lines) } : {}),
    [META_MANIFEST]: meta.manifest,
    [META_SOURCE]: meta.source,
  };
}
