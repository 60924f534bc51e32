/**
 * One error type for everything the user can act on. `cli.cts` prints `error: <message>` and
 * `hint: <hint>` and exits with the kind's code; anything that is not a SmartError is a bug and
 * keeps its stack.
 */
export type ErrorKind =
  | 'usage' // bad flag, bad argument, malformed input file: exit 2
  | 'config' // malformed or missing configuration: exit 2
  | 'auth' // credentials or token rejected, OAuth errors, 401/403: exit 3
  | 'network' // cannot reach a host, timeout: exit 4
  | 'http' // unexpected HTTP answer: exit 1
  | 'fhir' // OperationOutcome or FHIR-level failure: exit 1
  | 'runtime'; // anything else the user should read: exit 1

export const EXIT_CODES: Record<ErrorKind, number> = {
  usage: 2,
  config: 2,
  auth: 3,
  network: 4,
  http: 1,
  fhir: 1,
  runtime: 1,
};

/**
 * Every stable machine-readable error code smart itself sets (`SmartError.code`). A new code is
 * one more member here, so that a typo in a `code:` fails the typecheck.
 * Two families come from outside and are typed by their shape: Node's system error codes
 * (`ENOENT`, `ERR_INVALID_URL`, `UND_ERR_SOCKET`) and the OAuth `error` a server answered
 * (`invalid_client`...), which goes through {@link serverCode}.
 */
export type SmartErrorCode =
  // usage and input
  | 'bad_alg'
  | 'bad_args'
  | 'bad_bits'
  | 'bad_ca_file'
  | 'bad_client_id'
  | 'bad_columns'
  | 'bad_config'
  | 'bad_data'
  | 'bad_destination'
  | 'bad_env'
  | 'bad_export_state'
  | 'bad_flag'
  | 'bad_header'
  | 'bad_json'
  | 'bad_key'
  | 'bad_lifetime'
  | 'bad_manifest'
  | 'bad_method'
  | 'bad_output_format'
  | 'bad_param'
  | 'bad_registration_response'
  | 'bad_server_kind'
  | 'bad_target'
  | 'bad_token_response'
  | 'bad_where'
  | 'empty_value'
  | 'insecure_http'
  | 'needs_yes'
  | 'not_json'
  | 'not_jwks'
  | 'not_jwt'
  | 'unsupported_format'
  // files, keys and configuration
  | 'file_exists'
  | 'file_gone'
  | 'kid_exists'
  | 'kid_not_in_jwks'
  | 'lifetime_too_long'
  | 'missing_admin_secret'
  | 'missing_jwks'
  | 'missing_setting'
  | 'no_profile'
  | 'no_such_kid'
  | 'not_set'
  | 'private_members'
  | 'profile_exists'
  | 'profile_not_saved'
  | 'secret_key'
  | 'unknown_key'
  | 'unsupported_alg'
  // servers, tokens, registration
  | 'admin_rejected'
  | 'assertion_rules'
  | 'foreign_origin'
  | 'http_status'
  | 'invalid_resource'
  | 'jwks_source'
  | 'jwks_unavailable'
  | 'no_admin_api'
  | 'no_discovery'
  | 'no_registration_endpoint'
  | 'no_registration_management'
  | 'not_backend_services'
  | 'paging_cycle'
  | 'registration_failed'
  | 'registration_refused'
  | 'redirect_loop'
  | 'registration_token_rejected'
  | 'response_too_large'
  | 'signature_invalid'
  // bulk export and its destinations
  | 'count_mismatch'
  | 'download_failed'
  | 'export_busy'
  | 'export_cancelled'
  | 'export_errors'
  | 'export_failed'
  | 'export_status_failed'
  | 'export_timeout'
  | 'no_content_location'
  | 'no_export_state'
  | 'no_such_export'
  | 'not_async'
  | 'out_locked'
  | 'out_not_dir'
  | 'out_not_empty'
  | 'state_not_saved'
  | 'store_bad_credentials'
  | 'store_denied'
  | 'store_failed'
  | 'store_no_container'
  | 'store_no_credentials'
  | 'store_no_region'
  | 'store_throttled'
  | 'store_unreachable'
  | 'untrusted_origin'
  // the run itself
  | 'interrupted'
  | SystemErrorCode
  | ServerErrorCode;

/**
 * Node's, OpenSSL's and undici's error codes, all in capitals: `ENOENT`, `ERR_INVALID_URL`,
 * `UND_ERR_SOCKET`, `CERT_HAS_EXPIRED`. Our own codes are lower case, so a typo still fails.
 */
export type SystemErrorCode = Uppercase<string>;

/** An error code a server chose (the OAuth `error` member): only through {@link serverCode}. */
export type ServerErrorCode = string & { readonly __serverErrorCode: true };

/** Marks a code a server sent (e.g. OAuth `invalid_client`) as one: it is not ours to check. */
export function serverCode(code: string): ServerErrorCode {
  return code as ServerErrorCode;
}

export interface SmartErrorOptions {
  hint?: string;
  cause?: unknown;
  /** HTTP status, when the error came from a response. */
  status?: number;
  /** A stable machine-readable code, e.g. `invalid_client`, `ECONNREFUSED`, `key_exists`. */
  code?: SmartErrorCode;
  /** Extra structured data for `-o json` error output and for tests. */
  details?: Record<string, unknown>;
}

export class SmartError extends Error {
  override readonly name = 'SmartError';
  readonly kind: ErrorKind;
  readonly hint?: string;
  readonly status?: number;
  readonly code?: SmartErrorCode;
  readonly details?: Record<string, unknown>;

  constructor(kind: ErrorKind, message: string, options: SmartErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.kind = kind;
    this.hint = options.hint;
    this.status = options.status;
    this.code = options.code;
    this.details = options.details;
  }

  get exitCode(): number {
    return EXIT_CODES[this.kind];
  }
}

export function isSmartError(e: unknown): e is SmartError {
  return e instanceof SmartError;
}

export const usageError = (message: string, hint?: string, extra: SmartErrorOptions = {}) =>
  new SmartError('usage', message, { ...extra, hint: hint ?? extra.hint });

export const configError = (message: string, hint?: string, extra: SmartErrorOptions = {}) =>
  new SmartError('config', message, { ...extra, hint: hint ?? extra.hint });

/** Node's system error code (ENOENT, ECONNREFUSED...) wherever it sits in a cause chain. */
export function systemErrorCode(e: unknown): SystemErrorCode | undefined {
  let cur: unknown = e;
  for (let depth = 0; cur && depth < 8; depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && /^E[A-Z_]+$/.test(code)) return code as SystemErrorCode;
    if (typeof code === 'string' && code.startsWith('UND_ERR')) return code as SystemErrorCode;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

/** What a file-system error code means, in words, and what to do about it. */
const FILE_SYSTEM_ERRORS: Record<string, { reason: string; hint: string }> = {
  EACCES: {
    reason: 'permission denied',
    hint: 'check the permissions of the file and its directory (ls -ld), or use another path',
  },
  EPERM: {
    reason: 'operation not permitted',
    hint: 'check the permissions of the file and its directory (ls -ld), or use another path',
  },
  EROFS: {
    reason: 'read-only file system',
    hint: 'that file system is mounted read-only: use a path on a writable one',
  },
  ENOSPC: { reason: 'no space left on device', hint: 'free some space, or use another disk' },
  EDQUOT: { reason: 'disk quota exceeded', hint: 'free some space, or use another disk' },
  ENOTDIR: {
    reason: 'a part of the path is a file, not a directory',
    hint: 'fix the path, or move the file that stands where a directory should be',
  },
  EISDIR: {
    reason: 'it is a directory',
    hint: 'a directory stands where a file should be: remove it, or use another path',
  },
  ENAMETOOLONG: { reason: 'the path is too long', hint: 'use a shorter path' },
  ELOOP: { reason: 'too many symbolic links', hint: 'check the symbolic links on the path' },
  EMFILE: { reason: 'too many open files', hint: 'raise the limit (ulimit -n) and try again' },
  EIO: { reason: 'input/output error', hint: 'the disk may be failing; check it (dmesg)' },
};

/** The file-system error codes that are the environment's, not a bug: see fileSystemError. */
export const FILE_SYSTEM_CODES = new Set(Object.keys(FILE_SYSTEM_ERRORS));

/** Node's fs call names as an operation a person reads. */
function operationOf(syscall: string | undefined): string {
  switch (syscall) {
    case 'open':
    case 'read':
    case 'stat':
    case 'lstat':
    case 'scandir':
    case 'readlink':
    case 'access':
      return 'read';
    case 'mkdir':
      return 'create the directory';
    case 'unlink':
    case 'rmdir':
    case 'rm':
      return 'remove';
    case 'chmod':
    case 'fchmod':
      return 'change the mode of';
    default:
      return 'write';
  }
}

/**
 * A file-system failure (EACCES, EPERM, EROFS, ENOSPC, ENOTDIR, EISDIR...) as one line: "cannot
 * <operation> <path>: <reason>" with a hint. Exit 1, or 2 (`fromUser`) when the path came from
 * the user's own flag or argument. Undefined when `e` is not such a failure (ENOENT is left to
 * the caller, who knows whether a missing file is an error).
 */
export function fileSystemError(
  e: unknown,
  options: { path?: string; operation?: string; what?: string; fromUser?: boolean } = {},
): SmartError | undefined {
  const code = systemErrorCode(e);
  const known = code ? FILE_SYSTEM_ERRORS[code] : undefined;
  if (!code || !known) return undefined;
  const err = e as NodeJS.ErrnoException;
  const path = options.path ?? err.path;
  if (!path) return undefined;
  const operation = options.operation ?? operationOf(err.syscall);
  const what = options.what ? `${options.what} ` : '';
  return new SmartError(
    options.fromUser ? 'usage' : 'runtime',
    `cannot ${operation} ${what}${path}: ${known.reason}`,
    { cause: e, code, hint: known.hint, details: { path } },
  );
}

/**
 * A file-system failure on a path the user named (`fromUser`: exit 2) or one smart chose (exit
 * 1): the same line either way. Anything else passes through unchanged.
 */
export function withPathOrigin(e: unknown, fromUser: boolean): unknown {
  if (e instanceof SmartError) {
    if (!e.code || !FILE_SYSTEM_CODES.has(e.code) || typeof e.details?.path !== 'string') return e;
    const kind: ErrorKind = fromUser ? 'usage' : 'runtime';
    if (e.kind === kind) return e;
    return new SmartError(kind, e.message, {
      cause: e.cause,
      code: e.code,
      hint: e.hint,
      details: e.details,
    });
  }
  return fileSystemError(e, { fromUser }) ?? e;
}
