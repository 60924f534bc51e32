import type { Context } from '../context.js';
import type { SessionOptions } from '../core/auth/session.js';
import type { Settings } from '../core/settings.js';
import { usageError } from '../core/errors.js';
import type { Result, ResultKind, Results } from '../output/results.js';

/**
 * What a session or a token provider takes from the run. `signal` is a getter, asked for only
 * when a request or a wait needs it (a cached token never does): pass the object as it is, never
 * a spread copy of it, which would ask for the signal at once.
 */
function runOptions(ctx: Context, settings: Settings, noCache?: boolean): SessionOptions {
  return {
    settings,
    http: () => ctx.http(),
    now: ctx.now,
    sleep: ctx.clock.sleep,
    get signal() {
      return ctx.signal;
    },
    log: (m) => ctx.log.verbose(m),
    warn: (m) => ctx.log.warn(m),
    noCache,
  };
}

/** The authenticated FHIR session for this run, built from the resolved settings. */
export async function openSession(ctx: Context, options: { noCache?: boolean } = {}) {
  const [{ FhirSession }, settings] = await Promise.all([
    import('../core/auth/session.js'),
    ctx.settings(),
  ]);
  return new FhirSession(runOptions(ctx, settings, options.noCache));
}

/** The token provider alone (smart token, smart assertion). */
export async function openTokenProvider(ctx: Context) {
  const [{ TokenProvider }, settings] = await Promise.all([
    import('../core/auth/token.js'),
    ctx.settings(),
  ]);
  return new TokenProvider(runOptions(ctx, settings));
}

/**
 * The output of this run for one kind of result: the format is decided here, once, before any
 * work (a format the result cannot be shown in is exit 2), and `show` renders the result in it.
 */
export async function outputFor<K extends ResultKind>(ctx: Context, kind: K, command: string) {
  const { decideFormat, render } = await import('../output/render.js');
  const format = await decideFormat(kind, command, ctx.globals, Boolean(ctx.io.stdout.isTTY));
  return {
    format,
    show: (result: Results[K] & { kind: K }) => render(result as Result, format, ctx),
  };
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
