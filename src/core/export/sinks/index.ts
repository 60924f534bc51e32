import { SmartError } from '../../errors.js';
import { DirectorySink } from './directory.js';
import type { Env } from './common.js';
import type { Sink } from './types.js';

export type { FileMeta, Sink, SinkUpload, StoredFile } from './types.js';
export { DirectorySink, partPath } from './directory.js';

/**
 * The destinations an export can write to, by URL scheme; a plain path is a directory. The
 * object store sinks (and their SDKs) are imported only when such a destination is used.
 */
const REGISTRY: Record<string, (url: URL, location: string, env: Env) => Promise<Sink>> = {
  s3: async (url, location, env) => (await import('./s3.js')).S3Sink.create(url, location, { env }),
  az: async (url, location, env) =>
    (await import('./azure.js')).AzureSink.create(url, location, { env }),
};

/** `s3://...`, `az://...`: a destination URL rather than a local path. */
export function isSinkUrl(dest: string): boolean {
  const m = /^([a-z][a-z0-9+.-]*):\/\//i.exec(dest);
  return !!m && m[1]!.toLowerCase() in REGISTRY;
}

/** The sink for `--out`/`--resume`: a URL with a registered scheme, else a local directory. */
export async function openSink(dest: string, env: Env = {}): Promise<Sink> {
  const m = /^([a-z][a-z0-9+.-]*):\/\//i.exec(dest);
  if (!m) return new DirectorySink(dest);
  const scheme = m[1]!.toLowerCase();
  const open = REGISTRY[scheme];
  if (!open) {
    throw new SmartError('usage', `--out ${dest}: unknown destination scheme "${scheme}://"`, {
      code: 'bad_destination',
      hint: `give a directory${
        Object.keys(REGISTRY).length
          ? `, or one of ${Object.keys(REGISTRY)
              .map((s) => `${s}://`)
              .join(', ')}`
          : ''
      }`,
    });
  }
  let url: URL;
  try {
    url = new URL(dest);
  } catch (e) {
    throw new SmartError('usage', `--out ${dest} is not a valid URL`, {
      cause: e,
      code: 'bad_destination',
      hint: `e.g. ${scheme}://bucket/prefix`,
    });
  }
  return open(url, dest, env);
}
