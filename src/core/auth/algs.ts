// The JWS algorithms a signing key can use: a module of its own, without node:crypto, for the
// modules on a cached token's path that only name them (discovery checks what a server
// advertises). keys.ts re-exports them.

export const SIGNING_ALGS = [
  'RS384',
  'ES384',
  'RS256',
  'ES256',
  'RS512',
  'ES512',
  'PS256',
  'PS384',
  'PS512',
] as const;
export type SigningAlg = (typeof SIGNING_ALGS)[number];

export function isSigningAlg(alg: string): alg is SigningAlg {
  return (SIGNING_ALGS as readonly string[]).includes(alg);
}
