import { parseRetryAfter } from '../clock.js';

/** Bounds for a status poll's wait: a server saying "0" must not make us hammer it. */
export const MIN_POLL_MS = 1_000;
export const MAX_POLL_MS = 60_000;

export interface PollBounds {
  minMs?: number;
  maxMs?: number;
}

/**
 * The wait before the next status request: the server's Retry-After (delta-seconds or an HTTP
 * date) clamped to [min, max]; without one, exponential backoff from min (1 s, 2 s, 4 s...).
 */
export function pollDelay(
  retryAfter: string | null | undefined,
  attempt: number,
  now: number,
  bounds: PollBounds = {},
): number {
  const min = bounds.minMs ?? MIN_POLL_MS;
  const max = bounds.maxMs ?? MAX_POLL_MS;
  const after = parseRetryAfter(retryAfter, now);
  const raw = after ?? min * 2 ** Math.min(attempt, 16);
  return clamp(raw, min, max);
}

export function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}
