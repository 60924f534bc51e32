import type { Command } from 'commander';
import type { Context } from '../context.js';
import type { AdminCredentials } from '../core/aidbox.js';
import { shortId } from '../core/redact.js';
import { addSettingOptions } from './options.js';
import { adminSecret, outputFor } from './shared.js';

interface UnregisterOptions {
  server?: string;
  accessPolicy: boolean;
  dryRun?: boolean;
  adminClient?: string;
}

export function registerUnregisterClient(program: Command, ctx: Context): void {
  const cmd = program
    .command('unregister-client <client-id>')
    .description(
      'Delete a registered client: Aidbox Client and AccessPolicy, or an RFC 7592 registration',
    );
  // --server: from its row in the settings table.
  addSettingOptions(cmd, ['server'])
    .option('--no-access-policy', 'aidbox: leave the AccessPolicy with the same id alone')
    .option('--dry-run', 'print each request and send nothing')
    .option(
      '--admin-client <id>',
      'aidbox admin client for HTTP Basic (default: SMART_ADMIN_CLIENT, BOX_ROOT_CLIENT_ID, root)',
    )
    .addHelpText(
      'after',
      `
aidbox: DELETE <base-url>/AccessPolicy/<id>, then DELETE <base-url>/Client/<id>. A resource that
does not exist is reported as "already gone" and is not an error.
rfc7591: DELETE the registration_client_uri saved by register-client, with its registration
access token (RFC 7592); without one saved it says so (exit 1).
smart-reference: those servers cannot delete a registration (exit 1).
When the active profile's clientId is the deleted client, smart offers to clear it on a terminal,
and otherwise says how (on stderr).

Examples:
  $ SMART_ADMIN_SECRET=... smart unregister-client my-client
  $ smart unregister-client my-client --dry-run
  $ smart unregister-client "$(smart config get clientId)" --server rfc7591
`,
    )
    .action(async (clientId: string, opts: UnregisterOptions) => {
      const [registration, { requireSetting }] = await Promise.all([
        import('../core/registration/index.js'),
        import('../core/settings.js'),
      ]);
      const settings = await ctx.settings();
      const kind = registration.serverKindOf(settings);
      const baseUrl =
        kind === 'aidbox'
          ? requireSetting(settings, 'baseUrl', 'to unregister the client (the server origin)')
          : (settings.baseUrl ?? '');
      const registrar = await registration.registrarFor(kind);
      const input = { clientId, baseUrl, accessPolicy: opts.accessPolicy };
      const configDir = settings.paths.configDir;
      if (opts.dryRun) {
        const output = await outputFor(ctx, 'text', 'unregister-client --dry-run');
        const calls = await registrar.planRemoval(input, { http: await ctx.http(), configDir });
        // The requests as text (secrets masked), or with -o json as data.
        await output.show({
          kind: 'text',
          text: registration.describeCalls(calls).replace(/\n$/, ''),
          json: registration.planDocument(calls),
        });
        ctx.log.info('dry run: nothing was sent');
        return;
      }
      let admin: AdminCredentials | undefined;
      if (registrar.needsAdmin) {
        // The plan first: a bad id is refused before any prompt.
        await registrar.planRemoval(input, { http: await ctx.http(), configDir });
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
      const rows = await registrar.remove(input, { http: await ctx.http(), admin, configDir });
      for (const o of rows) {
        if (o.result === 'absent') ctx.log.info(`${o.what}/${shortId(o.id)} was already gone`);
      }
      await (
        await outputFor(ctx, 'registration', 'unregister-client')
      ).show({
        kind: 'registration',
        rows: rows,
        verb: 'unregistered',
      });
      if (rows.some((o) => o.result === 'deleted' || o.result === 'absent')) {
        await offerToForget(ctx, settings.paths.configFile, settings.profile, clientId);
      }
    });
}

/**
 * The profile still names the client that is gone: clear it after asking on a terminal, else
 * say how (one line on stderr).
 */
async function offerToForget(
  ctx: Context,
  configFile: string,
  profile: string,
  clientId: string,
): Promise<void> {
  const { loadConfig, updateProfile } = await import('../core/settings.js');
  const stored = (await loadConfig(configFile)).profiles[profile]?.clientId;
  if (stored !== clientId) return;
  const id = shortId(clientId);
  const how = `smart --profile ${profile} config unset clientId`;
  if (!ctx.interactive()) {
    ctx.log.info(`profile "${profile}" still has clientId ${id}; to clear it: ${how}`);
    return;
  }
  const { confirm } = await import('./shared.js');
  if (await confirm(ctx, `Profile "${profile}" still has clientId ${id}. Clear it?`, true)) {
    await updateProfile(configFile, profile, { clientId: undefined });
    ctx.log.info(`cleared clientId in profile "${profile}" (${configFile})`);
  } else {
    ctx.log.info(`kept clientId ${id} in profile "${profile}"; to clear it later: ${how}`);
  }
}
