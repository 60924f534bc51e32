import { describe, expect, it } from 'vitest';
import { didYouMean, editDistance } from '../../../src/core/suggest.js';

describe('editDistance', () => {
  it('counts insertions, deletions and substitutions (Levenshtein)', () => {
    expect(editDistance('', '')).toBe(0);
    expect(editDistance('abc', 'abc')).toBe(0);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('abc', '')).toBe(3);
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('flaw', 'lawn')).toBe(2);
    expect(editDistance('scope', 'scopes')).toBe(1);
    expect(editDistance('scopes', 'scope')).toBe(1);
  });
});

describe('didYouMean', () => {
  const KEYS = ['baseUrl', 'fhirUrl', 'tokenUrl', 'clientId', 'key', 'scope', 'alg'];

  it('names the closest candidate for a typo, case-insensitive, in its own spelling', () => {
    expect(didYouMean('basUrl', KEYS)).toBe('baseUrl');
    expect(didYouMean('BASEURL', KEYS)).toBe('baseUrl');
    expect(didYouMean('clientid', KEYS)).toBe('clientId');
    expect(didYouMean('scopes', KEYS)).toBe('scope');
  });

  it('keeps the first of equally close candidates', () => {
    expect(didYouMean('fokenUrl', ['tokenUrl', 'fhirUrl'])).toBe('tokenUrl');
    expect(didYouMean('ab', ['ax', 'ay'])).toBe('ax');
  });

  it('says nothing when nothing is close: 40% of the word, at least one edit', () => {
    expect(didYouMean('colour', KEYS)).toBeUndefined();
    expect(didYouMean('x', [])).toBeUndefined();
    // One edit is always allowed, even for a short word.
    expect(didYouMean('ky', KEYS)).toBe('key');
    expect(didYouMean('kq', ['alg'])).toBeUndefined();
    // A word of 5 letters allows 2 edits; 3 are too many.
    expect(didYouMean('scxpx', ['scope'])).toBe('scope');
    expect(didYouMean('sxxpx', ['scope'])).toBeUndefined();
  });
});
