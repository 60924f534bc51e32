import type { Command } from 'commander';
import { isAbsolute, resolve } from 'node:path';
import type { Context } from '../context.js';
import { usageError } from '../core/errors.js';
import type { Profile } from '../core/settings.js';
import { PROFILE_KEYS, settingOf, type ProfileKey } from '../core/settings/table.js';

/** What the wizard asks, in the settings table's order: the rows with a prompt. */
const FIELDS: Array<{ key: ProfileKey; message: string }> = PROFILE_KEYS.flatMap((key) => {
  const message = settingOf(key).prompt;
  return message ? [{ key, message }] : [];
});

async function prompt(ctx: Context, existing: Profile, given: Profile): Promise<Profile> {
  const [{ default: inquirer }, { checkValue }] = await Promise.all([
    import('inquirer'),
    import('../core/settings.js'),
  ]);
  // Prompts go to stderr: stdout stays data only.
  const ask = inquirer.createPromptModule({ input: ctx.io.stdin, output: ctx.io.stderr });
  const replies = await ask<Record<string, string>>(
    FIELDS.map((f) => ({
      type: 'input' as const,
      name: f.key,
      message: f.message,
      default: given[f.key] ?? existing[f.key],
      validate: (v: string) => (v.trim() === '' ? true : (checkValue(f.key, v.trim()) ?? true)),
    })),
  );
  const answers: Profile = {};
  for (const f of FIELDS) {
    const v = (replies[f.key] ?? '').trim();
    if (v !== '') answers[f.key] = v;
  }
  return answers;
}

export function registerInit(program: Command, ctx: Context): void {
  program
    .command('init')
    .description('Create or update a profile: a wizard on a terminal, or from flags')
    .addHelpText(
      'after',
      `
Reads --profile, --base-url, --fhir-url, --token-url, --client-id, --key, --scope, --alg and
--insecure (saved as insecure: true, for a plain-http server on a private network).
Without a terminal (or with --no-input) it takes the flags only, and needs --base-url or --fhir-url.
The profile becomes the current one.

Examples:
  $ smart init
  $ smart init --profile local --base-url http://localhost:8080 --client-id my-client \\
      --key ./keys/private-rs384-Ab12Cd34.pem
  $ smart init --no-input --profile prod --fhir-url https://fhir.example.org/r4
`,
    )
    .action(async () => {
      const { resolvePaths, loadConfig, selectProfile, updateProfile, useProfile } =
        await import('../core/settings.js');
      const paths = resolvePaths(ctx.env);
      const config = await loadConfig(paths.configFile);
      const name = selectProfile(ctx.globals.profile, ctx.env, config).name;
      const existing = config.profiles[name] ?? {};
      const given: Profile = {};
      for (const f of FIELDS) {
        const v = ctx.globals[f.key as keyof typeof ctx.globals];
        if (typeof v === 'string' && v !== '') given[f.key] = v;
      }
      // A plain-http server on a private network: remember the permission with the server.
      if (ctx.globals.insecure) given.insecure = 'true';

      let values: Profile;
      if (ctx.interactive()) {
        ctx.log.info(
          `Setting up profile "${name}" in ${paths.configFile} (Enter keeps the value shown)`,
        );
        values = await prompt(ctx, existing, given);
      } else {
        values = given;
        if (!values.baseUrl && !values.fhirUrl && !existing.baseUrl && !existing.fhirUrl) {
          throw usageError(
            'smart init needs a server: no --base-url or --fhir-url given',
            'pass --base-url <origin> (or --fhir-url <url>); run it on a terminal without --no-input for the wizard',
            { code: 'missing_setting' },
          );
        }
      }

      if (values.alg) {
        const { checkAlg } = await import('../core/auth/keys.js');
        values.alg = checkAlg(values.alg);
      }
      for (const k of PROFILE_KEYS) {
        const v = values[k];
        if (settingOf(k).isPath && v && !isAbsolute(v)) values[k] = resolve(ctx.cwd, v);
      }
      if (values.key) {
        const { existsSync } = await import('node:fs');
        if (!existsSync(values.key)) ctx.log.warn(`key file ${values.key} does not exist (yet)`);
      }
      await updateProfile(paths.configFile, name, values);
      const { config: saved } = await useProfile(paths.configFile, name);
      const profile = saved.profiles[name] ?? {};
      ctx.log.info(`wrote profile "${name}" to ${paths.configFile}; it is now the current profile`);
      if (!profile.key)
        ctx.log.info('next: `smart keygen` creates a key and saves it in this profile');
      else if (!profile.clientId) ctx.log.info('next: `smart config set clientId <id>`');

      const { outputFor } = await import('./shared.js');
      await (
        await outputFor(ctx, 'object', 'init')
      ).show({
        kind: 'object',
        value: { profile: name, configFile: paths.configFile, ...profile },
      });
    });
}
