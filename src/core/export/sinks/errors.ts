import { SmartError, systemErrorCode } from '../../errors.js';
import { redactText } from '../../redact.js';

/** An error of the object store (from its SDK), carried through a write stream. */
export class StoreFailure extends Error {
  constructor(readonly error: unknown) {
    super(error instanceof Error ? error.message : String(error), { cause: error });
  }
}

/** Remove anything credential-like an SDK message may quote (SAS signatures, account keys). */
export function scrub(text: string): string {
  return redactText(text)
    .replace(
      /([?&;](?:sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token)=)[^&;\s"']+/gi,
      '$1***',
    )
    .replace(/((?:AccountKey|SharedAccessSignature)=)[^;\s"']+/gi, '$1***')
    .replace(/\b(SharedKey(?:Lite)?\s+[^:\s]+:)[A-Za-z0-9+/=]+/g, '$1***')
    .replace(/(Signature=)[0-9a-f]{16,}/gi, '$1***');
}

export type StoreProblem =
  'credentials' | 'no-region' | 'no-container' | 'denied' | 'throttled' | 'network' | 'other';

export interface StoreErrorInfo {
  problem: StoreProblem;
  /** The store's own code (NoSuchBucket, AuthorizationFailure...) when it gave one. */
  code?: string;
  status?: number;
  message: string;
}

/**
 * One line with a hint for an object store failure, by problem. `store` names the service
 * ("S3", "Azure Blob"), `where` the destination URL; `env` says where its credentials come from.
 */
export function storeError(
  info: StoreErrorInfo,
  o: {
    store: string;
    where: string;
    root: string;
    container: string;
    env: string;
    /** Where the credentials in use came from, for a refusal. */
    creds: string;
    op: string;
  },
  cause: unknown,
): SmartError {
  const base = {
    cause,
    ...(info.status !== undefined ? { status: info.status } : {}),
    details: { store: o.store, ...(info.code ? { storeCode: info.code } : {}) },
  };
  const why = scrub(oneLine(info.message));
  switch (info.problem) {
    case 'credentials':
      return new SmartError('auth', `no ${o.store} credentials for ${o.where}: ${why}`, {
        ...base,
        code: 'store_no_credentials',
        hint: `set ${o.env} (see README "Exporting to object storage")`,
      });
    case 'no-region':
      return new SmartError('usage', `no ${o.store} region for ${o.where}`, {
        ...base,
        code: 'store_no_region',
        hint: 'set AWS_REGION (or a region in the AWS_PROFILE config); an S3-compatible store takes any region, e.g. us-east-1',
      });
    case 'no-container':
      return new SmartError('usage', `${o.store}: ${o.container} does not exist (${o.where})`, {
        ...base,
        code: 'store_no_container',
        hint: `create it first, or check the name${o.store === 'S3' ? ', the region and the endpoint' : ' and the account'}`,
      });
    case 'denied':
      return new SmartError(
        'auth',
        `${o.store} refused to ${o.op} ${o.where}: ${info.code ?? info.status ?? ''} ${why}`.replace(
          /\s+/g,
          ' ',
        ),
        {
          ...base,
          code: 'store_denied',
          hint: `the credentials (${o.creds}) need permission to list, read and write objects under ${o.root}`,
        },
      );
    case 'throttled':
      return new SmartError(
        'runtime',
        `${o.store} kept throttling requests to ${o.where} (${info.code ?? info.status}) after retries`,
        {
          ...base,
          code: 'store_throttled',
          hint: 'the store is overloaded: completed files are kept; try again later with --resume, or with a lower --parallel',
        },
      );
    case 'network':
      return new SmartError('network', `cannot reach ${o.store} for ${o.where}: ${why}`, {
        ...base,
        code: systemErrorCode(cause) ?? 'store_unreachable',
        hint: 'check the endpoint and the network; completed files are kept, continue with --resume',
      });
    default:
      return new SmartError(
        'runtime',
        `${o.store} failed to ${o.op} ${o.where}: ${[info.code, why].filter(Boolean).join(': ')}`,
        { ...base, code: 'store_failed' },
      );
  }
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim().slice(0, 300);
}

/** Network-level failures by Node's error code. */
export function isNetworkError(e: unknown): boolean {
  const code = systemErrorCode(e);
  return (
    !!code &&
    /^(ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EPIPE|UND_ERR)/.test(
      code,
    )
  );
}
