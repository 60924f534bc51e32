import { describe, expect, test } from 'vitest';
import { SIGNING_ALGS, isSigningAlg } from '../../../../src/core/auth/algs.js';
import * as keys from '../../../../src/core/auth/keys.js';

describe('signing algs', () => {
  test('the JWS algorithms of an RSA or EC key, and nothing else', () => {
    for (const alg of SIGNING_ALGS) expect(isSigningAlg(alg)).toBe(true);
    for (const alg of ['HS256', 'none', 'rs384', 'EdDSA', ''])
      expect(isSigningAlg(alg)).toBe(false);
  });

  test('keys.ts gives the same list and test (its importers keep working)', () => {
    expect(keys.SIGNING_ALGS).toBe(SIGNING_ALGS);
    expect(keys.isSigningAlg).toBe(isSigningAlg);
  });
});
