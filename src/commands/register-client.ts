import type { Command } from 'commander';
import { resolve } from 'node:path';
import type { Context } from '../context.js';
import { SmartError, usageError } from '../core/errors.js';
import type { AdminCredentials } from '../core/aidbox.js';
import { isLoopbackUrl, loopbackWarning } from '../core/aidbox.js';
import type { Jwks } from '../core/auth/keys.js';
import { shortId } from '../core/redact.js';
import { addSettingOptions } from './options.js';
import { adminSecret, outputFor } from './shared.js';

interface RegisterOptions {
  server?: string;
  registrationUrl?: string;
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

export function registerRegisterClient(program: Command, ctx: Context): void {
  const cmd = program
    .command('register-client <client-id>')
    .description(
      'Register a backend-services client: Aidbox admin API (default), RFC 7591, or SMART reference servers',
    );
  // --server, --registration-url, --jwks-uri: from their rows in the settings table.
  addSettingOptions(cmd, ['server', 'registrationUrl', 'jwksUri'])
    .option(
      '--jwks-file <file>',
      'register the public keys of this JWKS inline instead of a jwks_uri',
    )
    .option('--token-expiration <seconds>', 'aidbox: access token lifetime (default 300)')
    .option('--type <type>', 'aidbox: Client.type (default bulk-api-client)')
    .option('--no-access-policy', 'aidbox: do not create the allow AccessPolicy of the client')
    .option('--dry-run', 'print each request (method, URL, body; secrets masked), send nothing')
    .option(
      '--admin-client <id>',
      'aidbox admin client for HTTP Basic (default: SMART_ADMIN_CLIENT, BOX_ROOT_CLIENT_ID, root)',
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
--server aidbox (default): PUT <base-url>/Client/<id> (type, active, grant_types
[client_credentials], jwt-bearer assertions, token_format jwt, scope, jwks_uri or jwks), then
PUT <base-url>/AccessPolicy/<id> (engine allow, linked to the Client). <base-url> is the server
origin, not the FHIR base. Running it again updates both. The admin secret comes from
SMART_ADMIN_SECRET (or BOX_ROOT_CLIENT_SECRET), else a prompt.
--server rfc7591: POST JSON to --registration-url (else discovery's registration_endpoint):
client_name <client-id>, client_credentials, private_key_jwt, the key's alg, jwks_uri or jwks,
scope. An initial access token comes from SMART_REGISTRATION_TOKEN. The server assigns the
client id: it is printed and saved; RFC 7592 management credentials go to a 0600 file.
--server smart-reference: POST <base-url>/auth/register (form jwks or jwks_url); the answer is
the client id.
--scope (global) sets the registered scope, default "system/*.read".
The client id, jwks_uri, scope and base URL are saved in the active profile (--no-save: not);
a base URL that changes the profile's (e.g. from --base-url) is said so on stderr.

Examples:
  $ SMART_ADMIN_SECRET=... smart register-client my-client --jwks-uri https://k.example/jwks.json
  $ smart register-client my-client --jwks-uri http://jwks:8082/.well-known/jwks.json --dry-run
  $ smart register-client my-app --server rfc7591 --jwks-file ~/.config/smart/keys/jwks.json
  $ smart register-client my-app --server smart-reference --jwks-uri https://k.example/jwks.json
`,
    )
    .action(async (name: string, opts: RegisterOptions) => {
      const [registration, { requireSetting }] = await Promise.all([
        import('../core/registration/index.js'),
        import('../core/settings.js'),
      ]);
      const settings = await ctx.settings();
      const kind = registration.serverKindOf(settings);
      // The JWKS URL to register: --jwks-uri, else SMART_JWKS_URI (not with --jwks-file). The
      // profile's jwksUri is the one registered last time, for hints: never taken from there.
      const jwksUri =
        opts.jwksUri ??
        (!opts.jwksFile && settings.sources.jwksUri === 'env' ? settings.jwksUri : undefined);
      if (opts.jwksUri) checkHttpUrl('--jwks-uri', opts.jwksUri);
      const expiration = parseSeconds('--token-expiration', opts.tokenExpiration);
      const baseUrl = requireSetting(
        settings,
        'baseUrl',
        'to register the client (the server origin)',
      );

      let fileJwks: Jwks | undefined;
      let jwksFile: string | undefined;
      if (opts.jwksFile) {
        if (opts.jwksUri) {
          throw usageError(
            'give either --jwks-uri or --jwks-file, not both',
            'a JWKS URL is preferred: the keys can rotate without re-registering',
          );
        }
        const { readJwksFile } = await import('../core/auth/keys.js');
        jwksFile = resolve(ctx.cwd, opts.jwksFile);
        fileJwks = await readJwksFile(jwksFile);
      } else if (!jwksUri) {
        throw usageError(
          'register-client needs --jwks-uri <url> (or --jwks-file <file>)',
          'serve the public keys with `smart jwks serve` and pass that URL; it must be reachable from the server',
          { code: 'missing_jwks' },
        );
      }

      // The signing alg the server is told about (rfc7591): the key's, else the JWKS's.
      let alg: string | undefined;
      if (kind === 'rfc7591') {
        if (settings.key) {
          const { loadSigningKey } = await import('../core/auth/keys.js');
          alg = (await loadSigningKey(settings.key, { alg: settings.alg })).alg;
        } else if (fileJwks?.keys.length === 1 && typeof fileJwks.keys[0]!.alg === 'string') {
          alg = fileJwks.keys[0]!.alg;
        }
      }

      let httpClient: Awaited<ReturnType<Context['http']>> | undefined;
      const http = async () => (httpClient ??= await ctx.http());
      const discover = async () => {
        if (!settings.fhirUrl) return undefined;
        const { cachedDiscovery } = await import('../core/discovery.js');
        return (await cachedDiscovery(http, settings.fhirUrl, settings.paths.cacheDir, ctx.now()))
          .config;
      };
      const input = {
        name,
        baseUrl,
        fhirUrl: settings.fhirUrl,
        scope: settings.scope,
        jwksUri,
        jwks: fileJwks,
        jwksSource: jwksFile,
        alg,
        registrationUrl: settings.registrationUrl,
        registrationToken: settings.registrationToken,
        tokenExpiration: expiration,
        clientType: opts.type,
        accessPolicy: opts.accessPolicy,
      };

      if (jwksUri && isLoopbackUrl(jwksUri)) ctx.log.warn(loopbackWarning(jwksUri));

      const registrar = await registration.registrarFor(kind);
      // The dry run's format, decided before any request (-o csv of a plan is exit 2 at once).
      const dryOutput = opts.dryRun
        ? await outputFor(ctx, 'text', 'register-client --dry-run')
        : undefined;
      // Plan first (it validates everything, and --dry-run needs nothing else).
      const planned = await registration.registerClient({
        kind,
        input,
        deps: { http: await http(), discover },
        dryRun: true,
      });
      for (const w of planned.plan.warnings) ctx.log.warn(w);
      if (dryOutput) {
        // The requests as text (secrets masked), or with -o json as data.
        await dryOutput.show({
          kind: 'text',
          text: registration.describeCalls(planned.plan.calls).replace(/\n$/, ''),
          json: registration.planDocument(planned.plan.calls),
        });
        ctx.log.info('dry run: nothing was sent');
        return;
      }

      if (opts.check) await preCheck(ctx, jwksUri, fileJwks, jwksFile);

      let admin: AdminCredentials | undefined;
      if (registrar.needsAdmin) {
        admin = {
          clientId: opts.adminClient ?? settings.adminClientId,
          secret: await adminSecret(
            ctx,
            settings.adminSecret,
            opts.adminClient ?? settings.adminClientId,
            baseUrl,
          ),
        };
      }
      const deps = {
        http: await http(),
        admin,
        discover,
        configDir: settings.paths.configDir,
      };
      const result = await registrar.apply(planned.plan, deps);
      let managementFile: string | undefined;
      if (result.management) {
        const { saveManagement } = await import('../core/registration/store.js');
        managementFile = await saveManagement(settings.paths.configDir, result.management);
      }
      for (const r of result.rows)
        ctx.log.verbose(`${r.what}/${shortId(r.id)}: ${r.result} (HTTP ${r.status})`);

      if (kind === 'aidbox') {
        await (
          await outputFor(ctx, 'registration', 'register-client')
        ).show({
          kind: 'registration',
          rows: result.rows,
          verb: 'registered',
        });
      } else {
        if (kind === 'rfc7591') {
          ctx.log.info(
            managementFile
              ? `registration access token saved (0600) in ${managementFile}: \`smart unregister-client --server rfc7591\` can delete the registration`
              : 'the server gave no registration_client_uri/registration_access_token: the registration cannot be deleted from here',
          );
        }
        const row = result.rows[0]!;
        await (
          await outputFor(ctx, 'object', 'register-client')
        ).show({
          kind: 'object',
          value: {
            server: kind,
            clientId: result.clientId,
            registrationUrl: row.url,
            status: row.status,
            managementSaved: Boolean(managementFile),
            ...(row.resource ? { response: row.resource } : {}),
          },
          fields: [['client id', result.clientId]],
        });
      }

      if (opts.save) {
        const { loadConfig, updateProfile } = await import('../core/settings.js');
        const before = (await loadConfig(settings.paths.configFile)).profiles[settings.profile];
        const patch: Record<string, string | undefined> = {
          clientId: result.clientId,
          scope: settings.scope.trim().split(/\s+/).join(' '),
          baseUrl,
        };
        if (jwksUri) patch.jwksUri = jwksUri;
        if (kind !== 'aidbox' || settings.sources.server === 'flag') patch.server = kind;
        if (settings.sources.registrationUrl === 'flag')
          patch.registrationUrl = settings.registrationUrl;
        await updateProfile(settings.paths.configFile, settings.profile, patch);
        ctx.log.info(
          `saved clientId ${shortId(result.clientId)}${jwksUri ? ', jwksUri' : ''}, scope and baseUrl in profile "${settings.profile}" (${settings.paths.configFile})`,
        );
        if (baseUrl && before?.baseUrl !== baseUrl) {
          // A --base-url (or SMART_BASE_URL) given for this run now stays in the profile.
          ctx.log.info(
            `the profile's baseUrl is now ${baseUrl}` +
              (before?.baseUrl ? ` (it was ${before.baseUrl})` : ' (it had none)') +
              (settings.sources.baseUrl === 'flag'
                ? ', from --base-url'
                : settings.sources.baseUrl === 'env'
                  ? ', from SMART_BASE_URL'
                  : ''),
          );
        }
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
    import('../core/auth/keys.js'),
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
