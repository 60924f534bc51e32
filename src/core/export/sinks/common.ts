import { SmartError } from '../../errors.js';
import { quoteArg } from '../poll.js';
import { STATE_FILE } from '../state.js';

/** Bucket/container and key prefix of `scheme://container/prefix`. */
export function splitUrl(url: URL, location: string): { container: string; prefix: string } {
  const container = url.hostname;
  const prefix = decodeURIComponent(url.pathname).replace(/^\/+|\/+$/g, '');
  if (!container || url.search || url.hash || prefix.split('/').some((s) => s === '..')) {
    throw new SmartError('usage', `--out ${location} is not a usable destination URL`, {
      code: 'bad_destination',
      hint: `give ${url.protocol}//<${url.protocol === 's3:' ? 'bucket' : 'container'}>/<prefix>, e.g. ${url.protocol}//exports/2024-06`,
    });
  }
  return { container, prefix };
}

/** The object key of a file name under a prefix. */
export function keyOf(prefix: string, name: string): string {
  return prefix ? `${prefix}/${name}` : name;
}

export function contentType(name: string): string {
  if (name.endsWith('.ndjson')) return 'application/fhir+ndjson';
  if (name.endsWith('.gz')) return 'application/gzip';
  if (name.endsWith('.json')) return 'application/json';
  return 'application/octet-stream';
}

/** The refusal of a prefix that already holds objects. */
export function notEmpty(display: string, earlier: boolean): SmartError {
  return new SmartError('usage', `--out ${display} is not empty`, {
    code: 'out_not_empty',
    hint: earlier
      ? `it holds an earlier export: continue it with \`smart export --resume ${quoteArg(display)}\`, or choose a new prefix`
      : 'choose a new or empty prefix (the export never mixes its files with others)',
  });
}

export { STATE_FILE };

/** A byte size from the environment: 8388608, 8m, 8MiB, 512k. */
export function parseSize(value: string | undefined, name: string): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const m = /^\s*(\d+)\s*(k|kb|kib|m|mb|mib)?\s*$/i.exec(value);
  if (!m) {
    throw new SmartError('config', `${name}="${value}" is not a size`, {
      code: 'bad_env',
      hint: `give bytes, or a number with k or m, e.g. ${name}=16m`,
    });
  }
  const unit = (m[2] ?? '').toLowerCase();
  return Number(m[1]) * (unit.startsWith('k') ? 1024 : unit.startsWith('m') ? 1024 * 1024 : 1);
}

/** Loopback and IP-literal hosts: S3-compatible stores there want path-style addressing. */
export function isIpOrLocalhost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h.endsWith('.localhost') || /^[\d.]+$/.test(h) || h.includes(':');
}

export type Env = Record<string, string | undefined>;
