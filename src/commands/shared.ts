import type { Context } from '../context.js';
import { usageError } from '../core/errors.js';
import type { RegistrationRow } from '../core/registration/types.js';

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
    warn: (m) => ctx.log.warn(m),
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
    warn: (m) => ctx.log.warn(m),
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

/** The admin secret: the environment, else a masked prompt on a terminal, else an error. */
export async function adminSecret(
  ctx: Context,
  secret: string | undefined,
  who: string,
  baseUrl: string,
): Promise<string> {
  if (secret) return secret;
  if (!ctx.interactive()) {
    throw usageError(
      `no admin secret for "${who}" at ${baseUrl}`,
      'set SMART_ADMIN_SECRET (or BOX_ROOT_CLIENT_SECRET); smart prompts for it only on a terminal without --no-input',
      { code: 'missing_admin_secret' },
    );
  }
  const { default: inquirer } = await import('inquirer');
  const prompt = inquirer.createPromptModule({ input: ctx.io.stdin, output: ctx.io.stderr });
  const answer = await prompt<{ secret: string }>([
    {
      type: 'password',
      name: 'secret',
      mask: '*',
      message: `Admin secret for ${who} at ${baseUrl}:`,
    },
  ]);
  if (!answer.secret) throw usageError('no admin secret given');
  return answer.secret;
}

export async function printOutcomes(
  ctx: Context,
  outcomes: RegistrationRow[],
  verb: string,
): Promise<void> {
  const out = await import('../output/index.js');
  if (ctx.outputFormat() === 'table') {
    await out.printRecords(ctx, outcomes, [
      { header: 'resource', get: (o) => o.what },
      { header: 'id', get: (o) => o.id },
      { header: 'result', get: (o) => (o.result === 'absent' ? 'already gone' : o.result) },
    ]);
    return;
  }
  // {client: {...}, accessPolicy: {...}}: each with the result and what the server stored.
  const body: Record<string, unknown> = {};
  for (const o of outcomes) {
    body[o.what === 'Client' ? 'client' : o.what === 'AccessPolicy' ? 'accessPolicy' : o.what] = {
      resourceType: o.what,
      id: o.id,
      url: o.url,
      result: o.result,
      status: o.status,
      ...(o.resource ? { resource: o.resource } : {}),
    };
  }
  ctx.log.verbose(`${verb}: ${outcomes.map((o) => `${o.what}/${o.id} ${o.result}`).join(', ')}`);
  await out.writeOut(ctx.io.stdout, out.jsonText(body, ctx.outputFormat() !== 'ndjson'));
}
