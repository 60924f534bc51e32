import { SmartError } from './errors.js';
import type { Settings } from './settings.js';

/**
 * A server that calls itself by another name than the one we reach it at: Aidbox builds its
 * discovery document, the assertion audience it accepts, its Bundle links and its export
 * Content-Location from BOX_WEB_BASE_URL (in Docker often `http://aidbox:8080`), while the
 * operator reaches it as `http://localhost:8080`. With `serverUrl` set, URLs the server gives on
 * its own origin are rewritten to the base URL's origin before any request, and the assertion's
 * aud names the token endpoint under the server's own name. No request ever goes to the server's
 * own name, so a token only goes to origins the user named.
 */
export interface ServerAlias {
  /** The origin the server uses for itself (serverUrl). */
  own: string;
  /** The origin we reach it at (the base URL's). */
  reached: string;
}

/** The alias from the settings: undefined without serverUrl, or when it is the base URL's origin. */
export function serverAlias(
  settings: Pick<Settings, 'serverUrl' | 'baseUrl' | 'fhirUrl'>,
): ServerAlias | undefined {
  const base = settings.baseUrl ?? settings.fhirUrl;
  if (!settings.serverUrl || !base) return undefined;
  const own = new URL(settings.serverUrl).origin;
  const reached = new URL(base).origin;
  return own === reached ? undefined : { own, reached };
}

function swapOrigin(url: string, from: string, to: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return url;
  }
  if (u.origin !== from) return url;
  return `${to}${u.pathname}${u.search}${u.hash}`;
}

/** A URL the server gave under its own name, made reachable (its origin becomes the base URL's). */
export function reachable(url: string, alias: ServerAlias | undefined): string {
  return alias ? swapOrigin(url, alias.own, alias.reached) : url;
}

/** A URL we reach, under the server's own name (the assertion's aud). */
export function ownName(url: string, alias: ServerAlias | undefined): string {
  return alias ? swapOrigin(url, alias.reached, alias.own) : url;
}

/**
 * Whether another origin advertised by the server may be its own name for itself rather than a
 * separate auth server: a single-label host (a Docker service name such as `aidbox`) or the same
 * port as the URL we reach it at (`http://aidbox:8080` vs `http://localhost:8080`).
 */
export function mayBeOwnName(advertised: string, reachedAt: string): boolean {
  const a = new URL(advertised);
  const r = new URL(reachedAt);
  if (a.origin === r.origin) return false;
  const port = (u: URL) => u.port || (u.protocol === 'https:' ? '443' : '80');
  return (!a.hostname.includes('.') && !a.hostname.includes(':')) || port(a) === port(r);
}

/**
 * The advice when a server advertises its endpoints on another origin than the one we reach it
 * at, and that name does not resolve from here.
 */
export function serverUrlAdvice(advertised: string, reachedAt: string): string {
  const own = new URL(advertised).origin;
  const at = new URL(reachedAt).origin;
  return `the server calls itself ${own} (Aidbox's BOX_WEB_BASE_URL) but you reach it at ${at}: set \`smart config set serverUrl ${own}\` (or --server-url ${own}, SMART_SERVER_URL)`;
}

/**
 * A failure reaching an endpoint the server advertised on another origin than the one we reach
 * it at, that points at the server's own name: a name that does not resolve from here, or (the
 * first thing to fail) the refusal to send an assertion over plain http to another host.
 */
export function unreachableOwnName(
  e: unknown,
  advertised: string,
  reachedAt: string,
): SmartError | undefined {
  if (!(e instanceof SmartError)) return undefined;
  if (new URL(advertised).origin === new URL(reachedAt).origin) return undefined;
  const advice = serverUrlAdvice(advertised, reachedAt);
  if (e.kind === 'usage' && e.code === 'insecure_http') {
    return new SmartError(e.kind, e.message, {
      code: e.code,
      cause: e,
      hint: `${advice}; if it is another server on a trusted network, pass --insecure instead`,
    });
  }
  // Only a name that does not resolve from here: a separate auth server that is down is not this.
  if (e.kind !== 'network' || (e.code !== 'ENOTFOUND' && e.code !== 'EAI_AGAIN')) return undefined;
  return new SmartError('network', e.message, { code: e.code, cause: e, hint: advice });
}
