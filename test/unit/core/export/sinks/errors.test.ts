import { describe, expect, it } from 'vitest';
import {
  StoreFailure,
  isNetworkError,
  scrub,
  storeError,
  type StoreErrorInfo,
  type StoreProblem,
} from '../../../../../src/core/export/sinks/errors.js';

const WHERE = {
  store: 'S3',
  where: 's3://b/p/Patient.000.ndjson',
  root: 's3://b/p',
  container: 'bucket b',
  env: 'AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)',
  creds: 'the AWS default chain',
  op: 'write',
};

describe('sinks/errors', () => {
  it('scrub masks SAS signatures, account keys and SharedKey signatures', () => {
    const text =
      'GET https://a.blob.core.windows.net/c/x?sv=2024&sig=abcDEF123%2B%3D&se=1 failed; ' +
      'AccountKey=Eby8vdM02xNOcqFl==;SharedAccessSignature=sv=1&sig=zzz Authorization: SharedKey acct:c2lnbmF0dXJl';
    const out = scrub(text);
    expect(out).not.toContain('abcDEF123');
    expect(out).not.toContain('Eby8vdM02xNOcqFl');
    expect(out).not.toContain('zzz');
    expect(out).not.toContain('c2lnbmF0dXJl');
    expect(out).toContain('sig=***');
  });

  it('scrub masks S3 presigned query parameters and signature headers', () => {
    const out = scrub(
      'PUT /b/k?X-Amz-Credential=AKIAEXAMPLE%2F20240101&X-Amz-Security-Token=FQoGZXIvYXdzEXAMPLE' +
        '&X-Amz-Signature=0123456789abcdef0123 failed; Signature=fedcba9876543210fedcba',
    );
    expect(out).not.toContain('AKIAEXAMPLE');
    expect(out).not.toContain('0123456789abcdef0123');
    expect(out).not.toContain('fedcba9876543210fedcba');
    expect(out).not.toContain('FQoGZXIvYXdzEXAMPLE');
  });

  // Each problem: one line (no newline), its kind, exit code and hint.
  const cases: Array<[StoreProblem, Partial<StoreErrorInfo>, RegExp, string, number, RegExp]> = [
    [
      'credentials',
      { message: 'Could not load credentials from any providers' },
      /^no S3 credentials for s3:\/\/b\/p\/Patient\.000\.ndjson: Could not load credentials/,
      'store_no_credentials',
      3,
      /^set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \(or AWS_PROFILE\) \(see README/,
    ],
    [
      'no-region',
      { message: 'Region is missing' },
      /^no S3 region for s3:\/\/b\/p\/Patient\.000\.ndjson$/,
      'store_no_region',
      2,
      /^set AWS_REGION/,
    ],
    [
      'no-container',
      { code: 'NoSuchBucket', status: 404, message: 'The specified bucket does not exist' },
      /^S3: bucket b does not exist \(s3:\/\/b\/p\/Patient\.000\.ndjson\)$/,
      'store_no_container',
      2,
      /^create it first, or check the name, the region and the endpoint$/,
    ],
    [
      'denied',
      { code: 'AccessDenied', status: 403, message: 'Access Denied' },
      /^S3 refused to write s3:\/\/b\/p\/Patient\.000\.ndjson: AccessDenied Access Denied$/,
      'store_denied',
      3,
      /^the credentials \(the AWS default chain\) need permission to list, read and write objects under s3:\/\/b\/p$/,
    ],
    [
      'throttled',
      { code: 'SlowDown', status: 503, message: 'Please reduce your request rate.' },
      /^S3 kept throttling requests to s3:\/\/b\/p\/Patient\.000\.ndjson \(SlowDown\) after retries$/,
      'store_throttled',
      1,
      /^the store is overloaded: completed files are kept; try again later with --resume/,
    ],
    [
      'network',
      { message: 'connect ECONNREFUSED 127.0.0.1:9' },
      /^cannot reach S3 for s3:\/\/b\/p\/Patient\.000\.ndjson: connect ECONNREFUSED 127\.0\.0\.1:9$/,
      'store_unreachable',
      4,
      /^check the endpoint and the network; completed files are kept, continue with --resume$/,
    ],
  ];
  for (const [problem, info, message, code, exit, hint] of cases) {
    it(`${problem}: one line, exit ${exit}, a hint`, () => {
      const e = storeError({ problem, message: '', ...info }, WHERE, new Error('cause'));
      expect(e.message).toMatch(message);
      expect(e.message).not.toContain('\n');
      expect(e.code).toBe(code);
      expect(e.exitCode).toBe(exit);
      expect(e.hint).toMatch(hint);
      expect(e.details).toMatchObject({ store: 'S3' });
      if (info.status) expect(e.status).toBe(info.status);
    });
  }

  it('other: the store code and the first 300 characters of its message on one line, exit 1', () => {
    const e = storeError(
      {
        problem: 'other',
        code: 'InternalError',
        message: `We encountered\n an internal error.\t${'x'.repeat(400)}`,
      },
      WHERE,
      undefined,
    );
    expect(e.message).toMatch(
      /^S3 failed to write s3:\/\/b\/p\/Patient\.000\.ndjson: InternalError: We encountered an internal error\. x+$/,
    );
    expect(e.message.length).toBeLessThan(400);
    expect(e.exitCode).toBe(1);
    expect(e.code).toBe('store_failed');
    expect(e.details).toEqual({ store: 'S3', storeCode: 'InternalError' });
  });

  it('a network failure keeps the system code as its code', () => {
    const cause = Object.assign(new Error('getaddrinfo ENOTFOUND store.invalid'), {
      code: 'ENOTFOUND',
    });
    const e = storeError({ problem: 'network', message: cause.message }, WHERE, cause);
    expect(e.code).toBe('ENOTFOUND');
    expect(e.exitCode).toBe(4);
  });

  it('a credential in the store message never reaches the line', () => {
    const e = storeError(
      {
        problem: 'denied',
        code: 'AuthenticationFailed',
        status: 403,
        message:
          'Server failed to authenticate https://a.blob.core.windows.net/c?sv=1&sig=SECRETSIG',
      },
      { ...WHERE, store: 'Azure Blob' },
      undefined,
    );
    expect(e.message).not.toContain('SECRETSIG');
    expect(e.message).toContain('sig=***');
  });

  it('isNetworkError by system code; StoreFailure carries the SDK error', () => {
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'UND_ERR_SOCKET'])
      expect(isNetworkError(Object.assign(new Error(code), { code })), code).toBe(true);
    expect(isNetworkError(Object.assign(new Error('x'), { code: 'ENOSPC' }))).toBe(false);
    expect(isNetworkError(new Error('no code'))).toBe(false);
    const inner = Object.assign(new Error('Access Denied'), { name: 'AccessDenied' });
    const f = new StoreFailure(inner);
    expect(f.error).toBe(inner);
    expect(f.cause).toBe(inner);
    expect(f.message).toBe('Access Denied');
    expect(new StoreFailure('text').message).toBe('text');
  });
});
