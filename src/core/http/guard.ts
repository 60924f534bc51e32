import { SmartError } from '../errors.js';
import type { HttpRequest } from './types.js';

/** 127.0.0.0/8, ::1, 0.0.0.0, localhost and *.localhost: traffic that never leaves the machine. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return (
    h === 'localhost' ||
    h === '0.0.0.0' ||
    h.endsWith('.localhost') ||
    h === '::1' ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) ||
    /^::ffff:127\./.test(h)
  );
}

/**
 * SMART requires TLS: a token, an assertion or an admin password is never sent over plain http
 * to another machine unless the user says so (--insecure), e.g. on a private docker network.
 */
export function refuseCleartextCredentials(url: string, init: HttpRequest): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return; // the request itself reports the bad URL
  }
  if (u.protocol !== 'http:' || isLoopbackHost(u.hostname)) return;
  const auth = lowerKeys(init.headers ?? {}).authorization;
  const body =
    typeof init.body === 'string' || init.body instanceof URLSearchParams ? String(init.body) : '';
  const what = auth
    ? /^basic /i.test(auth)
      ? 'admin credentials'
      : 'an access token'
    : /(^|&)client_assertion=/.test(body)
      ? 'a client assertion'
      : undefined;
  if (!what) return;
  throw new SmartError('usage', `refusing to send ${what} over plain http to ${u.host}`, {
    code: 'insecure_http',
    hint: 'use an https:// URL; on a trusted private network (e.g. a docker network) pass --insecure or set SMART_INSECURE=1',
  });
}

/** Header names in lower case. */
export function lowerKeys(h: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) out[k.toLowerCase()] = v;
  return out;
}
