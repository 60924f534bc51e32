/**
 * SMART system scopes, v1 (`system/Observation.read`) and v2 (`system/Observation.rs`).
 * Each scope is reduced to a resource type (or `*`) and a set of permissions from c r u d s.
 */
export type Permission = 'c' | 'r' | 'u' | 'd' | 's';

export interface Scope {
  text: string;
  context: 'system' | 'patient' | 'user';
  type: string; // a resource type or '*'
  perms: Set<Permission>;
  /** As written after the dot: read, write, *, or a cruds subset. */
  suffix: string;
}

const V1: Record<string, Permission[]> = {
  read: ['r', 's'],
  write: ['c', 'u', 'd'],
  '*': ['c', 'r', 'u', 'd', 's'],
};

/** Parses one scope; returns an error text when it is not a valid SMART resource scope. */
export function parseScope(text: string): Scope | string {
  const m = /^(system|patient|user)\/([A-Za-z]+|\*)\.([A-Za-z*]+)(\?.*)?$/.exec(text);
  if (!m) {
    return `'${text}' is not a SMART resource scope (expected system/<Type|*>.<read|write|*|cruds>)`;
  }
  const [, context, type, suffix, query] = m;
  if (query) return `'${text}': scopes with search parameters are not supported by the sandbox`;
  let perms: Permission[];
  if (suffix! in V1) perms = V1[suffix!]!;
  else if (/^c?r?u?d?s?$/.test(suffix!) && suffix!.length > 0) {
    perms = suffix!.split('') as Permission[];
  } else {
    return `'${text}': '${suffix}' is neither read, write, * nor a subset of cruds in that order`;
  }
  return {
    text,
    context: context as Scope['context'],
    type: type!,
    perms: new Set(perms),
    suffix: suffix!,
  };
}

/** The permissions the scopes give on a resource type. */
export function permsFor(scopes: Scope[], type: string): Set<Permission> {
  const out = new Set<Permission>();
  for (const s of scopes) {
    if (s.context !== 'system') continue;
    if (s.type === '*' || s.type === type) for (const p of s.perms) out.add(p);
  }
  return out;
}

/** True when every permission `wanted` asks for is granted by `allowed`. */
export function covers(allowed: Scope[], wanted: Scope): boolean {
  // A wildcard request is covered only by wildcard grants: it asks for every type.
  const pool = wanted.type === '*' ? allowed.filter((s) => s.type === '*') : allowed;
  const have = permsFor(pool, wanted.type === '*' ? '*' : wanted.type);
  for (const p of wanted.perms) if (!have.has(p)) return false;
  return true;
}

/** Aidbox answers a wildcard with one scope per resource type it holds. */
export function expandScope(scope: Scope, types: string[]): string[] {
  if (scope.type !== '*') return [scope.text];
  return types.map((t) => `${scope.context}/${t}.${scope.suffix}`);
}
