import { parseRetryAfter } from '../http.js';

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

/** Backoff for a broken download: base * 2^attempt with jitter in [50%, 100%], capped. */
export function downloadBackoff(
  attempt: number,
  baseMs: number,
  random: () => number,
  capMs = 10_000,
): number {
  const full = Math.min(capMs, baseMs * 2 ** attempt);
  return Math.round(full / 2 + (random() * full) / 2);
}

/** A sleep that ends early, with the signal's reason, when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** "1.5 s", "2 min 3 s": for messages. */
export function formatSeconds(ms: number): string {
  if (ms < 60_000) return `${Math.round(ms / 100) / 10} s`;
  const m = Math.floor(ms / 60_000);
  const s = Math.round((ms % 60_000) / 1000);
  return s ? `${m} min ${s} s` : `${m} min`;
}
