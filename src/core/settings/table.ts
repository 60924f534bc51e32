import { SmartError } from '../errors.js';
import { SERVER_KINDS } from '../registration/types.js';

// Every setting, once, as data. This row drives the global option and its --help line
// (src/program.ts), the resolver (flag > SMART_* env > profile > default, src/core/settings.ts),
// `smart config get/set/list/unset` (the keys and their checks), the `smart init` prompts and
// the README's table of global options (`node scripts/render-settings.mjs`; a test fails when
// README.md is behind). A row that is not global is a command's own option: the command names
// its key in `addSettingOptions(cmd, [...])` (src/commands/options.ts), which makes the flag, its
// help line and its parsing from the row. Adding a setting is one row here.
// Light on purpose: program.ts reads it on every run, --help included.

/** One setting. */
export interface SettingSpec {
  /** Its name in a profile, in `smart config`, and in Settings. */
  readonly key: string;
  /** The flag without `--`, when it is not the key in kebab case. */
  readonly flag?: string;
  /** The flag's value in help, e.g. `<url>`; none for a switch. */
  readonly arg?: string;
  /** Its environment variable. */
  readonly env: string;
  /** A noun for messages: "no client id configured". */
  readonly describe: string;
  /** The --help line, without the default and the environment variable (both added). */
  readonly help: string;
  /** The default as --help says it: `default 30`, `default: discovered`. */
  readonly helpDefault?: string;
  /** The README's words, when they say more than --help. */
  readonly readme?: string;
  /** The flag's placeholder in the README, when not `arg`. */
  readonly readmeArg?: string;
  /**
   * A global option of every command; else a command's own option, declared by the command with
   * `addSettingOptions(cmd, [key])` from this row.
   */
  readonly global: boolean;
  /** Kept in a profile of the config file (`smart config set` takes it). */
  readonly stored: boolean;
  /** A file path: relative to the working directory when given, absolute once stored. */
  readonly isPath?: boolean;
  /**
   * A list: a JSON array in the config file, comma-separated in the environment and
   * `smart config set`; its flag repeats.
   */
  readonly list?: boolean;
  /** A switch stored as `true`/`false`. */
  readonly boolean?: boolean;
  /** Never stored, never printed in full (none of the stored keys is). */
  readonly secret?: boolean;
  /** Why a value is unusable, or undefined when it is fine. */
  readonly check?: (value: string) => string | undefined;
  /** The flag's value as Commander parses it (a usage error when it is not one). */
  readonly parse?: (value: string) => unknown;
  /** `smart init` asks for it, with this question. */
  readonly prompt?: string;
}

function url(value: string): string | undefined {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    return `"${value}" is not an absolute URL`;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return `"${value}" must be an http(s) URL`;
  return undefined;
}

const BOOLEAN_VALUES = new Set(['true', 'false', '1', '0', 'yes', 'no']);

/** The items of a list setting (trustedOrigins): comma-separated, blanks dropped. */
export function listOf(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);
}

function parseTimeout(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) {
    throw new SmartError('usage', `--timeout: "${v}" is not a positive number of seconds`);
  }
  return n;
}

export const SETTINGS = [
  {
    key: 'profile',
    arg: '<name>',
    env: 'SMART_PROFILE',
    describe: 'profile',
    help: 'use this profile from the config file',
    readme: 'the profile from the config file to use',
    global: true,
    stored: false,
  },
  {
    key: 'baseUrl',
    arg: '<url>',
    env: 'SMART_BASE_URL',
    describe: 'server base URL',
    help: 'server origin, e.g. https://aidbox.example.com',
    readme: 'server origin (admin API, discovery fallback)',
    global: true,
    stored: true,
    check: url,
    prompt: 'Server base URL (origin), e.g. https://aidbox.example.com',
  },
  {
    key: 'fhirUrl',
    arg: '<url>',
    env: 'SMART_FHIR_URL',
    describe: 'FHIR base URL',
    help: 'FHIR base URL',
    helpDefault: 'default <base-url>/fhir',
    readme: 'FHIR base; default `<base-url>/fhir`',
    global: true,
    stored: true,
    check: url,
    prompt: 'FHIR base URL (empty: <base URL>/fhir)',
  },
  {
    key: 'tokenUrl',
    arg: '<url>',
    env: 'SMART_TOKEN_URL',
    describe: 'token URL',
    help: 'token endpoint',
    helpDefault: 'default: discovered',
    readme: 'token endpoint; default: discovered',
    global: true,
    stored: true,
    check: url,
    prompt: 'Token URL (empty: discovered)',
  },
  {
    key: 'serverUrl',
    arg: '<origin>',
    env: 'SMART_SERVER_URL',
    describe: "server's own URL",
    help: "the server's own name for itself, when it differs from --base-url",
    readme:
      'the server\'s own name for itself when it differs from `--base-url` (Aidbox\'s `BOX_WEB_BASE_URL`; see "Aidbox in Docker")',
    global: true,
    stored: true,
    check: (v) =>
      url(v) ??
      (/^[a-z]+:\/\/[^/?#]+\/?$/i.test(v.trim())
        ? undefined
        : `"${v}" must be an origin, e.g. http://aidbox:8080 (no path)`),
  },
  {
    key: 'clientId',
    arg: '<id>',
    env: 'SMART_CLIENT_ID',
    describe: 'client id',
    help: 'client id',
    readme: 'the client id (assertion `iss` and `sub`)',
    global: true,
    stored: true,
    prompt: 'Client id',
  },
  {
    key: 'key',
    arg: '<file>',
    env: 'SMART_KEY',
    describe: 'private key file',
    help: 'private key file',
    readme: 'the private key file',
    global: true,
    stored: true,
    isPath: true,
    prompt: 'Private key file (empty: create one later with `smart keygen`)',
  },
  {
    key: 'scope',
    arg: '<scopes>',
    env: 'SMART_SCOPE',
    describe: 'scope',
    help: 'space-separated scopes',
    helpDefault: 'default system/*.read',
    readme: 'space-separated scopes; default `system/*.read`',
    global: true,
    stored: true,
    check: (v) => (v.trim() === '' ? 'must not be empty' : undefined),
    prompt: 'Scopes (empty: system/*.read)',
  },
  {
    key: 'alg',
    arg: '<alg>',
    env: 'SMART_ALG',
    describe: 'signing algorithm',
    help: 'signing algorithm',
    helpDefault: 'default: from the key',
    readme: 'signing algorithm; default: from the key',
    global: true,
    stored: true,
    prompt: 'Signing algorithm (empty: from the key)',
  },
  {
    key: 'jwksUri',
    arg: '<url>',
    env: 'SMART_JWKS_URI',
    describe: 'JWKS URL',
    help: 'where the server fetches the public keys, preferred to --jwks-file',
    global: false,
    stored: true,
    check: url,
  },
  {
    key: 'caFile',
    arg: '<file>',
    env: 'SMART_CA_FILE',
    describe: 'CA file',
    help: 'trust this PEM CA bundle for TLS, in addition to the system CAs',
    readme: 'trust a private CA, in addition to the system CAs',
    readmeArg: '<pem>',
    global: true,
    stored: true,
    isPath: true,
  },
  {
    key: 'insecure',
    env: 'SMART_INSECURE',
    describe: 'plain-http permission',
    help: 'allow tokens and secrets over plain http to a non-loopback host',
    readme:
      'allow a token, an assertion or the admin secret over plain `http://` to a host that is not loopback',
    global: true,
    stored: true,
    boolean: true,
    check: (v) => (BOOLEAN_VALUES.has(v.toLowerCase()) ? undefined : `"${v}" is not true or false`),
  },
  {
    key: 'server',
    arg: '<kind>',
    env: 'SMART_SERVER',
    describe: 'server kind',
    help: SERVER_KINDS.join(' | '),
    helpDefault: 'default aidbox',
    global: false,
    stored: true,
    check: (v) =>
      (SERVER_KINDS as readonly string[]).includes(v)
        ? undefined
        : `"${v}" is not a server kind (use ${SERVER_KINDS.join(', ')})`,
  },
  {
    key: 'registrationUrl',
    arg: '<url>',
    env: 'SMART_REGISTRATION_URL',
    describe: 'registration URL',
    help: 'rfc7591/smart-reference: the registration endpoint',
    global: false,
    stored: true,
    check: url,
  },
  {
    key: 'timeout',
    arg: '<seconds>',
    env: 'SMART_TIMEOUT',
    describe: 'HTTP timeout',
    help: 'HTTP timeout per request',
    helpDefault: 'default 30',
    readme: 'per-request HTTP timeout (default 30)',
    global: true,
    stored: false,
    parse: parseTimeout,
  },
  {
    key: 'maxResponse',
    arg: '<MiB>',
    env: 'SMART_MAX_RESPONSE',
    describe: 'response size cap (MiB)',
    help: 'largest response read into memory, in MiB',
    helpDefault: 'default 256',
    readme:
      'the largest answer read into memory: FHIR pages, reads, manifests, error bodies (default 256; profile key `maxResponse`). Token and discovery answers are capped at 1 MiB; `smart api` bodies and export files stream and are not capped',
    global: true,
    stored: true,
    check: (v) =>
      /^\s*\d+(\.\d+)?\s*$/.test(v) && Number(v) > 0
        ? undefined
        : `"${v}" is not a positive number of MiB`,
  },
  {
    key: 'trustedOrigins',
    flag: 'trust-origin',
    arg: '<origin>',
    env: 'SMART_TRUST_ORIGIN',
    describe: 'trusted origins',
    help: 'send the token to files on this origin too (requiresAccessToken: true)',
    global: false,
    stored: true,
    list: true,
    check: (v) => {
      for (const item of listOf(v)) {
        if (!/^https?:\/\/[^/?#]+\/?$/i.test(item))
          return `"${item}" is not an origin, e.g. https://files.example.org (http(s), no path)`;
      }
      return undefined;
    },
  },
] as const satisfies readonly SettingSpec[];

type Row = (typeof SETTINGS)[number];

/** Keys a profile may hold. Names are part of the interface: scripts depend on them. */
export type ProfileKey = Extract<Row, { stored: true }>['key'];
/** Settings with a global flag. */
export type GlobalKey = Extract<Row, { global: true }>['key'];
/** Settings whose flag belongs to the commands that name them (`addSettingOptions`). */
export type CommandKey = Extract<Row, { global: false }>['key'];

type FlagValue<S> = S extends { parse: (v: string) => infer T }
  ? T
  : S extends { boolean: true }
    ? boolean
    : string;

/** The global flags' values as Commander gives them (`--timeout` parsed, `--insecure` a switch). */
export type GlobalFlags = {
  [S in Extract<Row, { global: true }> as S['key']]?: FlagValue<S>;
};

export const PROFILE_KEYS: readonly ProfileKey[] = SETTINGS.filter(
  (s): s is Extract<Row, { stored: true }> => s.stored,
).map((s) => s.key);

const BY_KEY = new Map<string, SettingSpec>(SETTINGS.map((s) => [s.key, s]));

/** The row of a key. */
export function settingOf(key: ProfileKey | GlobalKey | CommandKey): SettingSpec {
  return BY_KEY.get(key)!;
}

export function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** `--<flag>` for a key. */
export function flagOf(key: ProfileKey | GlobalKey): string {
  const s = settingOf(key);
  return `--${s.flag ?? kebab(s.key)}`;
}

/**
 * The name Commander gives the flag's value (`--trust-origin` -> `trustOrigin`): the key itself
 * when the flag is the key in kebab case (camel case of kebab case is the key again), so that
 * resolving the settings of a run, which asks for each key's, makes no string work for those.
 */
export function flagAttribute(key: ProfileKey | GlobalKey): string {
  const s = settingOf(key);
  return s.flag === undefined
    ? s.key
    : s.flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/**
 * The --help line of a setting's flag: its text (a list's flag repeats), then the default and
 * the variable.
 */
export function helpOf(s: SettingSpec): string {
  const env = `env ${s.env}${s.boolean ? '=1' : ''}${s.list ? ', comma-separated' : ''}`;
  const help = s.list ? `${s.help}; repeatable` : s.help;
  return `${help} (${[s.helpDefault, env].filter(Boolean).join('; ')})`;
}

/** The flag as Commander declares it: `--base-url <url>`. */
export function flagsOf(s: SettingSpec): string {
  return `--${s.flag ?? kebab(s.key)}${s.arg ? ` ${s.arg}` : ''}`;
}
