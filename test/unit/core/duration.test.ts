import { describe, expect, test } from 'vitest';
import { formatDuration } from '../../../src/core/duration.js';

describe('formatDuration: milliseconds in, one of three styles out', () => {
  test.each([
    [0, '0s'],
    [400, '0s'],
    [59_000, '59s'],
    [60_000, '1m'],
    [180_000, '3m'],
    [252_000, '4m12s'],
    [-252_000, '4m12s'],
    [3_600_000, '1h'],
    [3_725_000, '1h2m'],
    [3_605_000, '1h'],
    [90_061_000, '1d1h'],
  ])('units: %s ms -> %s', (ms, text) => expect(formatDuration(ms, 'units')).toBe(text));

  test.each([
    [0, '0.0 s'],
    [1_500, '1.5 s'],
    [9_960, '10.0 s'],
    [12_400, '12 s'],
    [59_999, '59 s'],
    [123_000, '2m03s'],
    [3_720_000, '1h02m'],
  ])('clock: %s ms -> %s', (ms, text) => expect(formatDuration(ms, 'clock')).toBe(text));

  test.each([
    [0, '0 s'],
    [1_540, '1.5 s'],
    [42_000, '42 s'],
    [120_000, '2 min'],
    [123_400, '2 min 3 s'],
  ])('words: %s ms -> %s', (ms, text) => expect(formatDuration(ms, 'words')).toBe(text));
});
