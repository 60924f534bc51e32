import { describe, expect, it } from 'vitest';
import { pollDelay } from '../../../../src/core/export/timing.js';

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
