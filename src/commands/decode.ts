import type { Command } from 'commander';
import { resolve } from 'node:path';
import type { Context } from '../context.js';
import { SmartError, usageError } from '../core/errors.js';

async function readStdin(ctx: Context): Promise<string> {
  if (ctx.io.stdin.isTTY) {
    throw usageError(
      'decode -: stdin is a terminal, not a token',
      'pipe the token in: `smart token | smart decode -`',
    );
  }
  const chunks: Buffer[] = [];
  for await (const chunk of ctx.io.stdin)
    chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks).toString('utf8').trim();
}

export function registerDecode(program: Command, ctx: Context): void {
  program
    .command('decode <jwt>')
    .description(
      'Decode a JWT (access token or client assertion): header, claims, times, SMART assertion checks',
    )
    .option(
      '--jwks <url|file>',
      'verify the signature with this JWKS (a URL is only fetched, the token is never sent)',
    )
    .option(
      '--assertion',
      'check the SMART client assertion rules even if the token does not look like one',
    )
    .option('--aud <token-url>', 'also check that aud is this token endpoint')
    .option('--strict', 'exit 1 when a SMART assertion rule is violated (default: warnings only)')
    .addHelpText(
      'after',
      `
Use - to read the token from stdin. Times are shown as dates and as "expires in 4m12s".
A client assertion (aud a URL, an iss or sub, no access-token claims such as scope; or
--assertion) is checked against the SMART rules: typ, kid, alg, iss = sub, aud, exp at most
5 minutes ahead, jti. Each violated rule is listed.
Exit 1 when --jwks verification fails (or, with --strict, when a rule is violated).

Examples:
  $ smart decode eyJhbGciOiJSUzM4NCIs...
  $ smart assertion | smart decode - --jwks ~/.config/smart/keys/jwks.json
  $ smart token | smart decode - -o json
  $ smart decode "$JWT" --assertion --jwks https://example.org/.well-known/jwks.json --strict
`,
    )
    .action(
      async (
        input: string,
        opts: { jwks?: string; assertion?: boolean; aud?: string; strict?: boolean },
      ) => {
        const { outputFor } = await import('./shared.js');
        const output = await outputFor(ctx, 'decode', 'decode');
        const token = input === '-' ? await readStdin(ctx) : input;
        if (!token) throw usageError('no token given', 'pass a JWT, or - to read it from stdin');
        const jwt = await import('../core/auth/jwt.js');
        const decoded = jwt.decodeJwt(token);
        const now = ctx.now();
        const times = jwt.describeTimes(decoded.claims, now);
        const isAssertion = Boolean(opts.assertion) || jwt.looksLikeClientAssertion(decoded);
        const checks = isAssertion
          ? jwt.checkAssertionRules(decoded, { nowMs: now, audience: opts.aud })
          : [];
        let verification: Awaited<ReturnType<typeof jwt.verifyJwtSignature>> | undefined;
        if (opts.jwks) {
          const source = jwt.isUrl(opts.jwks) ? opts.jwks : resolve(ctx.cwd, opts.jwks);
          const set = await jwt.loadJwks(source, () => ctx.http());
          verification = await jwt.verifyJwtSignature(token, set, source);
        }

        await output.show({ kind: 'decode', decoded, times, isAssertion, checks, verification });

        const violated = checks.filter((c) => !c.ok);
        for (const c of violated) ctx.log.warn(`SMART assertion rule "${c.rule}": ${c.detail}`);
        if (verification && !verification.verified) {
          throw new SmartError('runtime', `signature verification failed: ${verification.reason}`, {
            code: 'signature_invalid',
            hint: 'check that the JWKS is the one registered for this client and that it holds the signing key (kid)',
          });
        }
        if (opts.strict && violated.length) {
          throw new SmartError(
            'runtime',
            `${violated.length} SMART client assertion rule${violated.length === 1 ? '' : 's'} violated: ${violated.map((c) => c.rule).join(', ')}`,
            { code: 'assertion_rules' },
          );
        }
      },
    );
}
