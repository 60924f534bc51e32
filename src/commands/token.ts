import type { Command } from 'commander';
import type { Context } from '../context.js';

export function registerToken(program: Command, ctx: Context): void {
  program
    .command('token')
    .description(
      'Get an access token (client_credentials + signed assertion) and print it alone on stdout; cached until 60 s before expiry',
    )
    .option('--no-cache', 'neither read nor write the token cache: always ask the server')
    .addHelpText(
      'after',
      `
The token goes to stdout alone, so that it can be used in a shell:
  curl -H "Authorization: Bearer $(smart token)" "$SMART_FHIR_URL/Patient"
With -o json the whole token response is printed, plus expires_at and from_cache.
--verbose shows the granted scope and the expiry on stderr.

Examples:
  $ smart token
  $ smart token --scope "system/Patient.read system/Observation.read"
  $ smart token --no-cache -o json
  $ smart token --base-url http://localhost:8080 --client-id my-client --key ./keys/key.pem
`,
    )
    .action((opts: { cache: boolean }) => printToken(ctx, opts));
}

/** `smart token`: the action, also run without Commander for a bare `smart token` (fast.ts). */
export async function printToken(ctx: Context, opts: { cache: boolean }): Promise<void> {
  const { openTokenProvider, outputFor } = await import('./shared.js');
  const output = await outputFor(ctx, 'text', 'token');
  const provider = await openTokenProvider(ctx);
  const token = await provider.getToken({ noCache: !opts.cache });
  const now = ctx.now();
  ctx.log.verbose(
    `granted scope: ${token.scope ?? `(not stated; requested ${token.requestedScope})`}`,
  );
  if (!token.expiresAt) {
    ctx.log.verbose('the server gave no expiry: the token was not cached');
  } else if (ctx.globals.verbose || ctx.globals.debug) {
    const { formatDuration } = await import('../core/duration.js');
    ctx.log.verbose(
      `expires at ${new Date(token.expiresAt).toISOString()} (in ${formatDuration(token.expiresAt - now, 'units')})${token.fromCache ? ', from the cache' : ''}`,
    );
  }
  await output.show({
    kind: 'text',
    text: token.accessToken,
    // Built only for -o json or ndjson: formatting a date loads the time zone data (~1 ms of a
    // warm `smart token`, which prints the token alone).
    get json() {
      return {
        ...token.response,
        expires_at: token.expiresAt ? new Date(token.expiresAt).toISOString() : null,
        from_cache: token.fromCache,
      };
    },
  });
}
