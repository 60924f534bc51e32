import type { Command } from 'commander';
import type { Context } from '../context.js';
import type { AdminCredentials } from '../core/aidbox.js';

export function registerUnregisterClient(program: Command, ctx: Context): void {
  program
    .command('unregister-client <client-id>')
    .description(
      'Delete a Client and its AccessPolicy from Aidbox (or the sandbox) with the admin API',
    )
    .option('--no-access-policy', 'leave the AccessPolicy with the same id alone')
    .option('--dry-run', 'print each request and send nothing')
    .option(
      '--admin-client <id>',
      'admin client for HTTP Basic (default: SMART_ADMIN_CLIENT, BOX_ROOT_CLIENT_ID, else root)',
    )
    .addHelpText(
      'after',
      `
DELETE <base-url>/AccessPolicy/<id>, then DELETE <base-url>/Client/<id>. A resource that does
not exist is reported as "already gone" and is not an error.

Examples:
  $ SMART_ADMIN_SECRET=... smart unregister-client my-client
  $ smart unregister-client my-client --dry-run
`,
    )
    .action(
      async (
        clientIdArg: string,
        opts: { accessPolicy: boolean; dryRun?: boolean; adminClient?: string },
      ) => {
        const [aidbox, { requireSetting }, { adminSecret, describeRequests, printOutcomes }] =
          await Promise.all([
            import('../core/aidbox.js'),
            import('../core/settings.js'),
            import('./register-client.js'),
          ]);
        const clientId = aidbox.checkClientId(clientIdArg);
        const settings = await ctx.settings();
        const baseUrl = requireSetting(
          settings,
          'baseUrl',
          'to unregister the client (the server origin)',
        );
        const requests = aidbox.unregistrationRequests(baseUrl, clientId, {
          accessPolicy: opts.accessPolicy,
        });
        if (opts.dryRun) {
          const { writeOut } = await import('../output/index.js');
          await writeOut(ctx.io.stdout, describeRequests(requests));
          ctx.log.info('dry run: nothing was sent');
          return;
        }
        const admin: AdminCredentials = {
          clientId: opts.adminClient ?? settings.adminClientId,
          secret: await adminSecret(
            ctx,
            settings.adminSecret,
            opts.adminClient ?? settings.adminClientId,
            baseUrl,
          ),
        };
        const outcomes = await aidbox.sendAdminRequests(await ctx.http(), requests, admin);
        for (const o of outcomes) {
          if (o.result === 'absent') ctx.log.info(`${o.resourceType}/${o.id} was already gone`);
        }
        await printOutcomes(ctx, outcomes, 'unregistered');
      },
    );
}
