import type { FaultAction, FaultRule } from './types.js';

/**
 * The compact form of a fault for `--fault <spec>`:
 *
 *   <action>:<path>[:<positions>][:<key>=<value>...]
 *
 * - action: `429`, `500`, `503`, `drop` (cut the body in the middle), `delay` or `throttle`
 *   (send the body slowly)
 * - path: a pathname (matches itself and everything below it, `*` = any characters), or
 *   `~<regexp>` tested against the pathname
 * - positions: 1-based numbers of the matching requests to hit, e.g. `2,3`; default every one
 * - options: `retry-after=<seconds or HTTP-date>` (429/500/503), `ms=<n>` (delay, required),
 *   `rate=<bytes per second>` (throttle, required), `method=<GET|POST|...>`, `times=<n>` (the
 *   first n matching requests)
 *
 * Examples: `429:/fhir/$export-status:2,3:retry-after=1`, `503:/auth/token:1`,
 * `drop:/fhir/$export-file:1`, `delay:/fhir/Observation:ms=2000`,
 * `throttle:/fhir/$export-file:rate=65536`.
 */
export function parseFaultSpec(spec: string): FaultRule {
  const parts = spec.split(':');
  const [kind, path, ...rest] = parts;
  if (!kind || !path) {
    throw new Error(`fault '${spec}': expected <action>:<path>[:<positions>][:key=value...]`);
  }
  const options: Record<string, string> = {};
  let nth: number[] | undefined;
  for (const part of rest) {
    if (part === '' || part === '*') continue;
    if (/^\d+(,\d+)*$/.test(part)) {
      nth = part.split(',').map(Number);
      if (nth.some((n) => n < 1)) throw new Error(`fault '${spec}': positions start at 1`);
      continue;
    }
    const eq = part.indexOf('=');
    if (eq <= 0) throw new Error(`fault '${spec}': cannot read '${part}'`);
    options[part.slice(0, eq).toLowerCase()] = part.slice(eq + 1);
  }
  let action: FaultAction;
  if (kind === '429' || kind === '500' || kind === '503') {
    action = { status: Number(kind) as 429 | 500 | 503 };
    if (options['retry-after'] !== undefined) action.retryAfter = options['retry-after'];
  } else if (kind === 'drop') {
    action = { drop: 'mid-body' };
  } else if (kind === 'delay') {
    const ms = Number(options.ms);
    if (!options.ms || !Number.isInteger(ms) || ms < 0) {
      throw new Error(`fault '${spec}': delay needs ms=<milliseconds>`);
    }
    action = { delayMs: ms };
  } else if (kind === 'throttle') {
    const rate = Number(options.rate);
    if (!options.rate || !Number.isInteger(rate) || rate < 1) {
      throw new Error(`fault '${spec}': throttle needs rate=<bytes per second>, at least 1`);
    }
    action = { throttleBytesPerSec: rate };
  } else {
    throw new Error(
      `fault '${spec}': unknown action '${kind}' (use 429, 500, 503, drop, delay or throttle)`,
    );
  }
  for (const key of Object.keys(options)) {
    if (!['retry-after', 'ms', 'rate', 'method', 'times'].includes(key)) {
      throw new Error(`fault '${spec}': unknown option '${key}'`);
    }
  }
  let pathMatcher: string | RegExp = path;
  if (path.startsWith('~')) {
    try {
      pathMatcher = new RegExp(path.slice(1));
    } catch {
      throw new Error(`fault '${spec}': invalid regular expression '${path.slice(1)}'`);
    }
  } else if (!path.startsWith('/')) {
    throw new Error(`fault '${spec}': the path must start with '/' (or '~' for a regexp)`);
  }
  const rule: FaultRule = { path: pathMatcher, action };
  if (options.method) rule.method = options.method.toUpperCase();
  if (nth) rule.nth = nth;
  if (options.times !== undefined) {
    const times = Number(options.times);
    if (!Number.isInteger(times) || times < 1) {
      throw new Error(`fault '${spec}': times must be a positive integer`);
    }
    rule.times = times;
  }
  return rule;
}

function pathRegExp(path: string | RegExp): RegExp {
  if (path instanceof RegExp) return path;
  const body = path
    .replace(/\/+$/, '')
    .split('*')
    .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${body}(?:/.*)?$`);
}

/** A rule plus the count of requests it has matched so far. */
class ActiveFault {
  private seen = 0;
  private readonly re: RegExp;
  constructor(readonly rule: FaultRule) {
    this.re = pathRegExp(rule.path);
  }
  /** Counts the request when it matches; true when the action applies to it. */
  hit(method: string, pathname: string): boolean {
    if (this.rule.method && this.rule.method.toUpperCase() !== method.toUpperCase()) return false;
    this.re.lastIndex = 0;
    if (!this.re.test(pathname)) return false;
    this.seen += 1;
    if (this.rule.nth) return this.rule.nth.includes(this.seen);
    if (this.rule.times !== undefined) return this.seen <= this.rule.times;
    return true;
  }
}

export class FaultSet {
  private readonly faults: ActiveFault[] = [];
  constructor(rules: FaultRule[] = []) {
    for (const r of rules) this.add(r);
  }
  add(rule: FaultRule): void {
    validateRule(rule);
    this.faults.push(new ActiveFault(rule));
  }
  /** Every rule sees every request (so that positions count per rule); all that apply are returned. */
  match(method: string, pathname: string): FaultAction[] {
    const out: FaultAction[] = [];
    for (const f of this.faults) if (f.hit(method, pathname)) out.push(f.rule.action);
    return out;
  }
}

function validateRule(rule: FaultRule): void {
  const a = rule.action as Partial<{
    status: number;
    drop: string;
    delayMs: number;
    throttleBytesPerSec: number;
  }>;
  const ok =
    (a.status !== undefined && [429, 500, 503].includes(a.status)) ||
    a.drop === 'mid-body' ||
    (typeof a.delayMs === 'number' && a.delayMs >= 0) ||
    (typeof a.throttleBytesPerSec === 'number' &&
      Number.isFinite(a.throttleBytesPerSec) &&
      a.throttleBytesPerSec > 0);
  if (!ok) throw new Error(`invalid fault action ${JSON.stringify(rule.action)}`);
  if (typeof rule.path !== 'string' && !(rule.path instanceof RegExp)) {
    throw new Error('a fault needs a path (string or RegExp)');
  }
}

/** A short label for logs: `429`, `drop`, `delay`, `throttle`. */
export function faultLabel(action: FaultAction): string {
  if ('status' in action) return String(action.status);
  if ('drop' in action) return 'drop';
  if ('throttleBytesPerSec' in action) return 'throttle';
  return 'delay';
}
