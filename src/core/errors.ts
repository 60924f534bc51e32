/**
 * One error type for everything the user can act on. `cli.ts` prints `error: <message>` and
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

export interface SmartErrorOptions {
  hint?: string;
  cause?: unknown;
  /** HTTP status, when the error came from a response. */
  status?: number;
  /** A stable machine-readable code, e.g. `invalid_client`, `ECONNREFUSED`, `key_exists`. */
  code?: string;
  /** Extra structured data for `-o json` error output and for tests. */
  details?: Record<string, unknown>;
}

export class SmartError extends Error {
  override readonly name = 'SmartError';
  readonly kind: ErrorKind;
  readonly hint?: string;
  readonly status?: number;
  readonly code?: string;
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
export function systemErrorCode(e: unknown): string | undefined {
  let cur: unknown = e;
  for (let depth = 0; cur && depth < 8; depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && /^E[A-Z_]+$/.test(code)) return code;
    if (typeof code === 'string' && code.startsWith('UND_ERR')) return code;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}
