/**
 * Time, once: the clock every waiting part of the library uses (HTTP retries, the token
 * endpoint's retry, export polls and downloads), the one abortable sleep, the one Retry-After
 * parser and the one backoff. Tests inject a Clock whose sleep moves its own time.
 */

/** Now and a wait, injectable together. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Waits `ms`; ends early, rejecting with the signal's reason, when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** A wait that ends early, with the signal's reason, when the signal aborts (Ctrl-C). */
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

/** The wall clock and real waits. */
export const systemClock: Clock = { now: () => Date.now(), sleep };

/** A Retry-After above this is clamped to it (HTTP retries and the token endpoint alike). */
export const MAX_RETRY_AFTER_MS = 30_000;

/**
 * Retry-After as milliseconds: delta-seconds or an HTTP date; some servers send an absolute epoch
 * time instead (a number above 10^9 is a time, not a delay: seconds, or milliseconds above
 * 10^12). Undefined when absent or bad.
 */
export function parseRetryAfter(value: string | null | undefined, now: number): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) {
    const n = Number(v);
    if (n > 1e12) return Math.max(0, Math.round(n - now));
    if (n > 1e9) return Math.max(0, Math.round(n * 1000 - now));
    return Math.round(n * 1000);
  }
  const date = Date.parse(v);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

export interface BackoffOptions {
  /** The wait before the first retry, doubled for each further one. */
  baseMs: number;
  /** No wait is longer than this. Default 10 s. */
  capMs?: number;
  /** A number in [0, 1). Default Math.random. */
  random?: () => number;
  /**
   * "full": anywhere in [0, wait] (retries of one request, spread out); "half": in
   * [wait / 2, wait] (a broken download, which must not come back at once). Default "full".
   */
  jitter?: 'full' | 'half';
}

/** Exponential backoff with jitter: base * 2^attempt (attempt 0 is the first retry), capped. */
export function backoffDelay(attempt: number, o: BackoffOptions): number {
  const full = Math.min(o.capMs ?? 10_000, o.baseMs * 2 ** attempt);
  const r = (o.random ?? Math.random)();
  return Math.round(o.jitter === 'half' ? full / 2 + (r * full) / 2 : r * full);
}
