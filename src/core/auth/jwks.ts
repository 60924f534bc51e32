import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { usageError } from '../errors.js';
import { fileError, makeDir, readTextFile, writeFileAtomic } from '../fsutil.js';
import {
  KEYGEN_ALGS,
  PRIVATE_MEMBERS,
  algKeyMismatch,
  checkAlg,
  defaultAlgFor,
  generateSigningKey,
  parseJwks,
  parseKey,
  privateMembers,
  publicJwkOf,
  readJwksFile,
  rsaBits,
  thumbprint,
  type Jwks,
  type PublicJwk,
  type SigningAlg,
} from './keys.js';

export const JWKS_FILE_NAME = 'jwks.json';

/** A JWKS file is public: readable by the web server that may publish it. */
const JWKS_MODE = 0o644;
const PRIVATE_KEY_MODE = 0o600;

/** Read a JWKS file; a missing file is an empty set (the first keygen creates it). */
export async function readJwksOrEmpty(path: string): Promise<Jwks> {
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { keys: [] };
    throw fileError(e, path, 'read', 'JWKS file');
  }
  return parseJwks(text, path);
}

/** Write a JWKS atomically, refusing private members: the file is meant to be published. */
export async function writeJwksFile(path: string, jwks: Jwks): Promise<void> {
  const leaks = privateMembers(jwks);
  if (leaks.length) {
    throw usageError(
      `refusing to write private key members to ${path}: ${leaks.join('; ')}`,
      'a JWKS holds public keys only',
      { code: 'private_members' },
    );
  }
  await writeFileAtomic(path, JSON.stringify(jwks, null, 2) + '\n', { mode: JWKS_MODE });
}

export interface AddKeyOptions {
  /** Replace entries with the same kid (or the same key under another kid). */
  force?: boolean;
}

export interface AddKeyResult {
  jwks: Jwks;
  /** kids of the entries that were replaced (only with force). */
  replaced: string[];
}

/**
 * Add a public key beside the existing ones (rotation). A kid already in the set, or the same
 * key under another kid, is an error unless `force`, which replaces those entries.
 */
export async function addKeyToJwks(
  jwks: Jwks,
  jwk: PublicJwk,
  source: string,
  options: AddKeyOptions = {},
): Promise<AddKeyResult> {
  const tp = await thumbprint(jwk);
  const clashes: number[] = [];
  for (let i = 0; i < jwks.keys.length; i++) {
    const k = jwks.keys[i]!;
    const sameKid = jwk.kid !== undefined && k.kid === jwk.kid;
    const sameKey = !sameKid && (await thumbprint(k).catch(() => '')) === tp;
    if (sameKid || sameKey) {
      if (!options.force) {
        throw usageError(
          sameKid
            ? `${source} already holds a key with kid "${jwk.kid}"`
            : `${source} already holds this key (kid "${k.kid ?? '(none)'}")`,
          sameKid
            ? 'pass --kid <id> to choose another kid, or --force to replace that key'
            : 'pass --force to replace that entry',
          { code: 'kid_exists' },
        );
      }
      clashes.push(i);
    }
  }
  const replaced = clashes.map((i) => jwks.keys[i]!.kid ?? `keys[${i}]`);
  const keys = jwks.keys.filter((_, i) => !clashes.includes(i));
  keys.push(jwk);
  return { jwks: { keys }, replaced };
}

/** Remove the key with this kid; an unknown kid is an error listing the kids there are. */
export function removeKeyFromJwks(jwks: Jwks, kid: string, source: string): Jwks {
  const keys = jwks.keys.filter((k) => k.kid !== kid);
  if (keys.length === jwks.keys.length) {
    const known = jwks.keys.map((k) => k.kid).filter(Boolean);
    throw usageError(
      `no key with kid "${kid}" in ${source}`,
      known.length
        ? `kids in that file: ${known.join(', ')}`
        : 'that JWKS holds no keys with a kid',
      { code: 'no_such_kid' },
    );
  }
  return { keys };
}

/** What a table shows about one JWK. */
export interface JwkSummary {
  kid?: string;
  kty: string;
  alg?: string;
  use?: string;
  /** RSA modulus bits or EC curve. */
  size?: string;
  private: boolean;
}

export function summarizeJwk(jwk: PublicJwk): JwkSummary {
  const bits = rsaBits(jwk);
  return {
    kid: jwk.kid,
    kty: jwk.kty,
    alg: jwk.alg,
    use: jwk.use ?? (jwk.key_ops ? jwk.key_ops.join(',') : undefined),
    size: bits !== undefined ? `${bits} bits` : jwk.crv,
    private: PRIVATE_MEMBERS.some((m) => m in jwk),
  };
}

/** The same set with private members dropped, for display. */
export function stripPrivate(jwks: Jwks): Jwks {
  return {
    keys: jwks.keys.map((k) => {
      const copy: PublicJwk = { ...k };
      for (const m of PRIVATE_MEMBERS) delete copy[m];
      return copy;
    }),
  };
}

export interface ImportedKey {
  publicJwk: PublicJwk;
  kid: string;
  alg: SigningAlg;
  /** The form the key file was in (PKCS#8 "PRIVATE KEY", "RSA PRIVATE KEY", JWK...). */
  format: string;
}

/**
 * The public JWK of a key made elsewhere. kid: given, else the JWK's own, else the RFC 7638
 * thumbprint; alg: given, else the JWK's own, else the default for the key type.
 */
export async function importPublicJwk(
  path: string,
  options: { kid?: string; alg?: string } = {},
): Promise<ImportedKey> {
  const parsed = parseKey(await readTextFile(path, 'key file'), path);
  const bare = publicJwkOf(parsed.key);
  if (bare.kty !== 'RSA' && bare.kty !== 'EC') {
    throw usageError(
      `${path}: unsupported key type ${bare.kty}`,
      'use an RSA key (2048 bits or more) or an EC key on P-256, P-384 or P-521',
      { code: 'bad_key' },
    );
  }
  const bits = rsaBits(bare);
  if (bits !== undefined && bits < 2048) {
    throw usageError(
      `${path}: RSA key of ${bits} bits is too small`,
      'SMART requires RSA keys of at least 2048 bits',
      { code: 'bad_key' },
    );
  }
  const jwkAlg = parsed.jwk?.alg;
  const alg = options.alg ? checkAlg(options.alg) : jwkAlg ? checkAlg(jwkAlg) : defaultAlgFor(bare);
  const mismatch = algKeyMismatch(alg, bare);
  if (mismatch) {
    throw usageError(`${path}: ${mismatch}`, 'choose a matching --alg', { code: 'bad_alg' });
  }
  const kid = options.kid ?? parsed.jwk?.kid ?? (await thumbprint(bare));
  return {
    publicJwk: publicJwkOf(parsed.key, { kid, alg, use: 'sig' }),
    kid,
    alg,
    format: parsed.format,
  };
}

/** Import a key file into a JWKS file (public part only). */
export async function addKeyFileToJwks(
  keyPath: string,
  jwksPath: string,
  options: { kid?: string; alg?: string; force?: boolean } = {},
): Promise<ImportedKey & { jwksPath: string; replaced: string[]; count: number }> {
  const imported = await importPublicJwk(keyPath, options);
  const current = await readJwksOrEmpty(jwksPath);
  const { jwks, replaced } = await addKeyToJwks(current, imported.publicJwk, jwksPath, options);
  await writeJwksFile(jwksPath, jwks);
  return { ...imported, jwksPath, replaced, count: jwks.keys.length };
}

/** Remove a kid from a JWKS file. */
export async function removeKidFromJwksFile(
  jwksPath: string,
  kid: string,
): Promise<{ removed: string; jwksPath: string; remaining: number }> {
  const jwks = removeKeyFromJwks(await readJwksFile(jwksPath), kid, jwksPath);
  await writeJwksFile(jwksPath, jwks);
  return { removed: kid, jwksPath, remaining: jwks.keys.length };
}

/** "private-rs384-AbCdEf12.pem": readable, stable, and distinct per key. */
export function privateKeyFileName(alg: string, kid: string): string {
  const safe = kid.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 8) || 'key';
  return `private-${alg.toLowerCase()}-${safe}.pem`;
}

export interface CreateKeyOptions {
  alg?: string;
  bits?: number;
  kid?: string;
  dir: string;
  /** Replace an existing private key file, and an existing JWKS entry with the same kid. */
  force?: boolean;
}

export interface CreatedKey {
  kid: string;
  alg: SigningAlg;
  bits?: number;
  privateKey: string;
  jwks: string;
  publicJwk: PublicJwk;
  /** How many keys the JWKS now holds. */
  count: number;
  replaced: string[];
}

/**
 * `smart keygen`: a new key pair, the private key as PKCS#8 PEM (0600, never overwritten
 * without force) and its public JWK added to `<dir>/jwks.json` (0644). Checks everything
 * before writing anything, so a refusal leaves the directory as it was.
 */
export async function createKeyPair(options: CreateKeyOptions): Promise<CreatedKey> {
  const alg = checkAlg(options.alg ?? 'RS384', KEYGEN_ALGS);
  if (options.kid !== undefined && options.kid.trim() === '') {
    throw usageError('--kid must not be empty', 'omit --kid to use the RFC 7638 thumbprint');
  }
  const jwksPath = join(options.dir, JWKS_FILE_NAME);
  const current = await readJwksOrEmpty(jwksPath);
  const generated = await generateSigningKey(alg, { bits: options.bits, kid: options.kid });
  const privatePath = join(options.dir, privateKeyFileName(alg, generated.kid));
  if (!options.force && (await exists(privatePath))) {
    throw usageError(
      `${privatePath} already exists`,
      'use --force to replace it (the old key will be lost)',
      {
        code: 'file_exists',
      },
    );
  }
  const { jwks, replaced } = await addKeyToJwks(current, generated.publicJwk, jwksPath, {
    force: options.force,
  });
  await makeDir(options.dir);
  await writeFileAtomic(privatePath, generated.privateKeyPem, {
    mode: PRIVATE_KEY_MODE,
    exclusive: !options.force,
  });
  await writeJwksFile(jwksPath, jwks);
  return {
    kid: generated.kid,
    alg,
    bits: generated.bits,
    privateKey: privatePath,
    jwks: jwksPath,
    publicJwk: generated.publicJwk,
    count: jwks.keys.length,
    replaced,
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await fs.lstat(path);
    return true;
  } catch {
    return false;
  }
}
