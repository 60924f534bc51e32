import { describe, expect, it } from 'vitest';
import {
  backoffDelay,
  MAX_RETRY_AFTER_MS,
  parseRetryAfter,
  sleep,
  systemClock,
} from '../../../src/core/clock.js';

describe('sleep', () => {
  it('waits about the time asked', async () => {
    const t0 = performance.now();
    await sleep(30);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(25);
  });

  it('ends at once with the reason when the signal aborts, before or during the wait', async () => {
    const before = new AbortController();
    before.abort(new Error('gone before'));
    await expect(sleep(60_000, before.signal)).rejects.toThrow('gone before');
    const during = new AbortController();
    const t0 = performance.now();
    const waiting = sleep(60_000, during.signal);
    setTimeout(() => during.abort(new Error('Ctrl-C')), 10);
    await expect(waiting).rejects.toThrow('Ctrl-C');
    expect(performance.now() - t0).toBeLessThan(5_000);
  });

  it('the system clock is the wall clock and this sleep', () => {
    expect(Math.abs(systemClock.now() - Date.now())).toBeLessThan(1000);
    expect(systemClock.sleep).toBe(sleep);
  });
});

describe('parseRetryAfter', () => {
  it('delta-seconds, an HTTP date, nothing or junk', () => {
    expect(parseRetryAfter('7', 0)).toBe(7000);
    expect(parseRetryAfter(' 1.5 ', 0)).toBe(1500);
    expect(parseRetryAfter('Thu, 01 Jan 1970 00:00:10 GMT', 4000)).toBe(6000);
    expect(parseRetryAfter('Thu, 01 Jan 1970 00:00:10 GMT', 20_000)).toBe(0);
    expect(parseRetryAfter('soon', 0)).toBeUndefined();
    expect(parseRetryAfter('', 0)).toBeUndefined();
    expect(parseRetryAfter(null, 0)).toBeUndefined();
    expect(parseRetryAfter(undefined, 0)).toBeUndefined();
  });

  it('above 10^9 a number is an epoch time, not a delay: seconds, or milliseconds above 10^12', () => {
    const now = 1_900_000_000_000;
    expect(parseRetryAfter('1900000003', now)).toBe(3000);
    expect(parseRetryAfter('1900000002500', now)).toBe(2500);
    expect(parseRetryAfter('1899999999', now)).toBe(0);
    expect(parseRetryAfter('999999999', now)).toBe(999_999_999_000);
  });

  it('the cap every caller clamps to is 30 s', () => {
    expect(MAX_RETRY_AFTER_MS).toBe(30_000);
  });
});

describe('backoffDelay', () => {
  it('doubles from the base for each retry, capped (10 s by default)', () => {
    const top = () => 1;
    expect([0, 1, 2, 3].map((n) => backoffDelay(n, { baseMs: 500, random: top }))).toEqual([
      500, 1000, 2000, 4000,
    ]);
    expect(backoffDelay(10, { baseMs: 500, random: top })).toBe(10_000);
    expect(backoffDelay(10, { baseMs: 500, random: top, capMs: 3000 })).toBe(3000);
  });

  it('full jitter spreads over [0, wait]; half jitter over [wait / 2, wait]', () => {
    expect(backoffDelay(2, { baseMs: 500, random: () => 0 })).toBe(0);
    expect(backoffDelay(2, { baseMs: 500, random: () => 0.5 })).toBe(1000);
    expect(backoffDelay(2, { baseMs: 500, random: () => 0, jitter: 'half' })).toBe(1000);
    expect(backoffDelay(2, { baseMs: 500, random: () => 0.5, jitter: 'half' })).toBe(1500);
    expect(backoffDelay(2, { baseMs: 500, random: () => 1, jitter: 'half' })).toBe(2000);
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(3, { baseMs: 100 });
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(800);
    }
  });
});
