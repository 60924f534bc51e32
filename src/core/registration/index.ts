/**
 * Client registration on any server kind: one `registerClient()` use case (plan, then apply
 * unless a dry run) that `smart register-client` and `smart demo` both call, and one
 * `unregisterClient()`. The kinds live one module each beside this file (registry.ts).
 */
import { registrarFor } from './registry.js';
import { saveManagement } from './store.js';
import type {
  PlannedCall,
  RegistrationDeps,
  RegistrationInput,
  RegistrationPlan,
  RegistrationResult,
  RegistrationRow,
  RemovalInput,
  ServerKind,
} from './types.js';

export * from './types.js';
export { checkServerKind, registrarFor, serverKindOf } from './registry.js';

/** --dry-run text: `METHOD url`, secret headers masked, then the body (JSON pretty, form decoded). */
export function describeCalls(calls: PlannedCall[]): string {
  return calls
    .map((c) => {
      const lines = [`${c.method} ${c.url}`];
      for (const h of c.secretHeaders ?? []) {
        const v = c.headers[h];
        if (v !== undefined) lines.push(`${h}: ${v.split(' ')[0]} ***`);
      }
      if (typeof c.body === 'string') {
        for (const [k, v] of new URLSearchParams(c.body)) lines.push(`${k}=${v}`);
      } else if (c.body !== undefined) {
        lines.push(JSON.stringify(c.body, null, 2));
      }
      return lines.join('\n') + '\n';
    })
    .join('\n');
}

/**
 * The planned requests as data (`--dry-run -o json`): each call's method, URL, headers and body,
 * with the value of every secret header masked as describeCalls masks it (`Basic ***`).
 */
export function planDocument(calls: PlannedCall[]): { calls: Array<Record<string, unknown>> } {
  return {
    calls: calls.map((c) => {
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(c.headers))
        headers[name] = c.secretHeaders?.includes(name) ? `${value.split(' ')[0]} ***` : value;
      return {
        what: c.what,
        ...(c.id !== undefined ? { id: c.id } : {}),
        method: c.method,
        url: c.url,
        headers,
        ...(c.body !== undefined ? { body: c.body } : {}),
      };
    }),
  };
}

export interface RegisterClientOptions {
  kind: ServerKind;
  input: RegistrationInput;
  deps: RegistrationDeps;
  /** Plan only: nothing is sent. */
  dryRun?: boolean;
  /** Called with the plan before anything is sent (warnings, the demo's request lines). */
  onPlan?: (plan: RegistrationPlan) => void | Promise<void>;
}

export interface RegisterClientResult {
  plan: RegistrationPlan;
  /** Undefined for a dry run. */
  result?: RegistrationResult;
  /** Where RFC 7592 management credentials were saved, when the server gave them. */
  managementFile?: string;
}

export async function registerClient(o: RegisterClientOptions): Promise<RegisterClientResult> {
  const registrar = await registrarFor(o.kind);
  const plan = await registrar.plan(o.input, o.deps);
  await o.onPlan?.(plan);
  if (o.dryRun) return { plan };
  const result = await registrar.apply(plan, o.deps);
  let managementFile: string | undefined;
  if (result.management && o.deps.configDir) {
    managementFile = await saveManagement(o.deps.configDir, result.management);
  }
  return { plan, result, managementFile };
}

export async function unregisterClient(o: {
  kind: ServerKind;
  input: RemovalInput;
  deps: RegistrationDeps;
  dryRun?: boolean;
}): Promise<{ calls: PlannedCall[]; rows?: RegistrationRow[] }> {
  const registrar = await registrarFor(o.kind);
  const calls = await registrar.planRemoval(o.input, o.deps);
  if (o.dryRun) return { calls };
  return { calls, rows: await registrar.remove(o.input, o.deps) };
}
