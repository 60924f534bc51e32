import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPair as nodeGenerateKeyPair,
  type KeyObject,
} from 'node:crypto';
import { promisify } from 'node:util';
import { SmartError, usageError } from '../errors.js';
import { SIGNING_ALGS, isSigningAlg, type SigningAlg } from './algs.js';
import { readTextFile } from '../fsutil.js';
import { readKeyFiles, type KeyFiles } from './key-file.js';

const generateKeyPairAsync = promisify(nodeGenerateKeyPair);

// Re-exported for the modules and the library users that import them from here.
export { SIGNING_ALGS, isSigningAlg, type SigningAlg } from './algs.js';

/** What `smart keygen --alg` offers: every signing alg but PS256 and PS512. */
export const KEYGEN_ALGS: SigningAlg[] = SIGNING_ALGS.filter((a) => a !== 'PS256' && a !== 'PS512');
export const RSA_BITS = [2048, 3072, 4096] as const;

export const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

export interface PublicJwk {
  kty: string;
  kid?: string;
  alg?: string;
  use?: string;
  key_ops?: string[];
  n?: string;
  e?: string;
  crv?: string;
  x?: string;
  y?: string;
  [member: string]: unknown;
}

export interface Jwks {
  keys: PublicJwk[];
}

export interface SigningKey {
  /** The private key, usable by jose and node:crypto. */
  key: KeyObject;
  alg: SigningAlg;
  kid: string;
  publicJwk: PublicJwk;
  /** Where it came from, for messages. */
  source: string;
}

const CURVE_ALG: Record<string, SigningAlg> = {
  'P-256': 'ES256',
  'P-384': 'ES384',
  'P-521': 'ES512',
};
const ALG_CURVE: Record<string, string> = { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' };
const NODE_CURVE: Record<string, string> = {
  'P-256': 'prime256v1',
  'P-384': 'secp384r1',
  'P-521': 'secp521r1',
};

export function checkAlg(alg: string, allowed: readonly string[] = SIGNING_ALGS): SigningAlg {
  const upper = alg.toUpperCase();
  if (!isSigningAlg(upper) || !allowed.includes(upper)) {
    throw usageError(`unsupported algorithm "${alg}"`, `use one of ${allowed.join(', ')}`, {
      code: 'bad_alg',
    });
  }
  return upper;
}

/** The algorithm a key signs with when none is asked for: RS384 for RSA (what SMART and Aidbox use), ES* by curve. */
export function defaultAlgFor(jwk: PublicJwk): SigningAlg {
  if (jwk.kty === 'RSA') return 'RS384';
  if (jwk.kty === 'EC' && jwk.crv && CURVE_ALG[jwk.crv]) return CURVE_ALG[jwk.crv]!;
  throw usageError(
    `unsupported key type ${jwk.kty}${jwk.crv ? ` (${jwk.crv})` : ''}`,
    'use an RSA key (2048 bits or more) or an EC key on P-256, P-384 or P-521',
  );
}

/** Why this alg cannot be used with this key, or undefined when it can. */
export function algKeyMismatch(alg: SigningAlg, jwk: PublicJwk): string | undefined {
  if (alg.startsWith('RS') || alg.startsWith('PS')) {
    return jwk.kty === 'RSA'
      ? undefined
      : `${alg} needs an RSA key, but the key is ${jwk.kty} ${jwk.crv ?? ''}`.trim();
  }
  const crv = ALG_CURVE[alg];
  if (jwk.kty !== 'EC' || jwk.crv !== crv) {
    return `${alg} needs an EC key on ${crv}, but the key is ${jwk.kty}${jwk.crv ? ` ${jwk.crv}` : ''}`;
  }
  return undefined;
}

export function rsaBits(jwk: PublicJwk): number | undefined {
  if (jwk.kty !== 'RSA' || !jwk.n) return undefined;
  return Buffer.from(jwk.n, 'base64url').length * 8;
}

const THUMBPRINT_MEMBERS: Record<string, string[]> = {
  RSA: ['e', 'kty', 'n'],
  EC: ['crv', 'kty', 'x', 'y'],
  OKP: ['crv', 'kty', 'x'],
  oct: ['k', 'kty'],
};

/**
 * RFC 7638 thumbprint (SHA-256, base64url): the default kid. Computed with node:crypto rather
 * than jose, so that a warm `smart token` (which needs the kid for its cache key) skips jose.
 */
export async function thumbprint(jwk: PublicJwk): Promise<string> {
  const members = THUMBPRINT_MEMBERS[jwk.kty];
  if (!members) throw usageError(`cannot compute a thumbprint for key type "${jwk.kty}"`);
  // The required members only, in lexicographic order, no whitespace (RFC 7638 §3.2).
  const canonical: Record<string, unknown> = {};
  for (const m of members) {
    if (typeof jwk[m] !== 'string' || jwk[m] === '') {
      throw usageError(`the ${jwk.kty} key has no "${m}" member: not a usable JWK`, undefined, {
        code: 'bad_key',
      });
    }
    canonical[m] = jwk[m];
  }
  return createHash('sha256').update(JSON.stringify(canonical)).digest('base64url');
}

/** The public members only, in a stable order, with kid/alg/use. */
export function publicJwkOf(
  key: KeyObject,
  extra: { kid?: string; alg?: string; use?: string } = {},
): PublicJwk {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  const raw = pub.export({ format: 'jwk' }) as PublicJwk;
  const out: PublicJwk = { kty: raw.kty };
  if (extra.kid) out.kid = extra.kid;
  if (extra.alg) out.alg = extra.alg;
  out.use = extra.use ?? 'sig';
  if (raw.kty === 'RSA') {
    out.n = raw.n;
    out.e = raw.e;
  } else {
    out.crv = raw.crv;
    out.x = raw.x;
    out.y = raw.y;
  }
  return out;
}

export interface GeneratedKey {
  privateKeyPem: string;
  publicJwk: PublicJwk;
  kid: string;
  alg: SigningAlg;
  bits?: number;
}

export async function generateSigningKey(
  alg: SigningAlg,
  options: { bits?: number; kid?: string } = {},
): Promise<GeneratedKey> {
  let pair: { privateKey: KeyObject; publicKey: KeyObject };
  let bits: number | undefined;
  if (alg.startsWith('RS') || alg.startsWith('PS')) {
    bits = options.bits ?? 2048;
    if (!(RSA_BITS as readonly number[]).includes(bits)) {
      throw usageError(
        `--bits ${bits} is not allowed`,
        `RSA keys must be ${RSA_BITS.join(', ')} bits (SMART requires at least 2048)`,
        { code: 'bad_bits' },
      );
    }
    pair = await generateKeyPairAsync('rsa', { modulusLength: bits, publicExponent: 0x10001 });
  } else {
    if (options.bits !== undefined) {
      throw usageError(`--bits applies to RSA keys only; ${alg} uses the ${ALG_CURVE[alg]} curve`);
    }
    pair = await generateKeyPairAsync('ec', { namedCurve: NODE_CURVE[ALG_CURVE[alg]!]! });
  }
  const bare = publicJwkOf(pair.publicKey);
  const kid = options.kid ?? (await thumbprint(bare));
  const publicJwk = publicJwkOf(pair.publicKey, { kid, alg, use: 'sig' });
  const privateKeyPem = pair.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
  return { privateKeyPem, publicJwk, kid, alg, bits };
}

export interface ParsedKey {
  type: 'private' | 'public';
  key: KeyObject;
  /** The JWK the key came from, when it was one (its kid and alg are kept). */
  jwk?: PublicJwk;
  format: string;
}

/**
 * Read a key in any common form: PKCS#8 / PKCS#1 ("RSA PRIVATE KEY") / SEC1 ("EC PRIVATE KEY")
 * private PEM, SPKI or PKCS#1 public PEM, or a JWK (a JWKS holding exactly one key also works).
 */
export function parseKey(text: string, source: string): ParsedKey {
  const trimmed = text.trim();
  const fail = (why: string, cause?: unknown) =>
    usageError(`${source}: ${why}`, 'expected a PEM key (PKCS#8, PKCS#1, SEC1 or SPKI) or a JWK', {
      cause,
      code: 'bad_key',
    });
  if (trimmed.startsWith('{')) {
    let obj: Record<string, unknown>;
    try {
      obj = JSON.parse(trimmed) as Record<string, unknown>;
    } catch (e) {
      throw fail('not valid JSON', e);
    }
    if (Array.isArray(obj.keys)) {
      if (obj.keys.length !== 1)
        throw fail(`is a JWKS with ${obj.keys.length} keys; give a single JWK`);
      obj = obj.keys[0] as Record<string, unknown>;
    }
    if (typeof obj.kty !== 'string') throw fail('is JSON but not a JWK (no "kty")');
    const isPrivate = typeof obj.d === 'string';
    try {
      const key = isPrivate
        ? createPrivateKey({ key: obj as never, format: 'jwk' })
        : createPublicKey({ key: obj as never, format: 'jwk' });
      return { type: isPrivate ? 'private' : 'public', key, jwk: obj as PublicJwk, format: 'JWK' };
    } catch (e) {
      throw fail(`is not a usable JWK: ${(e as Error).message}`, e);
    }
  }
  const label = /-----BEGIN ([A-Z ]+)-----/.exec(trimmed)?.[1];
  if (!label) throw fail('no PEM header ("-----BEGIN ...-----") and not JSON');
  try {
    if (label.includes('PRIVATE KEY')) {
      if (label.includes('ENCRYPTED'))
        throw fail(
          'is an encrypted private key; decrypt it first (openssl pkcs8 -in key.pem -out plain.pem)',
        );
      return { type: 'private', key: createPrivateKey(trimmed), format: label };
    }
    if (label.includes('PUBLIC KEY') || label === 'CERTIFICATE') {
      return { type: 'public', key: createPublicKey(trimmed), format: label };
    }
  } catch (e) {
    if (e instanceof SmartError) throw e;
    throw fail(`malformed ${label}: ${(e as Error).message}`, e);
  }
  throw fail(`unsupported PEM block "${label}"`);
}

/** The JWKS next to a key file, if any, used to recover a custom kid given at keygen time. */
function siblingJwks(files: KeyFiles): Jwks | undefined {
  if (files.jwksText === undefined) return undefined;
  try {
    return parseJwks(files.jwksText, 'jwks.json');
  } catch {
    return undefined;
  }
}

/**
 * Load the private signing key. kid: the matching entry of a jwks.json beside the key (so a kid
 * chosen at keygen survives), else the JWK's own kid, else the RFC 7638 thumbprint.
 */
export async function loadSigningKey(
  path: string,
  options: { alg?: string } = {},
): Promise<SigningKey> {
  return signingKeyOf(await readKeyFiles(path), options);
}

/** The signing key in files already read (loadSigningKey), parsed and checked. */
export async function signingKeyOf(
  files: KeyFiles,
  options: { alg?: string } = {},
): Promise<SigningKey> {
  const path = files.path;
  const parsed = parseKey(files.text, path);
  if (parsed.type !== 'private') {
    throw usageError(
      `${path} holds a public key; signing needs the private key`,
      'point --key at the private key file (PKCS#8 PEM written by `smart keygen`)',
      { code: 'bad_key' },
    );
  }
  const bare = publicJwkOf(parsed.key);
  const tp = await thumbprint(bare);
  const bits = rsaBits(bare);
  if (bits !== undefined && bits < 2048) {
    throw usageError(
      `${path}: RSA key of ${bits} bits is too small`,
      'SMART requires RSA keys of at least 2048 bits; make a new one with `smart keygen`',
      { code: 'bad_key' },
    );
  }
  let kid: string | undefined;
  let jwkAlg: string | undefined;
  const jwks = siblingJwks(files);
  if (jwks) {
    for (const k of jwks.keys) {
      if ((await thumbprint(k).catch(() => '')) === tp) {
        kid = k.kid;
        jwkAlg = k.alg;
        break;
      }
    }
  }
  kid ??= parsed.jwk?.kid;
  jwkAlg ??= parsed.jwk?.alg;
  const alg = options.alg
    ? checkAlg(options.alg)
    : jwkAlg && isSigningAlg(jwkAlg)
      ? jwkAlg
      : defaultAlgFor(bare);
  const mismatch = algKeyMismatch(alg, bare);
  if (mismatch)
    throw usageError(
      `${path}: ${mismatch}`,
      'choose a matching --alg, or a key of the right type',
      { code: 'bad_alg' },
    );
  kid ??= tp;
  return {
    key: parsed.key,
    alg,
    kid,
    publicJwk: publicJwkOf(parsed.key, { kid, alg }),
    source: path,
  };
}

/** Parse and validate a JWK Set; private members are reported by `privateMembers`. */
export function parseJwks(text: string, source: string): Jwks {
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (e) {
    throw usageError(
      `${source} is not valid JSON: ${(e as Error).message}`,
      'a JWKS is a JSON object {"keys": [...]}',
      { cause: e, code: 'not_jwks' },
    );
  }
  if (!obj || typeof obj !== 'object' || !Array.isArray((obj as Jwks).keys)) {
    throw usageError(
      `${source} is not a JWKS (no "keys" array)`,
      'a JWKS is a JSON object {"keys": [...]}',
      { code: 'not_jwks' },
    );
  }
  const keys = (obj as Jwks).keys;
  keys.forEach((k, i) => {
    if (!k || typeof k !== 'object' || typeof k.kty !== 'string') {
      throw usageError(`${source}: keys[${i}] is not a JWK (no "kty")`, undefined, {
        code: 'not_jwks',
      });
    }
  });
  return { keys };
}

export async function readJwksFile(path: string): Promise<Jwks> {
  return parseJwks(await readTextFile(path, 'JWKS file'), path);
}

/** "keys[0] (kid abc): d, p, q" for every key with private members. */
export function privateMembers(jwks: Jwks): string[] {
  const found: string[] = [];
  jwks.keys.forEach((k, i) => {
    const members = PRIVATE_MEMBERS.filter((m) => m in k);
    if (members.length)
      found.push(`keys[${i}]${k.kid ? ` (kid ${k.kid})` : ''}: ${members.join(', ')}`);
  });
  return found;
}
