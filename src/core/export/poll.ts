import { SmartError, isSmartError } from '../errors.js';
import { describeErrorBody, type HttpResponse } from '../http/index.js';
import { redactUrl } from '../redact.js';
import { sleep as defaultSleep } from '../clock.js';
import { formatDuration } from '../duration.js';
import { pollDelay, type PollBounds } from './timing.js';
import type { ExportEvent, ExportSession, Manifest } from './types.js';

/**
 * FHIR issue types under `transient` (https://hl7.org/fhir/R4/valueset-issue-type.html): a
 * status request failing with one of these is retried, anything else ends the export.
 */
export const TRANSIENT_CODES = new Set([
  'transient',
  'lock-error',
  'no-store',
  'exception',
  'timeout',
  'incomplete',
  'throttled',
]);

/** Consecutive network failures (resets, timeouts) tolerated while polling. */
const MAX_TRANSIENT_FAILURES = 8;

export interface PollOptions {
  session: ExportSession;
  statusUrl: string;
  /** Give up when the job is not complete this long after polling started. */
  waitMs: number;
  signal?: AbortSignal;
  now: () => number;
  onEvent: (e: ExportEvent) => void;
  bounds?: PollBounds;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** For the hint of a timeout. */
  outDir?: string;
}

export type PollResult =
  /** `text` is the body as the server sent it. */
  | { state: 'complete'; manifest: Manifest; text: string }
  | { state: 'gone'; response: HttpResponse };

function outcomeCodes(res: HttpResponse): string[] {
  try {
    const body = JSON.parse(res.text) as {
      resourceType?: string;
      issue?: Array<{ code?: string }>;
    };
    if (body?.resourceType !== 'OperationOutcome' || !Array.isArray(body.issue)) return [];
    return body.issue.map((i) => String(i.code ?? ''));
  } catch {
    return [];
  }
}

/**
 * A failure worth waiting through for as long as --wait allows: 503, or a 5xx OperationOutcome
 * with a transient issue code. (429 is handled apart: the server asks us to slow down.)
 */
export function isTransientFailure(res: HttpResponse): boolean {
  if (res.status < 500) return false;
  if (res.status === 503) return true;
  return outcomeCodes(res).some((c) => TRANSIENT_CODES.has(c));
}

/** Other 4xx/5xx answers of the status URL: retried this many times in a row, then final. */
export const MAX_STATUS_RETRIES = 5;
/** The longest wait between two of those retries. */
export const STATUS_RETRY_CAP_MS = 10_000;

/** Check a complete-status body and fill the defaults a lenient reader expects. */
export function parseManifest(body: unknown, url: string): Manifest {
  const where = redactUrl(url);
  const bad = (what: string) =>
    new SmartError('http', `the export manifest from ${where} is not valid: ${what}`, {
      code: 'bad_manifest',
      hint: 'the server answered 200 but not with a Bulk Data manifest; check the server',
    });
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw bad('expected a JSON object');
  const m = body as Partial<Manifest>;
  if (!Array.isArray(m.output)) throw bad('"output" is missing or not a list');
  for (const key of ['output', 'error', 'deleted'] as const) {
    const list = m[key];
    if (list === undefined) continue;
    if (!Array.isArray(list)) throw bad(`"${key}" is not a list`);
    list.forEach((e, i) => {
      if (!e || typeof e.url !== 'string') throw bad(`${key}[${i}].url is missing`);
      // Absolute per the spec; a relative one (seen with `request` on Aidbox) is read against
      // the status URL rather than rejected.
      try {
        e.url = new URL(e.url, /^https?:\/\//.test(url) ? url : undefined).toString();
      } catch {
        throw bad(`${key}[${i}].url "${e.url}" is not a URL`);
      }
    });
  }
  return {
    ...m,
    transactionTime: typeof m.transactionTime === 'string' ? m.transactionTime : '',
    request: typeof m.request === 'string' ? m.request : '',
    requiresAccessToken: m.requiresAccessToken === true,
    output: m.output,
    error: Array.isArray(m.error) ? m.error : [],
    ...(Array.isArray(m.deleted) ? { deleted: m.deleted } : {}),
  } as Manifest;
}

/**
 * Poll the status URL until the manifest arrives. Waits are ours alone (the HTTP client's
 * retries are off for these requests, so delays never multiply): Retry-After clamped to
 * [1 s, 60 s] or exponential backoff. 429, 503 and transient OperationOutcomes = wait (within
 * --wait); network resets = retry a few times; 404/410 = the job is gone (the caller decides);
 * 401/403 end it; any other 4xx/5xx is retried 5 times in a row (waits capped at 10 s), then
 * ends it.
 */
export async function pollUntilComplete(o: PollOptions): Promise<PollResult> {
  const sleep = o.sleep ?? defaultSleep;
  const start = o.now();
  const deadline = start + o.waitMs;
  let polls = 0;
  let failures = 0;
  let backoffs = 0;
  /** Non-transient 4xx/5xx answers in a row. */
  let errors = 0;
  const wait = async (delay: number, reason: string, status?: number) => {
    const left = deadline - o.now();
    if (delay > left) throw timeoutError(o, start, reason);
    o.onEvent({ event: 'wait', status, reason, delayMs: delay, elapsedMs: o.now() - start });
    await sleep(delay, o.signal);
  };
  for (;;) {
    let res: HttpResponse;
    try {
      res = await o.session.request(o.statusUrl, {
        headers: { accept: 'application/json' },
        retry: false,
        signal: o.signal,
      });
    } catch (e) {
      if (o.signal?.aborted) throw o.signal.reason ?? e;
      if (isSmartError(e) && e.kind === 'network' && failures < MAX_TRANSIENT_FAILURES) {
        failures++;
        await wait(pollDelay(null, backoffs++, o.now(), o.bounds), e.message);
        continue;
      }
      throw e;
    }
    if (res.status === 200) {
      let body: unknown;
      try {
        body = res.json();
      } catch (e) {
        throw isSmartError(e)
          ? new SmartError('http', `the export manifest: ${e.message}`, {
              cause: e,
              code: 'bad_manifest',
              hint: e.hint,
            })
          : e;
      }
      return { state: 'complete', manifest: parseManifest(body, o.statusUrl), text: res.text };
    }
    const retryAfter = res.headers.get('retry-after');
    if (res.status === 202) {
      failures = 0;
      errors = 0;
      const delay = pollDelay(retryAfter, polls++, o.now(), o.bounds);
      const progress = res.headers.get('x-progress')?.slice(0, 200) || undefined;
      if (o.now() + delay > deadline) throw timeoutError(o, start, progress);
      o.onEvent({ event: 'status', progress, elapsedMs: o.now() - start, nextPollMs: delay });
      await sleep(delay, o.signal);
      continue;
    }
    if (res.status === 429) {
      await wait(
        pollDelay(retryAfter, backoffs++, o.now(), o.bounds),
        `the server asked to slow down (429): ${describeErrorBody(res)}`,
        429,
      );
      continue;
    }
    if (isTransientFailure(res)) {
      // 503 or a transient OperationOutcome: keep waiting, within --wait.
      await wait(
        pollDelay(retryAfter, backoffs++, o.now(), o.bounds),
        `transient server error ${res.status}: ${describeErrorBody(res)}`,
        res.status,
      );
      continue;
    }
    if (res.status === 404 || res.status === 410) return { state: 'gone', response: res };
    if (res.status === 401 || res.status === 403) throw failed(o, res);
    if (errors < MAX_STATUS_RETRIES) {
      // Perhaps a hiccup of the server: a few more tries, not an hour of them.
      const bounds = {
        ...o.bounds,
        maxMs: Math.min(o.bounds?.maxMs ?? STATUS_RETRY_CAP_MS, STATUS_RETRY_CAP_MS),
      };
      await wait(
        pollDelay(retryAfter, errors++, o.now(), bounds),
        `server error ${res.status} (try ${errors} of ${MAX_STATUS_RETRIES}): ${describeErrorBody(res)}`,
        res.status,
      );
      continue;
    }
    const dir = o.outDir ? quoteArg(o.outDir) : '<dir>';
    throw new SmartError(
      res.status >= 500 || outcomeCodes(res).length ? 'fhir' : 'http',
      `the export's status URL ${redactUrl(o.statusUrl)} answered ${res.status} ${errors + 1} times in a row: ${describeErrorBody(res)}`,
      {
        status: res.status,
        code: 'export_status_failed',
        hint: `the job may still run on the server (its state is kept): try again later with \`smart export --resume ${dir}\`, or stop it with \`smart export cancel ${dir}\``,
      },
    );
  }
}

/** The server refused the status request itself (401/403): worded by the session. */
function failed(o: PollOptions, res: HttpResponse): SmartError {
  const err = o.session.error(res, 'GET');
  return new SmartError(err.kind, `the export failed: ${err.message}`, {
    cause: err,
    status: err.status,
    code: err.code ?? 'export_failed',
    details: err.details,
    hint: err.hint ?? 'the server refused the status request',
  });
}

function timeoutError(o: PollOptions, start: number, last?: string): SmartError {
  const dir = o.outDir ? quoteArg(o.outDir) : '<dir>';
  return new SmartError(
    'network',
    `the export is not complete after ${formatDuration(o.now() - start, 'words')} (limit ${Math.round(o.waitMs / 1000)} s)${last ? `; last status: ${last}` : ''}`,
    {
      code: 'export_timeout',
      hint: `the job keeps running on the server: pick it up later with \`smart export --resume ${dir}\`, give more time with --wait, or stop it with \`smart export cancel ${dir}\``,
    },
  );
}

/** A path as a shell argument: quoted only when it needs to be. */
export function quoteArg(s: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
