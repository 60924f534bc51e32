import type { Command } from 'commander';
import type { Context } from '../context.js';
import { usageError } from '../core/errors.js';

function parseLifetime(value: string): number {
  if (!/^\d+$/.test(value.trim())) {
    throw usageError(
      `--lifetime "${value}" is not a whole number of seconds`,
      'e.g. --lifetime 300 (the maximum)',
      {
        code: 'bad_lifetime',
      },
    );
  }
  return Number(value);
}

function parseUrl(flag: string) {
  return (value: string): string => {
    try {
      const u = new URL(value);
      if (u.protocol === 'http:' || u.protocol === 'https:') return value;
    } catch {
      // fall through
    }
    throw usageError(`${flag} "${value}" is not an absolute http(s) URL`);
  };
}

export function registerAssertion(program: Command, ctx: Context): void {
  program
    .command('assertion')
    .description('Print a signed SMART client assertion (a JWT) for use with curl or Postman')
    .option(
      '--aud <token-url>',
      'audience: the token endpoint (default: --token-url, else discovered)',
      parseUrl('--aud'),
    )
    .option('--lifetime <seconds>', 'seconds until exp, at most 300 (default 240)', parseLifetime)
    .option(
      '--jku <url>',
      'add a jku header; it must equal the registered jwks_uri',
      parseUrl('--jku'),
    )
    .addHelpText(
      'after',
      `
Header: alg (from the key), kid, typ JWT. Claims: iss = sub = client id, aud = token endpoint,
iat, exp (iat + lifetime) and a fresh random jti every time. -o json prints
{assertion, header, claims}.

Examples:
  $ smart assertion
  $ smart assertion --aud https://aidbox.example.com/auth/token --lifetime 120
  $ curl -d grant_type=client_credentials -d scope=system/*.read \\
      -d client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer \\
      -d client_assertion="$(smart assertion)" https://aidbox.example.com/auth/token
`,
    )
    .action(async (opts: { aud?: string; lifetime?: number; jku?: string }) => {
      const [
        { checkLifetime, signClientAssertion },
        { requireSetting },
        { openTokenProvider, outputFor },
      ] = await Promise.all([
        import('../core/auth/assertion.js'),
        import('../core/settings.js'),
        import('./shared.js'),
      ]);
      const output = await outputFor(ctx, 'text', 'assertion');
      // Refuse a bad lifetime before anything is read or fetched.
      const lifetime = opts.lifetime === undefined ? undefined : checkLifetime(opts.lifetime);
      const settings = await ctx.settings();
      const clientId = requireSetting(settings, 'clientId', 'for the iss and sub claims');
      const provider = await openTokenProvider(ctx);
      const key = await provider.signingKey();
      const audience = opts.aud ?? provider.audience(await provider.tokenUrl());
      // The alg must be one the server advertises, when that is known (discovery or its cache).
      await provider.useCachedDiscovery(audience);
      provider.checkAlgAdvertised(key, audience);
      const signed = await signClientAssertion({
        clientId,
        audience,
        key,
        lifetime,
        jku: opts.jku,
        now: Math.floor(ctx.now() / 1000),
      });
      ctx.log.verbose(
        `signed with kid ${key.kid} (${key.alg}) for ${audience}, expires in ${signed.claims.exp - signed.claims.iat}s`,
      );
      await output.show({
        kind: 'text',
        text: signed.jwt,
        json: { assertion: signed.jwt, header: signed.header, claims: signed.claims },
      });
    });
}
