import { describe, expect, it } from 'vitest';
import {
  EXIT_CODES,
  SmartError,
  configError,
  isSmartError,
  serverCode,
  systemErrorCode,
  usageError,
} from '../../../src/core/errors.js';

describe('SmartError', () => {
  it('maps each kind to its exit code', () => {
    expect(EXIT_CODES).toEqual({
      usage: 2,
      config: 2,
      auth: 3,
      network: 4,
      http: 1,
      fhir: 1,
      runtime: 1,
    });
    for (const [kind, code] of Object.entries(EXIT_CODES)) {
      expect(new SmartError(kind as keyof typeof EXIT_CODES, 'x').exitCode).toBe(code);
    }
  });

  it('keeps hint, cause, status, code and details', () => {
    const cause = new Error('inner');
    const e = new SmartError('http', 'GET x answered 500', {
      hint: 'retry later',
      cause,
      status: 500,
      code: serverCode('server_error'),
      details: { a: 1 },
    });
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('SmartError');
    expect(e.hint).toBe('retry later');
    expect(e.cause).toBe(cause);
    expect(e.status).toBe(500);
    expect(e.code).toBe('server_error');
    expect(e.details).toEqual({ a: 1 });
    expect(isSmartError(e)).toBe(true);
    expect(isSmartError(new Error('x'))).toBe(false);
  });

  it('takes only known codes: a typo fails the typecheck (SmartErrorCode)', () => {
    // @ts-expect-error 'bad_flg' is not a SmartErrorCode
    const typo = new SmartError('usage', 'x', { code: 'bad_flg' });
    expect(typo.code).toBe('bad_flg');
    // Node's codes (capitals) and a server's OAuth error (through serverCode) are accepted.
    expect(new SmartError('network', 'x', { code: 'ECONNREFUSED' }).code).toBe('ECONNREFUSED');
    expect(new SmartError('auth', 'x', { code: serverCode('invalid_client') }).code).toBe(
      'invalid_client',
    );
  });

  it('has shortcuts for usage and config errors', () => {
    const u = usageError('bad flag', 'pass --x', { code: 'bad_flag' });
    expect([u.kind, u.exitCode, u.hint, u.code]).toEqual(['usage', 2, 'pass --x', 'bad_flag']);
    const c = configError('bad file');
    expect([c.kind, c.exitCode, c.hint]).toEqual(['config', 2, undefined]);
    expect(usageError('m', undefined, { hint: 'from extra' }).hint).toBe('from extra');
  });

  it('finds a system error code in a cause chain', () => {
    const inner = Object.assign(new Error('connect'), { code: 'ECONNREFUSED' });
    const outer = new Error('fetch failed', { cause: new Error('wrap', { cause: inner }) });
    expect(systemErrorCode(outer)).toBe('ECONNREFUSED');
    expect(systemErrorCode(Object.assign(new Error(), { code: 'UND_ERR_SOCKET' }))).toBe(
      'UND_ERR_SOCKET',
    );
    expect(systemErrorCode(new Error('plain'))).toBeUndefined();
    expect(systemErrorCode(undefined)).toBeUndefined();
  });
});
