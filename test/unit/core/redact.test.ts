import { describe, expect, it } from 'vitest';
import {
  maskExact,
  redactHeaders,
  redactText,
  redactUrl,
  shorten,
} from '../../../src/core/redact.js';

const JWT =
  'eyJhbGciOiJSUzM4NCJ9.eyJpc3MiOiJteS1jbGllbnQiLCJzdWIiOiJteS1jbGllbnQifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ';

describe('redact', () => {
  it('maskExact masks a secret only where it stands alone', () => {
    expect(maskExact('text/html x', 'x')).toBe('text/html ***');
    expect(maskExact('user root:s3cret (s3cret)', 's3cret')).toBe('user root:*** (***)');
    expect(maskExact('"s3cret"', 's3cret')).toBe('"***"');
    expect(maskExact('s3cret2 xs3cret', 's3cret')).toBe('s3cret2 xs3cret');
    expect(maskExact('a+b?c a+b?c', 'a+b?c')).toBe('*** ***');
    expect(maskExact('unchanged', '')).toBe('unchanged');
  });

  it('hides secret query parameters and userinfo in URLs', () => {
    const out = redactUrl(
      `https://user:pw@h.example/fhir/Patient?access_token=abc123&_count=2&client_assertion=${JWT}`,
    );
    expect(out).not.toContain('abc123');
    expect(out).not.toContain(JWT);
    expect(out).not.toContain('pw@');
    expect(out).toContain('_count=2');
    expect(out).toMatch(/access_token=(\*\*\*|\[redacted\])/);
  });

  it('hides the signatures of pre-signed storage URLs', () => {
    const s3 = redactUrl(
      'https://b.s3.amazonaws.com/f.ndjson?X-Amz-Credential=AK%2F1&X-Amz-Signature=abcdef0123&X-Amz-Expires=60',
    );
    expect(s3).not.toContain('abcdef0123');
    expect(s3).toContain('X-Amz-Expires=60');
    expect(redactUrl('https://a.blob.core.windows.net/c/f?sv=2022&sig=S3CR3T%3D')).not.toContain(
      'S3CR3T',
    );
    expect(redactUrl('https://storage.googleapis.com/b/f?X-Goog-Signature=deadbeef')).not.toContain(
      'deadbeef',
    );
    expect(redactUrl('http://127.0.0.1:1/fhir/$export-file/x?exp=1&sig=0a1b2c')).not.toContain(
      '0a1b2c',
    );
  });

  it('leaves ordinary URLs alone', () => {
    expect(redactUrl('http://127.0.0.1:8080/fhir/Observation?code=4548-4')).toBe(
      'http://127.0.0.1:8080/fhir/Observation?code=4548-4',
    );
  });

  it('hides JWTs, bearer tokens and secret fields in text', () => {
    const text = `Authorization: Bearer abc.def-ghi, body {"access_token":"tok123","client_secret":"s3cr3t"} ${JWT} password=hunter2`;
    const out = redactText(text);
    for (const secret of ['abc.def-ghi', 'tok123', 's3cr3t', JWT, 'hunter2']) {
      expect(out).not.toContain(secret);
    }
    expect(out).toContain('Bearer [redacted]');
    expect(out).toContain('[redacted JWT]');
  });

  it('redacts secret headers only', () => {
    expect(
      redactHeaders({ Authorization: 'Bearer xyz', accept: 'application/json', Cookie: 'a=b' }),
    ).toEqual({
      Authorization: 'Bearer [redacted]',
      accept: 'application/json',
      Cookie: 'a=b [redacted]',
    });
  });

  it('shortens a secret to something recognisable but unusable', () => {
    expect(shorten('short')).toBe('***');
    const s = shorten('0123456789abcdefghij');
    expect(s).toBe('012345…ghij (20 chars)');
  });
});
