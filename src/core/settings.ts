import { resolve, isAbsolute } from 'node:path';
import { promises as fs, readFileSync } from 'node:fs';
import { SmartError, configError, fileSystemError, usageError } from './errors.js';
import { writeFileAtomic } from './fsutil.js';
import { resolvePaths, type Paths } from './paths.js';
import {
  PROFILE_KEYS,
  flagAttribute,
  flagOf,
  kebab,
  listOf,
  settingOf,
  type ProfileKey,
} from './settings/table.js';

export { PROFILE_KEYS, flagOf, kebab, listOf, resolvePaths, type Paths, type ProfileKey };

export type Profile = Partial<Record<ProfileKey, string>>;

export interface ConfigFile {
  currentProfile?: string;
  profiles: Record<string, Profile>;
}

/** Each key's environment variable (from the settings table). */
export const ENV_NAMES = Object.fromEntries(
  PROFILE_KEYS.map((k) => [k, settingOf(k).env]),
) as Record<ProfileKey, string>;

/**
 * Keys held as a list: a JSON array of strings in the config file, a comma-separated string
 * everywhere else (SMART_TRUST_ORIGIN, `smart config set`, Settings).
 */
export const LIST_KEYS: readonly ProfileKey[] = PROFILE_KEYS.filter((k) => settingOf(k).list);

export const DEFAULT_SCOPE = 'system/*.read';
export const DEFAULT_PROFILE = 'default';
export const DEFAULT_TIMEOUT_SECONDS = 30;

export type Source = 'flag' | 'env' | 'profile' | 'default' | 'derived';

export interface Settings extends Profile {
  /** The active profile's name (whether or not it exists in the file). */
  profile: string;
  /** Whether the active profile exists in the config file. */
  profileExists: boolean;
  scope: string;
  timeoutMs: number;
  paths: Paths;
  /** Admin secret for Aidbox-style registration, only ever from the environment. */
  adminSecret?: string;
  /** RFC 7591 initial access token, only ever from SMART_REGISTRATION_TOKEN (never saved). */
  registrationToken?: string;
  /** Admin client id: SMART_ADMIN_CLIENT, else Aidbox's BOX_ROOT_CLIENT_ID, else `root`. */
  adminClientId: string;
  /** Where each value came from, for `smart config list` and for error hints. */
  sources: Partial<Record<ProfileKey | 'profile' | 'timeout', Source>>;
}

type Env = Record<string, string | undefined>;

/** Read and validate the config file; a missing file is an empty config. */
export async function loadConfig(path: string): Promise<ConfigFile> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8'); // small and local: see readTextFile in fsutil.ts
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { profiles: {} };
    throw (
      fileSystemError(e, { path, operation: 'read', what: 'config file' }) ??
      configError(`cannot read config file ${path}: ${(e as Error).message}`, undefined, {
        cause: e,
      })
    );
  }
  if (text.trim() === '') return { profiles: {} };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw configError(
      `config file ${path} is not valid JSON: ${(e as Error).message}`,
      `fix the JSON in ${path}, or move the file away to start afresh (\`smart config path\` prints where it is)`,
      { cause: e },
    );
  }
  return validateConfig(raw, path);
}

export function validateConfig(raw: unknown, path: string): ConfigFile {
  const bad = (where: string, what: string, hint?: string) =>
    configError(
      `config file ${path}: ${where} ${what}`,
      hint ??
        `edit ${path} (\`smart config path\` prints where it is), or fix the value with \`smart config set\``,
      { code: 'bad_config', details: { key: where } },
    );
  if (!raw || typeof raw !== 'object' || Array.isArray(raw))
    throw bad('the top level', 'must be a JSON object');
  const obj = raw as Record<string, unknown>;
  for (const k of Object.keys(obj)) {
    if (k !== 'currentProfile' && k !== 'profiles')
      throw bad(`key "${k}"`, 'is not a known key (expected currentProfile, profiles)');
  }
  if (obj.currentProfile !== undefined && typeof obj.currentProfile !== 'string') {
    throw bad('"currentProfile"', 'must be a string');
  }
  const profiles: Record<string, Profile> = {};
  if (obj.profiles !== undefined) {
    if (!obj.profiles || typeof obj.profiles !== 'object' || Array.isArray(obj.profiles)) {
      throw bad('"profiles"', 'must be an object of profiles');
    }
    for (const [name, p] of Object.entries(obj.profiles as Record<string, unknown>)) {
      if (!p || typeof p !== 'object' || Array.isArray(p))
        throw bad(`profile "${name}"`, 'must be an object');
      const profile: Profile = {};
      for (const [k, v] of Object.entries(p as Record<string, unknown>)) {
        if (!(PROFILE_KEYS as readonly string[]).includes(k)) {
          throw bad(
            `profiles.${name}.${k}`,
            `is not a known key (known: ${PROFILE_KEYS.join(', ')})`,
            `remove it with \`smart --profile ${name} config unset ${k}\`, or edit ${path}`,
          );
        }
        let value: string;
        if (LIST_KEYS.includes(k as ProfileKey)) {
          if (!Array.isArray(v) || v.some((x) => typeof x !== 'string'))
            throw bad(`profiles.${name}.${k}`, 'must be an array of strings');
          value = (v as string[]).join(',');
        } else if (typeof v !== 'string') {
          throw bad(`profiles.${name}.${k}`, 'must be a string');
        } else value = v;
        const problem = checkValue(k as ProfileKey, value);
        if (problem) throw bad(`profiles.${name}.${k}`, problem);
        if (value !== '' || !LIST_KEYS.includes(k as ProfileKey)) profile[k as ProfileKey] = value;
      }
      profiles[name] = profile;
    }
  }
  return { currentProfile: obj.currentProfile as string | undefined, profiles };
}

/** A boolean setting (`insecure`) as stored: true, 1 or yes. */
export function isTrue(value: string | undefined): boolean {
  return value !== undefined && ['true', '1', 'yes'].includes(value.toLowerCase());
}

/** A reason the value is unusable for that key, or undefined when it is fine. */
export function checkValue(key: ProfileKey, value: string): string | undefined {
  return settingOf(key).check?.(value);
}

export async function saveConfig(path: string, config: ConfigFile): Promise<void> {
  // List keys go to the file as arrays.
  const profiles = Object.fromEntries(
    Object.entries(config.profiles).map(([name, p]) => [
      name,
      Object.fromEntries(
        Object.entries(p).map(([k, v]) => [k, LIST_KEYS.includes(k as ProfileKey) ? listOf(v) : v]),
      ),
    ]),
  );
  await writeFileAtomic(path, JSON.stringify({ ...config, profiles }, null, 2) + '\n', {
    mode: 0o600,
  });
}

/** Set (or, with undefined, remove) keys of one profile, creating the profile and file as needed. */
export async function updateProfile(
  path: string,
  profile: string,
  patch: Partial<Record<ProfileKey, string | undefined>>,
): Promise<ConfigFile> {
  const config = await loadConfig(path);
  const current: Profile = { ...(config.profiles[profile] ?? {}) };
  for (const [k, v] of Object.entries(patch) as [ProfileKey, string | undefined][]) {
    if (v === undefined) delete current[k];
    else {
      const problem = checkValue(k, v);
      if (problem) throw usageError(`${k}: ${problem}`);
      current[k] = v;
    }
  }
  config.profiles[profile] = current;
  if (!config.currentProfile) config.currentProfile = profile;
  await saveConfig(path, config);
  return config;
}

/** Which profile is active: --profile > SMART_PROFILE > currentProfile in the file > "default". */
export function selectProfile(
  flag: string | undefined,
  env: Env,
  config: ConfigFile,
): { name: string; source: Source } {
  if (flag) return { name: flag, source: 'flag' };
  if (env.SMART_PROFILE) return { name: env.SMART_PROFILE, source: 'env' };
  if (config.currentProfile) return { name: config.currentProfile, source: 'profile' };
  return { name: DEFAULT_PROFILE, source: 'default' };
}

/** Make a profile the current one; an unknown name is an error unless `create`. */
export async function useProfile(
  path: string,
  name: string,
  options: { create?: boolean } = {},
): Promise<{ config: ConfigFile; created: boolean }> {
  const config = await loadConfig(path);
  let created = false;
  if (!(name in config.profiles)) {
    if (!options.create) {
      const known = Object.keys(config.profiles);
      throw configError(
        `profile "${name}" does not exist in ${path}`,
        known.length
          ? `known profiles: ${known.join(', ')}; pass --create to make an empty one, or run \`smart init --profile ${name}\``
          : `no profiles yet; run \`smart init --profile ${name}\`, or pass --create`,
        { code: 'no_profile', details: { known } },
      );
    }
    config.profiles[name] = {};
    created = true;
  }
  config.currentProfile = name;
  await saveConfig(path, config);
  return { config, created };
}

export interface ResolveInput {
  flags: Partial<Record<Exclude<ProfileKey, 'insecure' | 'trustedOrigins'>, string | undefined>> & {
    profile?: string;
    timeout?: number;
    insecure?: boolean;
    /** --trust-origin, repeatable. */
    trustOrigin?: string[];
  };
  env: Env;
  cwd: string;
}

/**
 * The one resolver: flag > SMART_* environment variable > profile > default.
 * Discovery (token URL) is applied later, by the code that needs it.
 */
export async function resolveSettings(input: ResolveInput): Promise<Settings> {
  const { flags, env, cwd } = input;
  const paths = resolvePaths(env);
  const config = await loadConfig(paths.configFile);
  const sources: Settings['sources'] = {};

  const active = selectProfile(flags.profile, env, config);
  const profile = active.name;
  sources.profile = active.source;
  const profileExists = profile in config.profiles;
  if (!profileExists && (sources.profile === 'flag' || sources.profile === 'env')) {
    const known = Object.keys(config.profiles);
    throw configError(
      `profile "${profile}" does not exist in ${paths.configFile}`,
      known.length
        ? `known profiles: ${known.join(', ')}; create it with \`smart init --profile ${profile}\``
        : `create it with \`smart init --profile ${profile}\``,
      { code: 'no_profile' },
    );
  }
  const fromProfile = config.profiles[profile] ?? {};

  const values: Profile = {};
  for (const key of PROFILE_KEYS) {
    // A switch (--insecure) is the string "true"; a list flag (--trust-origin) repeats.
    const spec = settingOf(key);
    const given = (flags as Record<string, unknown>)[flagAttribute(key)];
    const flag = spec.boolean
      ? given
        ? 'true'
        : undefined
      : Array.isArray(given)
        ? given.join(',')
        : typeof given === 'string'
          ? given
          : undefined;
    const fromEnv = env[ENV_NAMES[key]];
    let value: string | undefined;
    // An empty flag is a mistake (an unset shell variable, `--scope ''`), never a silent fallback.
    if (flag !== undefined && flag.trim() === '') {
      throw usageError(
        `${flagOf(key)} is empty`,
        `give a value, or leave ${flagOf(key)} out to use ${ENV_NAMES[key]} or the profile's ${key}`,
        { code: 'empty_value' },
      );
    }
    if (flag !== undefined) {
      value = flag;
      sources[key] = 'flag';
    } else if (fromEnv !== undefined && fromEnv !== '') {
      value = fromEnv;
      sources[key] = 'env';
    } else if (fromProfile[key] !== undefined) {
      value = fromProfile[key];
      sources[key] = 'profile';
    }
    if (value === undefined) continue;
    const problem = checkValue(key, value);
    if (problem) {
      const where =
        sources[key] === 'flag'
          ? flagOf(key)
          : sources[key] === 'env'
            ? ENV_NAMES[key]
            : `profile "${profile}" key ${key}`;
      throw new SmartError(sources[key] === 'profile' ? 'config' : 'usage', `${where}: ${problem}`);
    }
    values[key] = value;
  }

  // Relative paths in flags/env are relative to the working directory.
  for (const key of PROFILE_KEYS) {
    const v = values[key];
    if (settingOf(key).isPath && v && !isAbsolute(v)) values[key] = resolve(cwd, v);
  }

  // A profile's alg belongs to the profile's key: with a key from a flag or SMART_KEY and no
  // --alg/SMART_ALG, the alg is derived from that key (loadSigningKey), not taken from the profile.
  if (
    sources.alg === 'profile' &&
    (sources.key === 'flag' || sources.key === 'env') &&
    values.key !== (fromProfile.key && resolve(cwd, fromProfile.key))
  ) {
    delete values.alg;
    delete sources.alg;
  }

  if (values.baseUrl) values.baseUrl = values.baseUrl.replace(/\/+$/, '');
  if (values.serverUrl) values.serverUrl = new URL(values.serverUrl).origin;
  if (values.trustedOrigins !== undefined) {
    values.trustedOrigins = listOf(values.trustedOrigins)
      .map((o) => new URL(o).origin)
      .join(',');
  }
  if (values.fhirUrl) values.fhirUrl = values.fhirUrl.replace(/\/+$/, '');
  else if (values.baseUrl) {
    values.fhirUrl = `${values.baseUrl}/fhir`;
    sources.fhirUrl = 'derived';
  }
  if (!values.baseUrl && values.fhirUrl) {
    values.baseUrl = new URL(values.fhirUrl).origin;
    sources.baseUrl = 'derived';
  }
  if (!values.scope) sources.scope = 'default';

  let timeoutSeconds = DEFAULT_TIMEOUT_SECONDS;
  sources.timeout = 'default';
  if (flags.timeout !== undefined) {
    timeoutSeconds = flags.timeout;
    sources.timeout = 'flag';
  } else if (env[settingOf('timeout').env]) {
    timeoutSeconds = Number(env[settingOf('timeout').env]);
    sources.timeout = 'env';
    if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0) {
      throw usageError(`SMART_TIMEOUT: "${env.SMART_TIMEOUT}" is not a positive number of seconds`);
    }
  }

  return {
    ...values,
    scope: values.scope ?? DEFAULT_SCOPE,
    profile,
    profileExists,
    timeoutMs: Math.round(timeoutSeconds * 1000),
    paths,
    adminSecret:
      env.SMART_ADMIN_SECRET || env.BOX_ROOT_CLIENT_SECRET || env.AIDBOX_CLIENT_SECRET || undefined,
    registrationToken: env.SMART_REGISTRATION_TOKEN || undefined,
    adminClientId:
      env.SMART_ADMIN_CLIENT || env.BOX_ROOT_CLIENT_ID || env.AIDBOX_CLIENT_ID || 'root',
    sources,
  };
}

/** A setting the command cannot run without: an error that says every way to give it. */
export function requireSetting<K extends ProfileKey>(
  settings: Settings,
  key: K,
  forWhat: string,
): string {
  const v = settings[key];
  if (v) return v;
  throw usageError(
    `no ${describeKey(key)} configured (needed ${forWhat})`,
    `pass ${flagOf(key)}, set ${ENV_NAMES[key]}, or save it with \`smart config set ${key} <value>\``,
    { code: 'missing_setting', details: { key } },
  );
}

export function describeKey(key: ProfileKey): string {
  return settingOf(key).describe;
}

function noSuchProfile(path: string, name: string, config: ConfigFile): SmartError {
  const known = Object.keys(config.profiles);
  return configError(
    `profile "${name}" does not exist in ${path}`,
    known.length ? `known profiles: ${known.join(', ')}` : 'no profiles yet; run `smart init`',
    { code: 'no_profile', details: { known } },
  );
}

/** Remove a profile; the file then has no current profile if it was that one. */
export async function deleteProfile(
  path: string,
  name: string,
): Promise<{ config: ConfigFile; wasCurrent: boolean }> {
  const config = await loadConfig(path);
  if (!(name in config.profiles)) throw noSuchProfile(path, name, config);
  delete config.profiles[name];
  const wasCurrent = config.currentProfile === name;
  if (wasCurrent) delete config.currentProfile;
  await saveConfig(path, config);
  return { config, wasCurrent };
}

/** Give a profile a new name (the current profile keeps being current). */
export async function renameProfile(
  path: string,
  from: string,
  to: string,
): Promise<{ config: ConfigFile; wasCurrent: boolean }> {
  const config = await loadConfig(path);
  if (!(from in config.profiles)) throw noSuchProfile(path, from, config);
  if (to.trim() === '') throw usageError('the new profile name is empty');
  if (to in config.profiles) {
    throw usageError(
      `profile "${to}" already exists in ${path}`,
      `pick another name, or delete it first with \`smart config delete ${to}\``,
      { code: 'profile_exists' },
    );
  }
  // Rebuild the object so that the renamed profile keeps its place in the file.
  const profiles: Record<string, Profile> = {};
  for (const [k, v] of Object.entries(config.profiles)) profiles[k === from ? to : k] = v;
  config.profiles = profiles;
  const wasCurrent = config.currentProfile === from;
  if (wasCurrent) config.currentProfile = to;
  await saveConfig(path, config);
  return { config, wasCurrent };
}

/**
 * Remove a key the config file should not hold from the profile `config unset` targets, without
 * validating the rest of the file (which names that key as unknown). The profile's name when it
 * was there; undefined when it was not (the caller then reports an unknown key).
 */
export async function removeUnknownKey(
  path: string,
  key: string,
  profileFlag: string | undefined,
  env: Env,
): Promise<string | undefined> {
  let raw: unknown;
  try {
    raw = JSON.parse(await fs.readFile(path, 'utf8'));
  } catch {
    return undefined;
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return undefined;
  const obj = raw as { currentProfile?: unknown; profiles?: unknown };
  const profiles = obj.profiles as Record<string, Record<string, unknown>> | undefined;
  const name =
    profileFlag ||
    env.SMART_PROFILE ||
    (typeof obj.currentProfile === 'string' ? obj.currentProfile : DEFAULT_PROFILE);
  const profile = profiles?.[name];
  if (!profile || typeof profile !== 'object' || !(key in profile)) return undefined;
  delete profile[key];
  await writeFileAtomic(path, JSON.stringify(raw, null, 2) + '\n', { mode: 0o600 });
  return name;
}
