import { SmartError, type ErrorKind, type SmartErrorOptions } from '../errors.js';
import { redactUrl } from '../redact.js';
import { describeErrorBody } from './summary.js';
import type { HttpResponse } from './types.js';

export interface StatusErrorOptions extends Omit<SmartErrorOptions, 'status'> {
  /** Default `http` (exit 1). */
  kind?: ErrorKind;
  /** Words before the request: `JWKS`, `no such export:`. */
  prefix?: string;
  /**
   * What the server said, when the caller summarised it (e.g. scrubbed of a secret it may
   * echo); `false` for nothing after the status. Default: describeErrorBody(res).
   */
  said?: string | false;
}

/**
 * The error of an unexpected HTTP status, as one line:
 * `[<prefix> ][<METHOD> ]<url> answered <status>: <what the server said>`, the URL redacted and
 * the body summarised (OperationOutcome, OAuth error, JSON message or text; redacted, bounded).
 * Its `status` is the response's. Errors with their own wording (a 401 after a new token, a 403
 * naming the scopes) build their own message.
 */
export function statusError(
  method: string | undefined,
  url: string,
  res: HttpResponse,
  options: StatusErrorOptions = {},
): SmartError {
  const { kind = 'http', prefix, said, ...rest } = options;
  const words = said === false ? '' : `: ${said ?? describeErrorBody(res)}`;
  const request = [prefix, method, redactUrl(url)].filter(Boolean).join(' ');
  return new SmartError(kind, `${request} answered ${res.status}${words}`, {
    ...rest,
    status: res.status,
  });
}
