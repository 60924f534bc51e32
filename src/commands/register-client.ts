import type { Command } from 'commander';
import { resolve } from 'node:path';
import type { Context } from '../context.js';
import { SmartError, usageError } from '../core/errors.js';
import type { AdminCredentials, AdminOutcome, AdminRequest } from '../core/aidbox.js';
import type { Jwks } from '../core/keys.js';

interface RegisterOptions {
  jwksUri?: string;
  jwksFile?: string;
  tokenExpiration?: string;
  type?: string;
  accessPolicy: boolean;
  dryRun?: boolean;
  adminClient?: string;
  check: boolean;
  save: boolean;
}

function parseSeconds(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value.trim()) || Number(value) <= 0) {
    throw usageError(
      `${flag} "${value}" is not a positive whole number of seconds`,
      `e.g. ${flag} 300`,
    );
  }
  return Number(value);
}

function checkHttpUrl(flag: string, value: string): string {
  try {
    const u = new URL(value);
    if (u.protocol === 'http:' || u.protocol === 'https:') return value;
  } catch {
    // fall through
  }
  throw usageError(
    `${flag} "${value}" is not an absolute http(s) URL`,
    'e.g. --jwks-uri https://example.org/.well-known/jwks.json',
  );
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

/** `PUT <url>` and the pretty body: what --dry-run prints. */
export function describeRequests(reqs: AdminRequest[]): string {
  return reqs
    .map(
      (r) =>
        `${r.method} ${r.url}${r.body === undefined ? '' : `\n${JSON.stringify(r.body, null, 2)}`}\n`,
    )
    .join('\n');
}

export async function printOutcomes(
  ctx: Context,
  outcomes: AdminOutcome[],
  verb: string,
): Promise<void> {
  const out = await import('../output/index.js');
  if (ctx.outputFormat() === 'table') {
    await out.printRecords(ctx, outcomes, [
      { header: 'resource', get: (o) => o.resourceType },
      { header: 'id', get: (o) => o.id },
      { header: 'result', get: (o) => (o.result === 'absent' ? 'already gone' : o.result) },
    ]);
    return;
  }
  // {client: {...}, accessPolicy: {...}}: each with the result and what the server stored.
  const body: Record<string, unknown> = {};
  for (const o of outcomes) {
    body[o.resourceType === 'Client' ? 'client' : 'accessPolicy'] = {
      resourceType: o.resourceType,
      id: o.id,
      url: o.url,
      result: o.result,
      status: o.status,
      ...(o.resource ? { resource: o.resource } : {}),
    };
  }
  ctx.log.verbose(
    `${verb}: ${outcomes.map((o) => `${o.resourceType}/${o.id} ${o.result}`).join(', ')}`,
  );
  await out.writeOut(ctx.io.stdout, out.jsonText(body, ctx.outputFormat() !== 'ndjson'));
}

export function registerRegisterClient(program: Command, ctx: Context): void {
  program
    .command('register-client <client-id>')
    .description(
      'Register a backend-services Client and its AccessPolicy on Aidbox (or the sandbox) with the admin API',
    )
    .option('--jwks-uri <url>', 'where the server fetches the public keys (preferred)')
    .option(
      '--jwks-file <file>',
      'register the public keys of this JWKS inline instead of a jwks_uri',
    )
    .option('--token-expiration <seconds>', 'access token lifetime (default 300)')
    .option('--type <type>', 'Client.type (default bulk-api-client)')
    .option('--no-access-policy', 'do not create the allow AccessPolicy linked to the client')
    .option('--dry-run', 'print each request (PUT <url> and body) and send nothing')
    .option(
      '--admin-client <id>',
      'admin client for HTTP Basic (default: SMART_ADMIN_CLIENT, BOX_ROOT_CLIENT_ID, else root)',
    )
    .option(
      '--no-check',
      'skip the pre-checks of the JWKS (that it is reachable and holds the key)',
    )
    .option(
      '--no-save',
      'do not save client id, jwks_uri, scope and base URL in the active profile',
    )
    .addHelpText(
      'after',
      `
PUT <base-url>/Client/<id> (type, active, grant_types [client_credentials], jwt-bearer assertions,
token_format jwt, scope, jwks_uri or jwks), then PUT <base-url>/AccessPolicy/<id> (engine allow,
linked to the Client). <base-url> is the server origin, not the FHIR base. Running it again
updates both; each is reported as created or updated.
The admin secret comes from SMART_ADMIN_SECRET (or BOX_ROOT_CLIENT_SECRET), else a prompt.
--scope (global) sets Client.scope, default "system/*.read".

Examples:
  $ SMART_ADMIN_SECRET=... smart register-client my-client \\
      --jwks-uri https://keys.example.org/jwks.json
  $ smart register-client my-client --jwks-uri http://jwks:8082/.well-known/jwks.json \\
      --scope "system/*.read" --dry-run
  $ smart register-client my-client --jwks-file ~/.config/smart/keys/jwks.json \\
      --token-expiration 600
`,
    )
    .action(async (clientIdArg: string, opts: RegisterOptions) => {
      const aidbox = await import('../core/aidbox.js');
      const clientId = aidbox.checkClientId(clientIdArg);
      if (opts.jwksUri) checkHttpUrl('--jwks-uri', opts.jwksUri);
      const expiration = parseSeconds('--token-expiration', opts.tokenExpiration);
      const settings = await ctx.settings();
      const { requireSetting } = await import('../core/settings.js');
      const baseUrl = requireSetting(
        settings,
        'baseUrl',
        'to register the client (the server origin)',
      );

      let inline: Awaited<ReturnType<typeof aidbox.inlineJwks>> | undefined;
      let fileJwks: Jwks | undefined;
      let jwksFile: string | undefined;
      if (opts.jwksFile) {
        if (opts.jwksUri) {
          throw usageError(
            'give either --jwks-uri or --jwks-file, not both',
            'a JWKS URL is preferred: the keys can rotate without re-registering',
          );
        }
        const { readJwksFile } = await import('../core/keys.js');
        jwksFile = resolve(ctx.cwd, opts.jwksFile);
        fileJwks = await readJwksFile(jwksFile);
        inline = aidbox.inlineJwks(fileJwks, jwksFile);
        for (const w of inline.warnings) ctx.log.warn(w);
      } else if (!opts.jwksUri) {
        throw usageError(
          'register-client needs --jwks-uri <url> (or --jwks-file <file>)',
          'serve the public keys with `smart jwks serve` and pass that URL; it must be reachable from the server',
          { code: 'missing_jwks' },
        );
      }
      const body = aidbox.clientBody({
        scope: settings.scope,
        jwksUri: opts.jwksUri,
        jwks: inline?.keys,
        tokenExpiration: expiration,
        type: opts.type,
      });
      const requests = aidbox.registrationRequests(baseUrl, clientId, body, {
        accessPolicy: opts.accessPolicy,
      });

      if (opts.jwksUri && aidbox.isLoopbackUrl(opts.jwksUri))
        ctx.log.warn(aidbox.loopbackWarning(opts.jwksUri));

      if (opts.dryRun) {
        const { writeOut } = await import('../output/index.js');
        await writeOut(ctx.io.stdout, describeRequests(requests));
        ctx.log.info('dry run: nothing was sent');
        return;
      }

      if (opts.check) await preCheck(ctx, opts.jwksUri, fileJwks, jwksFile);

      const admin: AdminCredentials = {
        clientId: opts.adminClient ?? settings.adminClientId,
        secret: await adminSecret(
          ctx,
          settings.adminSecret,
          opts.adminClient ?? settings.adminClientId,
          baseUrl,
        ),
      };
      const http = await ctx.http();
      const outcomes = await aidbox.sendAdminRequests(http, requests, admin);
      for (const o of outcomes)
        ctx.log.verbose(`${o.resourceType}/${o.id}: ${o.result} (HTTP ${o.status})`);
      await printOutcomes(ctx, outcomes, 'registered');

      if (opts.save) {
        const { updateProfile } = await import('../core/settings.js');
        const patch: Record<string, string | undefined> = {
          clientId,
          scope: body.scope.join(' '),
          baseUrl,
        };
        if (opts.jwksUri) patch.jwksUri = opts.jwksUri;
        await updateProfile(settings.paths.configFile, settings.profile, patch);
        ctx.log.info(
          `saved clientId ${clientId}${opts.jwksUri ? ', jwksUri' : ''}, scope and baseUrl in profile "${settings.profile}" (${settings.paths.configFile})`,
        );
      }
    });
}

/** What can be checked before writing: the JWKS holds the profile key (by kid). */
async function preCheck(
  ctx: Context,
  jwksUri: string | undefined,
  fileJwks: Jwks | undefined,
  jwksFile: string | undefined,
): Promise<void> {
  const settings = await ctx.settings();
  const [aidbox, { loadSigningKey }] = await Promise.all([
    import('../core/aidbox.js'),
    import('../core/keys.js'),
  ]);
  let kid: string | undefined;
  if (settings.key) {
    kid = (await loadSigningKey(settings.key, { alg: settings.alg })).kid;
  } else {
    ctx.log.verbose('no key configured (--key / SMART_KEY): the JWKS is not checked for its kid');
  }
  if (fileJwks && jwksFile) {
    aidbox.checkJwks(fileJwks, jwksFile, kid);
    return;
  }
  if (!jwksUri) return;
  const http = await ctx.http();
  try {
    const result = await aidbox.checkJwksUri(http, jwksUri, kid);
    ctx.log.verbose(
      `jwks_uri ${jwksUri} serves ${result.kids.length} key(s)${kid ? `, including kid ${kid}` : ''}`,
    );
  } catch (e) {
    // Not reaching it from here proves little: the server may sit on another network (Docker).
    if (e instanceof SmartError && e.kind === 'network') {
      ctx.log.warn(
        `could not fetch jwks_uri from this machine (${e.message}); registering anyway: make sure the server can reach it`,
      );
      return;
    }
    throw e;
  }
}
