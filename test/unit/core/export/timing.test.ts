import { describe, expect, it } from 'vitest';
import { MAX_POLL_MS, MIN_POLL_MS, clamp, pollDelay } from '../../../../src/core/export/timing.js';

describe('pollDelay (Retry-After clamping)', () => {
  const now = Date.parse('2024-06-01T00:00:00Z');
  it('takes delta-seconds, clamped to [1 s, 60 s]', () => {
    expect(pollDelay('5', 0, now)).toBe(5000);
    expect(pollDelay('0', 0, now)).toBe(1000);
    expect(pollDelay('0.2', 0, now)).toBe(1000);
    expect(pollDelay('3600', 0, now)).toBe(60_000);
  });
  it('takes an HTTP date', () => {
    expect(pollDelay(new Date(now + 7000).toUTCString(), 0, now)).toBe(7000);
    expect(pollDelay(new Date(now - 7000).toUTCString(), 0, now)).toBe(1000);
  });
  it('backs off exponentially without (or with a bad) Retry-After', () => {
    expect([0, 1, 2, 3, 10].map((a) => pollDelay(undefined, a, now))).toEqual([
      1000, 2000, 4000, 8000, 60_000,
    ]);
    expect(pollDelay('soon', 2, now)).toBe(4000);
  });
  it('honours other bounds (tests use a small minimum)', () => {
    expect(pollDelay('0', 0, now, { minMs: 10, maxMs: 50 })).toBe(10);
    expect(pollDelay('1', 0, now, { minMs: 10, maxMs: 50 })).toBe(50);
  });
});

describe('pollDelay, more forms', () => {
  const now = Date.parse('2024-06-01T00:00:00Z');
  it('the default bounds are 1 s and 60 s', () => {
    expect([MIN_POLL_MS, MAX_POLL_MS]).toEqual([1_000, 60_000]);
  });
  it('takes an epoch time (seconds or milliseconds) some servers send instead of a delay', () => {
    expect(pollDelay(String((now + 9_000) / 1000), 0, now)).toBe(9_000);
    expect(pollDelay(String(now + 12_000), 0, now)).toBe(12_000);
    expect(pollDelay(String(now / 1000 - 100), 0, now)).toBe(1_000);
  });
  it('a server asking for a long wait, or many attempts, never waits past the maximum', () => {
    expect(pollDelay(new Date(now + 86_400_000).toUTCString(), 0, now)).toBe(60_000);
    expect(pollDelay(null, 1_000_000, now)).toBe(60_000);
    // The exponent stops growing: a large maximum still gets a number, not Infinity.
    expect(pollDelay(null, 1_000_000, now, { minMs: 1, maxMs: Number.MAX_VALUE })).toBe(2 ** 16);
    expect(pollDelay('', 3, now)).toBe(8_000);
    expect(pollDelay('  7  ', 3, now)).toBe(7_000);
  });
  it('clamp', () => {
    expect(clamp(5, 1, 10)).toBe(5);
    expect(clamp(-5, 1, 10)).toBe(1);
    expect(clamp(50, 1, 10)).toBe(10);
  });
});
