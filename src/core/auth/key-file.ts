import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { readTextFile } from '../fsutil.js';
import { fnv1a64Hex } from '../hash.js';

// Reading a key file, and what identifies a key without parsing it: a module without
// node:crypto, so that a cached token is found without loading it (keys.ts parses the key).

/** What a signing key is loaded from: the key file, and the JWKS beside it. */
export interface KeyFiles {
  path: string;
  /** The key file's text. */
  text: string;
  /** The text of `jwks.json` beside it (written by `smart keygen`; it may give the key its kid). */
  jwksText?: string;
}

/** The hint when the key file is missing. */
const KEY_HINT =
  'pass --key <file> (or SMART_KEY, or `smart config set key <file>`), or make a key pair with `smart keygen`';

/** Read a key's files; a missing or unreadable key file is one usage error naming it. */
export async function readKeyFiles(path: string): Promise<KeyFiles> {
  const text = await readTextFile(path, 'private key file', KEY_HINT);
  let jwksText: string | undefined;
  try {
    jwksText = readFileSync(join(dirname(path), 'jwks.json'), 'utf8'); // see readTextFile
  } catch {
    // No JWKS beside the key (or none readable): the kid is the key's own.
  }
  return { path, text, jwksText };
}

/**
 * A fingerprint of what a key loaded from `files` (with `alg`, when one is asked for) depends
 * on: the key file's text, the JWKS's and the alg. The key's kid, its alg and the checks
 * loadSigningKey() makes are a function of these three, so a cached token stored under this
 * fingerprint was issued for the key, and kid, that the files hold now; a change to either file
 * gives another fingerprint, and a fresh token. The thumbprint would need the key parsed, and
 * node:crypto loaded (~4 ms of every warm `smart token`, bench/startup.mjs). A 64-bit FNV-1a
 * detects a change: no one is being kept out here, since whoever can write the key file signs
 * with it, and the cache itself is guarded by the trust rule (core/trust.ts).
 */
export function keyFingerprint(files: KeyFiles, alg?: string): string {
  return fnv1a64Hex(JSON.stringify([files.text, files.jwksText ?? null, alg ?? null]));
}
