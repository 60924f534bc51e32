import { usageError } from '../errors.js';

/** What `smart query` was asked for, and search parameters: parsed, encoded, set. */

/** A search parameter as the user wrote it, decoded: `[name, value]`. */
export type SearchParam = [name: string, value: string];

/** What `smart query` was asked for: a search of `type`, or a read of `type/id`. */
export interface QueryTarget {
  type: string;
  id?: string;
  params: SearchParam[];
}

const TYPE = /^[A-Z][A-Za-z0-9]*$/;
// FHIR ids: 1-64 of [A-Za-z0-9-.]; underscore too, as some servers (Aidbox) allow it.
const ID = /^[A-Za-z0-9\-._]{1,64}$/;
// Names such as `code`, `_id`, `code:text`, `subject:Patient.name`, `_has:Observation:patient:code`,
// `value-quantity`.
const PARAM_NAME = /^[A-Za-z_$][A-Za-z0-9_.:$-]*$/;

/** Decode a percent-encoded query component; `+` stays a plus (FHIR dates carry `+hh:mm`). */
function decodeComponent(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function parseParam(raw: string, where: string): SearchParam {
  const eq = raw.indexOf('=');
  if (eq < 0) {
    throw usageError(
      `search parameter "${raw}" has no "=": parameters are name=value`,
      `e.g. smart query Observation code=4548-4 (${where})`,
      { code: 'bad_param' },
    );
  }
  const name = raw.slice(0, eq);
  const value = raw.slice(eq + 1);
  if (!PARAM_NAME.test(name)) {
    throw usageError(
      name === ''
        ? `search parameter "${raw}" has an empty name`
        : `"${name}" is not a valid search parameter name (in "${raw}")`,
      'names are letters, digits, _ - . $ and :modifiers, e.g. code:text=glucose',
      { code: 'bad_param' },
    );
  }
  return [name, value];
}

/**
 * `name=value` arguments to decoded parameter pairs, in order. The value is everything after the
 * first `=` (it may hold `=`, commas, `|`); repeated names stay repeated (FHIR ANDs them).
 */
export function toSearchParams(params: string[]): SearchParam[] {
  return params.map((p) => parseParam(p, 'arguments'));
}

/** A query string `a=b&c=d` (as in a URL) to decoded pairs. */
export function parseQueryString(query: string): SearchParam[] {
  return query
    .split('&')
    .filter((part) => part !== '')
    .map((part) => {
      const [name, value] = parseParam(part, 'query string');
      return [decodeComponent(name), decodeComponent(value)];
    });
}

// Kept literal: `,` (FHIR's OR separator), `|` (system|code), `:` (modifiers), `$`.
// Everything else outside the unreserved set is percent-encoded, `+` included.
function encodeComponent(s: string): string {
  return encodeURIComponent(s)
    .replace(/%2C/gi, ',')
    .replace(/%7C/gi, '|')
    .replace(/%3A/gi, ':')
    .replace(/%24/g, '$');
}

/** Pairs to a query string; spaces are %20 and `+` is %2B, so dates with offsets survive. */
export function encodeSearchParams(params: SearchParam[]): string {
  return params.map(([n, v]) => `${encodeComponent(n)}=${encodeComponent(v)}`).join('&');
}

/**
 * The `smart query` target: `Type`, `Type/id` or `Type?a=b&c=d`, plus `name=value` arguments.
 */
export function parseQueryTarget(target: string, params: string[] = []): QueryTarget {
  const q = target.indexOf('?');
  const path = (q < 0 ? target : target.slice(0, q)).replace(/^\/+|\/+$/g, '');
  const fromQuery = q < 0 ? [] : parseQueryString(target.slice(q + 1));
  const parts = path.split('/');
  const type = parts[0] ?? '';
  if (!TYPE.test(type) || parts.length > 2) {
    throw usageError(
      `"${target}" is not a resource type, Type/id or "Type?params"`,
      'e.g. smart query Patient, smart query Patient/123, smart query "Observation?code=4548-4"; use `smart api` for other paths',
      { code: 'bad_target' },
    );
  }
  const id = parts[1];
  if (id !== undefined && !ID.test(id)) {
    throw usageError(
      `"${id}" is not a valid FHIR id (in "${target}")`,
      'ids are 1-64 letters, digits, "-" and "."',
      { code: 'bad_target' },
    );
  }
  return { type, id, params: [...fromQuery, ...toSearchParams(params)] };
}

/** Replace every `name` parameter by one with this value (or add it). */
export function withParam(params: SearchParam[], name: string, value: string): SearchParam[] {
  return [...params.filter(([n]) => n !== name), [name, value]];
}

export function searchPath(type: string, params: SearchParam[]): string {
  const q = encodeSearchParams(params);
  return q ? `${type}?${q}` : type;
}
