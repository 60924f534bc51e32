import type { Command } from 'commander';
import { isAbsolute, resolve } from 'node:path';
import type { Context } from '../context.js';
import { SmartError, usageError } from '../core/errors.js';
import type { Settings, Source } from '../core/settings.js';
import { PROFILE_KEYS, settingOf, type ProfileKey } from '../core/settings/table.js';
import type { RecordsResult } from '../output/results.js';

// From the settings table (a light module: `--help` does not load settings.ts).
export const CONFIG_KEYS: readonly ProfileKey[] = PROFILE_KEYS;

const PATH_KEYS: readonly ProfileKey[] = PROFILE_KEYS.filter((k) => settingOf(k).isPath);

/** The key as a ProfileKey, or an error with a did-you-mean (and a word about secrets). */
export async function checkConfigKey(key: string): Promise<ProfileKey> {
  if ((CONFIG_KEYS as readonly string[]).includes(key)) return key as ProfileKey;
  if (/secret|password|passwd|token$/i.test(key) && !/url/i.test(key)) {
    throw usageError(
      `"${key}" cannot be stored in the config file: secrets never are`,
      'the admin secret comes from the environment: export SMART_ADMIN_SECRET=... (or BOX_ROOT_CLIENT_SECRET)',
      { code: 'secret_key' },
    );
  }
  const { didYouMean } = await import('../core/suggest.js');
  const guess = didYouMean(key, CONFIG_KEYS);
  throw usageError(
    `unknown config key "${key}"${guess ? ` (did you mean ${guess}?)` : ''}`,
    `known keys: ${CONFIG_KEYS.join(', ')}`,
    { code: 'unknown_key' },
  );
}

/** The profile that `set`/`unset` write to; unlike the resolver, a new name is fine here. */
async function targetProfile(ctx: Context): Promise<{ name: string; configFile: string }> {
  const { resolvePaths, loadConfig, selectProfile } = await import('../core/settings.js');
  const paths = resolvePaths(ctx.env);
  const config = await loadConfig(paths.configFile);
  return {
    name: selectProfile(ctx.globals.profile, ctx.env, config).name,
    configFile: paths.configFile,
  };
}

function rowsOf(settings: Settings): Array<{ key: string; value: string; source: Source | '-' }> {
  const rows: Array<{ key: string; value: string; source: Source | '-' }> = [
    { key: 'profile', value: settings.profile, source: settings.sources.profile ?? 'default' },
  ];
  for (const key of CONFIG_KEYS) {
    const value = settings[key];
    rows.push({
      key,
      value: value ?? '',
      source: value === undefined ? '-' : (settings.sources[key] ?? 'default'),
    });
  }
  rows.push({
    key: 'timeout',
    value: `${settings.timeoutMs / 1000}`,
    source: settings.sources.timeout ?? 'default',
  });
  return rows;
}

export function registerConfig(program: Command, ctx: Context): void {
  const config = program
    .command('config')
    // `smart config` alone shows this help on stderr (program.ts drops Commander's writeErr).
    .configureOutput({
      writeOut: (s) => void ctx.io.stdout.write(s),
      writeErr: (s) => void ctx.io.stderr.write(s),
      outputError: () => undefined,
    })
    .description('Read and write settings in the config file (profiles)')
    .addHelpText(
      'after',
      `
Keys: ${CONFIG_KEYS.slice(0, 7).join(', ')},
  ${CONFIG_KEYS.slice(7).join(', ')}.
Precedence: flag > SMART_* environment variable > profile > default.
Secrets are never stored: the admin secret comes from SMART_ADMIN_SECRET.

Examples:
  $ smart config set baseUrl https://aidbox.example.com
  $ smart config get fhirUrl
  $ smart config list
  $ smart --profile staging config set clientId my-client
  $ smart config profiles
  $ smart config use staging
  $ smart config rename staging stage; smart config delete old --yes
`,
    );

  config
    .command('set <key> <value>')
    .description('Save a value in the active profile (or the one named by --profile)')
    .addHelpText(
      'after',
      `
Examples:
  $ smart config set baseUrl http://localhost:8080
  $ smart config set key ./keys/private-rs384-Ab12Cd34.pem
  $ smart config set scope "system/Patient.rs system/Observation.rs" --profile prod
`,
    )
    .action(async (rawKey: string, rawValue: string) => {
      const key = await checkConfigKey(rawKey);
      const { name, configFile } = await targetProfile(ctx);
      let value = rawValue;
      if (key === 'alg') {
        const { checkAlg } = await import('../core/auth/keys.js');
        value = checkAlg(rawValue);
      }
      if (PATH_KEYS.includes(key) && !isAbsolute(value)) value = resolve(ctx.cwd, value);
      const { updateProfile } = await import('../core/settings.js');
      await updateProfile(configFile, name, { [key]: value });
      if (PATH_KEYS.includes(key)) {
        const { existsSync } = await import('node:fs');
        if (!existsSync(value)) ctx.log.warn(`${value} does not exist (yet)`);
      }
      ctx.log.info(`set ${key} in profile "${name}" (${configFile})`);
    });

  config
    .command('get <key>')
    .description('Print the resolved value of a setting (flag > env > profile > default)')
    .addHelpText(
      'after',
      `
Examples:
  $ smart config get fhirUrl
  $ curl -H "Authorization: Bearer $(smart token)" "$(smart config get fhirUrl)/Patient"
`,
    )
    .action(async (rawKey: string) => {
      const { outputFor } = await import('./shared.js');
      const output = await outputFor(ctx, 'text', 'config get');
      const settings = await ctx.settings();
      const key = rawKey === 'profile' ? 'profile' : await checkConfigKey(rawKey);
      const value = key === 'profile' ? settings.profile : settings[key];
      if (value === undefined) {
        throw new SmartError('runtime', `${key} is not set (profile "${settings.profile}")`, {
          code: 'not_set',
          hint: `set it with \`smart config set ${key} <value>\``,
        });
      }
      await output.show({
        kind: 'text',
        text: String(value),
        json: { key, value, source: settings.sources[key] },
      });
    });

  config
    .command('list')
    .description('Show the resolved settings of the active profile and where each comes from')
    .option('--all', 'show what every profile in the config file holds (no flags or environment)')
    .addHelpText(
      'after',
      `
--profile <name> (global) lists another profile than the current one.

Examples:
  $ smart config list
  $ smart config list --profile staging
  $ smart config list --all
  $ SMART_SCOPE=system/Patient.rs smart config list -o json
`,
    )
    .action(async (opts: { all?: boolean }) => {
      const { outputFor } = await import('./shared.js');
      const output = await outputFor(ctx, 'records', 'config list');
      if (opts.all) return listAll(ctx, output.show);
      const settings = await ctx.settings();
      const rows = rowsOf(settings);
      const values: Record<string, { value: string; source: string }> = {};
      for (const r of rows)
        if (r.source !== '-') values[r.key] = { value: r.value, source: r.source };
      await output.show({
        kind: 'records',
        rows,
        columns: [
          { header: 'key', get: (r: (typeof rows)[number]) => r.key },
          { header: 'value', get: (r: (typeof rows)[number]) => r.value },
          { header: 'source', get: (r: (typeof rows)[number]) => r.source },
        ],
        document: {
          profile: settings.profile,
          profileExists: settings.profileExists,
          configFile: settings.paths.configFile,
          settings: values,
          adminSecret: settings.adminSecret ? 'set (from the environment)' : 'not set',
        },
        note: `profile "${settings.profile}"${settings.profileExists ? '' : ' (not in the config file)'}, ${settings.paths.configFile}`,
      });
    });

  config
    .command('path')
    .description('Print the config file path (without reading the file: works when it is broken)')
    .addHelpText(
      'after',
      `
Examples:
  $ smart config path
  $ "$EDITOR" "$(smart config path)"
`,
    )
    .action(async () => {
      const { resolvePaths } = await import('../core/settings.js');
      ctx.io.stdout.write(`${resolvePaths(ctx.env).configFile}\n`);
    });

  config
    .command('unset <key>')
    .description('Remove a value from the active profile (or the one named by --profile)')
    .addHelpText(
      'after',
      `
Examples:
  $ smart config unset tokenUrl
  $ smart config unset alg --profile staging
`,
    )
    .action(async (rawKey: string) => {
      // A key the file should not hold (the config file names it as unknown): removed as is,
      // without validating the rest of the file first.
      if (!(CONFIG_KEYS as readonly string[]).includes(rawKey)) {
        const { removeUnknownKey, resolvePaths } = await import('../core/settings.js');
        const file = resolvePaths(ctx.env).configFile;
        const removed = await removeUnknownKey(file, rawKey, ctx.globals.profile, ctx.env);
        if (removed) {
          ctx.log.info(`removed unknown key ${rawKey} from profile "${removed}" (${file})`);
          return;
        }
      }
      const key = await checkConfigKey(rawKey);
      const { name, configFile } = await targetProfile(ctx);
      const { loadConfig, updateProfile } = await import('../core/settings.js');
      const current = await loadConfig(configFile);
      const profile = current.profiles[name];
      if (!profile) {
        const known = Object.keys(current.profiles);
        throw new SmartError('config', `profile "${name}" does not exist in ${configFile}`, {
          code: 'no_profile',
          hint: known.length
            ? `known profiles: ${known.join(', ')}`
            : 'no profiles yet; run `smart init`',
        });
      }
      if (profile[key] === undefined) {
        ctx.log.info(`${key} was not set in profile "${name}"`);
        return;
      }
      await updateProfile(configFile, name, { [key]: undefined });
      ctx.log.info(`unset ${key} in profile "${name}" (${configFile})`);
    });

  config
    .command('use <profile>')
    .description('Make a profile the current one')
    .option('--create', 'create the profile (empty) if it does not exist')
    .addHelpText(
      'after',
      `
Examples:
  $ smart config use staging
  $ smart config use local --create
`,
    )
    .action(async (name: string, opts: { create?: boolean }) => {
      const { resolvePaths, useProfile } = await import('../core/settings.js');
      const { configFile } = resolvePaths(ctx.env);
      const { created } = await useProfile(configFile, name, { create: opts.create });
      ctx.log.info(
        `${created ? 'created profile' : 'now using profile'} "${name}"${created ? ', now current' : ''} (${configFile})`,
      );
      if (ctx.env.SMART_PROFILE && ctx.env.SMART_PROFILE !== name) {
        ctx.log.warn(`SMART_PROFILE=${ctx.env.SMART_PROFILE} is set and takes precedence`);
      }
    });

  config
    .command('profiles')
    .description('List the profiles: the current one marked, with base URL and client id')
    .option('--names', 'print the names only, one per line (for scripts and shell completion)')
    .addHelpText(
      'after',
      `
The current profile (marked *) is the one commands use without --profile: SMART_PROFILE if set,
else the config file's currentProfile. -o json prints [{name, current, baseUrl, clientId}].

Examples:
  $ smart config profiles
  $ smart config profiles --names
  $ smart config profiles -o json | jq -r '.[] | select(.current) | .name'
`,
    )
    .action(async (opts: { names?: boolean }) => {
      const [{ resolvePaths, loadConfig, selectProfile }, out, { outputFor }] = await Promise.all([
        import('../core/settings.js'),
        import('../output/index.js'),
        import('./shared.js'),
      ]);
      const output = await outputFor(ctx, 'records', 'config profiles');
      const { configFile } = resolvePaths(ctx.env);
      const file = await loadConfig(configFile);
      const names = Object.keys(file.profiles);
      if (opts.names) {
        await out.writeOut(ctx.io.stdout, names.map((n) => `${n}\n`).join(''));
        return;
      }
      const current = selectProfile(undefined, ctx.env, file).name;
      const rows = names.map((name) => ({
        name,
        current: name === current,
        baseUrl: file.profiles[name]!.baseUrl ?? file.profiles[name]!.fhirUrl,
        clientId: file.profiles[name]!.clientId,
      }));
      await output.show({
        kind: 'records',
        rows,
        columns: [
          { header: 'current', get: (r: (typeof rows)[number]) => (r.current ? '*' : '') },
          { header: 'profile', get: (r: (typeof rows)[number]) => r.name },
          { header: 'base URL', get: (r: (typeof rows)[number]) => r.baseUrl ?? '' },
          { header: 'client id', get: (r: (typeof rows)[number]) => r.clientId ?? '' },
        ],
        empty: `no profiles yet in ${configFile}; create one with \`smart init\``,
        after: names.includes(current)
          ? undefined
          : `the current profile "${current}" is not in ${configFile}`,
      });
    });

  config
    .command('delete <name>')
    .description('Delete a profile from the config file (asks first on a terminal)')
    .option('-y, --yes', 'delete without asking (needed without a terminal)')
    .addHelpText(
      'after',
      `
Keys and caches stay where they are. Without a terminal (or with --no-input) it needs --yes,
else it exits 2.

Examples:
  $ smart config delete staging
  $ smart config delete staging --yes
`,
    )
    .action(async (name: string, opts: { yes?: boolean }) => {
      const { resolvePaths, loadConfig, deleteProfile } = await import('../core/settings.js');
      const { configFile } = resolvePaths(ctx.env);
      const file = await loadConfig(configFile);
      if (!(name in file.profiles)) {
        // The same error deleteProfile gives, before any prompt.
        await deleteProfile(configFile, name);
      }
      if (!opts.yes) {
        if (!ctx.interactive()) {
          throw usageError(
            `not deleting profile "${name}" without confirmation`,
            `pass --yes to delete it: smart config delete ${name} --yes`,
            { code: 'needs_yes' },
          );
        }
        const { confirm } = await import('./shared.js');
        const summary = [file.profiles[name]!.baseUrl, file.profiles[name]!.clientId]
          .filter(Boolean)
          .join(', ');
        if (!(await confirm(ctx, `Delete profile "${name}"${summary ? ` (${summary})` : ''}?`))) {
          ctx.log.info(`kept profile "${name}"`);
          return;
        }
      }
      const { wasCurrent } = await deleteProfile(configFile, name);
      ctx.log.info(`deleted profile "${name}" (${configFile})`);
      if (wasCurrent) {
        ctx.log.info(
          'it was the current profile; choose another with `smart config use <name>` (`smart config profiles` lists them)',
        );
      }
      if (ctx.env.SMART_PROFILE === name) {
        ctx.log.warn(`SMART_PROFILE=${name} is set: unset it, the profile is gone`);
      }
    });

  config
    .command('rename <old> <new>')
    .description('Rename a profile (it stays the current one if it was)')
    .addHelpText(
      'after',
      `
Examples:
  $ smart config rename default local
`,
    )
    .action(async (from: string, to: string) => {
      const { resolvePaths, renameProfile } = await import('../core/settings.js');
      const { configFile } = resolvePaths(ctx.env);
      const { wasCurrent } = await renameProfile(configFile, from, to);
      ctx.log.info(
        `renamed profile "${from}" to "${to}"${wasCurrent ? ', still the current one' : ''} (${configFile})`,
      );
      if (ctx.env.SMART_PROFILE === from) {
        ctx.log.warn(`SMART_PROFILE=${from} is set: change it to ${to}`);
      }
    });
}

/** `config list --all`: what each profile holds in the file, flags and environment aside. */
async function listAll(
  ctx: Context,
  show: (result: RecordsResult) => Promise<void>,
): Promise<void> {
  const { resolvePaths, loadConfig, selectProfile } = await import('../core/settings.js');
  const { configFile } = resolvePaths(ctx.env);
  const file = await loadConfig(configFile);
  const current = selectProfile(undefined, ctx.env, file).name;
  const names = Object.keys(file.profiles);
  const rows = names.flatMap((name) => {
    const profile = file.profiles[name]!;
    const label = name === current ? `${name} *` : name;
    const entries = Object.entries(profile) as Array<[string, string]>;
    return entries.length
      ? entries.map(([key, value]) => ({ profile: label, key, value }))
      : [{ profile: label, key: '', value: '(empty)' }];
  });
  await show({
    kind: 'records',
    rows,
    columns: [
      { header: 'profile', get: (r: (typeof rows)[number]) => r.profile },
      { header: 'key', get: (r: (typeof rows)[number]) => r.key },
      { header: 'value', get: (r: (typeof rows)[number]) => r.value },
    ],
    document: { configFile, currentProfile: current, profiles: file.profiles },
    empty: `no profiles yet in ${configFile}; create one with \`smart init\``,
    note: `${names.length} profile${names.length === 1 ? '' : 's'} in ${configFile}`,
  });
}
