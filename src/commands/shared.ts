import type { Context } from '../context.js';

/** The authenticated FHIR session for this run, built from the resolved settings. */
export async function openSession(ctx: Context, options: { noCache?: boolean } = {}) {
  const [{ FhirSession }, settings] = await Promise.all([
    import('../core/session.js'),
    ctx.settings(),
  ]);
  return new FhirSession({
    settings,
    http: () => ctx.http(),
    now: ctx.now,
    log: (m) => ctx.log.verbose(m),
    noCache: options.noCache,
  });
}

/** The token provider alone (smart token, smart assertion). */
export async function openTokenProvider(ctx: Context) {
  const [{ TokenProvider }, settings] = await Promise.all([
    import('../core/token.js'),
    ctx.settings(),
  ]);
  return new TokenProvider({
    settings,
    http: () => ctx.http(),
    now: ctx.now,
    log: (m) => ctx.log.verbose(m),
  });
}

/** True only when the user asked for JSON (-o json / --json); piping alone does not count. */
export function jsonRequested(ctx: Context): boolean {
  const o = ctx.globals.output;
  return o === 'json' || o === 'ndjson' || (o === undefined && Boolean(ctx.globals.json));
}

/** A yes/no question on the terminal (stderr); the caller checks ctx.interactive() first. */
export async function confirm(ctx: Context, message: string, initial = false): Promise<boolean> {
  const { default: inquirer } = await import('inquirer');
  const ask = inquirer.createPromptModule({ input: ctx.io.stdin, output: ctx.io.stderr });
  const answer = await ask<{ ok: boolean }>([
    { type: 'confirm', name: 'ok', message, default: initial },
  ]);
  return answer.ok;
}
