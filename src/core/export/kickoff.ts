import { SmartError } from '../errors.js';
import { parseRetryAfter } from '../clock.js';
import { describeErrorBody } from '../http/index.js';
import { redactUrl } from '../redact.js';
import type { ExportLevel, ExportParams, ExportSession } from './types.js';

/** FHIR instant: a date-time with seconds and a time zone (https://hl7.org/fhir/R4/datatypes.html#instant). */
const INSTANT =
  /^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]{1,9})?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))$/;

export function isFhirInstant(value: string): boolean {
  if (!INSTANT.test(value)) return false;
  return !Number.isNaN(Date.parse(value));
}

/** The kick-off path relative to the FHIR base. */
export function kickoffPath(level: ExportLevel): string {
  switch (level.kind) {
    case 'system':
      return '$export';
    case 'patient':
      return 'Patient/$export';
    case 'group':
      return `Group/${encodeURIComponent(level.id)}/$export`;
  }
}

export interface KickoffRequest {
  /** Relative to the FHIR base, with the query for GET. */
  path: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string;
}

/**
 * The kick-off request. GET puts the parameters in the query (`_type` comma-joined, one
 * `_typeFilter` per query); POST sends a FHIR Parameters body with one entry per value, the
 * form the next Bulk Data version keeps. Both send Accept and Prefer, required in STU1.
 */
export function buildKickoff(params: ExportParams): KickoffRequest {
  const headers: Record<string, string> = {
    accept: 'application/fhir+json',
    prefer: 'respond-async',
  };
  const path = kickoffPath(params.level);
  if (params.method === 'POST') {
    const parameter: Array<Record<string, string>> = [];
    if (params.outputFormat)
      parameter.push({ name: '_outputFormat', valueString: params.outputFormat });
    if (params.since) parameter.push({ name: '_since', valueInstant: params.since });
    for (const t of params.types ?? []) parameter.push({ name: '_type', valueString: t });
    for (const f of params.typeFilters ?? [])
      parameter.push({ name: '_typeFilter', valueString: f });
    return {
      path,
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/fhir+json' },
      body: JSON.stringify({ resourceType: 'Parameters', parameter }),
    };
  }
  const q = new URLSearchParams();
  if (params.outputFormat) q.append('_outputFormat', params.outputFormat);
  if (params.since) q.append('_since', params.since);
  if (params.types?.length) q.append('_type', params.types.join(','));
  for (const f of params.typeFilters ?? []) q.append('_typeFilter', f);
  const qs = q.toString();
  return { path: qs ? `${path}?${qs}` : path, method: 'GET', headers };
}

/**
 * Send the kick-off; returns the absolute status URL (Content-Location, resolved against the
 * kick-off URL when relative). Never retried: a repeated kick-off may start a second job.
 */
/** The longest one 429 at kick-off makes us wait, whatever Retry-After says. */
export const MAX_KICKOFF_WAIT_MS = 5 * 60_000;
/** The wait after a 429 without a usable Retry-After. */
const DEFAULT_KICKOFF_WAIT_MS = 5_000;

export interface KickoffWait {
  /** Epoch ms after which no more waiting is allowed (--wait). */
  deadline: number;
  now: () => number;
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Called before each wait with the server's text and the delay. */
  onWait?: (w: { status: number; reason: string; delayMs: number }) => void;
}

export async function kickOff(
  session: ExportSession,
  params: ExportParams,
  signal?: AbortSignal,
  wait?: KickoffWait,
): Promise<{ statusUrl: string; url: string }> {
  const req = buildKickoff(params);
  const url = session.resolve(req.path);
  let res;
  for (;;) {
    res = await session.request(url, {
      method: req.method,
      headers: req.headers,
      body: req.body,
      retry: false,
      signal,
    });
    if (res.status !== 429 || !wait) break;
    // 429 at kick-off: too many requests, or an export already running. Wait as told (capped),
    // within --wait; the server's own words go with the wait.
    const told = parseRetryAfter(res.headers.get('retry-after'), wait.now());
    const delayMs = Math.min(told ?? DEFAULT_KICKOFF_WAIT_MS, MAX_KICKOFF_WAIT_MS);
    if (wait.now() + delayMs > wait.deadline) break;
    const said = describeErrorBody(res);
    wait.onWait?.({ status: 429, reason: said, delayMs });
    await wait.sleep(delayMs, signal);
  }
  if (res.status === 202) {
    const location = res.headers.get('content-location');
    if (!location) {
      throw new SmartError(
        'http',
        `${req.method} ${redactUrl(url)} answered 202 without a Content-Location header`,
        {
          status: 202,
          code: 'no_content_location',
          hint: 'the server accepted the export but did not say where to poll for it; this is a server bug',
        },
      );
    }
    // The status URL gets the token: it must be on the FHIR server's origin (throws if not); one
    // under the server's own name (serverUrl) moves to the origin we reach.
    const statusUrl = session.resolve(new URL(location, url).toString());
    return { statusUrl, url };
  }
  if (res.status === 429) {
    const err = session.error(res, req.method);
    throw new SmartError(
      'http',
      `${req.method} ${redactUrl(url)} answered 429${wait ? ' (and --wait does not allow another wait)' : ''}: ${describeErrorBody(res)}`,
      {
        status: 429,
        code: 'export_busy',
        cause: err,
        details: err.details,
        hint: 'wait for the running export to finish, or cancel it with `smart export cancel <dir>`; then try again',
      },
    );
  }
  if (res.ok) {
    throw new SmartError(
      'http',
      `${req.method} ${redactUrl(url)} answered ${res.status} instead of 202 Accepted`,
      {
        status: res.status,
        code: 'not_async',
        hint: 'the server did not start an asynchronous export: check the FHIR base URL and that it supports Bulk Data $export',
      },
    );
  }
  throw session.error(res, req.method);
}
