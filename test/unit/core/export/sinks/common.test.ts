import { describe, expect, it } from 'vitest';
import {
  contentType,
  isIpOrLocalhost,
  keyOf,
  notEmpty,
  parseSize,
  splitUrl,
} from '../../../../../src/core/export/sinks/common.js';
import { SmartError } from '../../../../../src/core/errors.js';

describe('sinks/common', () => {
  it('parseSize takes bytes, k and m; anything else is a config error', () => {
    expect(parseSize('1048576', 'X')).toBe(1048576);
    expect(parseSize('256k', 'X')).toBe(256 * 1024);
    expect(parseSize('16MiB', 'X')).toBe(16 * 1024 * 1024);
    expect(parseSize(undefined, 'X')).toBeUndefined();
    expect(() => parseSize('lots', 'SMART_UPLOAD_PART_SIZE')).toThrow(
      /SMART_UPLOAD_PART_SIZE="lots" is not a size/,
    );
  });

  it('parseSize: units in any case, spaces around, an empty value is unset; exit 2 with a hint', () => {
    expect(parseSize(' 8 m ', 'X')).toBe(8 * 1024 * 1024);
    expect(parseSize('512KB', 'X')).toBe(512 * 1024);
    expect(parseSize('2kib', 'X')).toBe(2048);
    expect(parseSize('  ', 'X')).toBeUndefined();
    for (const bad of ['1.5m', '-1', '8g', 'm']) {
      let caught: unknown;
      try {
        parseSize(bad, 'SMART_UPLOAD_PART_SIZE');
      } catch (e) {
        caught = e;
      }
      expect(caught, bad).toBeInstanceOf(SmartError);
      const e = caught as SmartError;
      expect(e).toMatchObject({ kind: 'config', code: 'bad_env' });
      expect(e.exitCode).toBe(2);
      expect(e.hint).toBe('give bytes, or a number with k or m, e.g. SMART_UPLOAD_PART_SIZE=16m');
    }
  });

  it('path-style addressing for IP and localhost endpoints only', () => {
    expect(isIpOrLocalhost('127.0.0.1')).toBe(true);
    expect(isIpOrLocalhost('localhost')).toBe(true);
    expect(isIpOrLocalhost('[::1]')).toBe(true);
    expect(isIpOrLocalhost('minio.internal')).toBe(false);
    expect(isIpOrLocalhost('s3.eu-central-1.amazonaws.com')).toBe(false);
  });

  it('path-style also for *.localhost names and bare IPv6', () => {
    expect(isIpOrLocalhost('store.localhost')).toBe(true);
    expect(isIpOrLocalhost('fd00::5')).toBe(true);
    expect(isIpOrLocalhost('localhost.example.com')).toBe(false);
  });

  it('destination URLs: bucket and prefix; a query, a fragment or .. is refused', () => {
    expect(splitUrl(new URL('s3://b/a/b/'), 's3://b/a/b/')).toEqual({
      container: 'b',
      prefix: 'a/b',
    });
    expect(splitUrl(new URL('az://c'), 'az://c')).toEqual({ container: 'c', prefix: '' });
    expect(() => splitUrl(new URL('s3://b/x?y=1'), 's3://b/x?y=1')).toThrow(/not a usable/);
  });

  it('splitUrl decodes the prefix; a fragment, .. or no bucket is a usage error with an example', () => {
    expect(splitUrl(new URL('s3://b//exports%202024//'), 's3://b//exports%202024//')).toEqual({
      container: 'b',
      prefix: 'exports 2024',
    });
    for (const [url, example] of [
      ['s3://b/x#frag', 's3://<bucket>/<prefix>'],
      // A plain `..` is resolved by the URL parser; one that hides its slashes is not.
      ['az://c/a/%2E%2E%2Fb', 'az://<container>/<prefix>'],
      ['s3:///x', 's3://<bucket>/<prefix>'],
    ] as const) {
      let caught: unknown;
      try {
        splitUrl(new URL(url), url);
      } catch (e) {
        caught = e;
      }
      expect(caught, url).toBeInstanceOf(SmartError);
      const e = caught as SmartError;
      expect(e.message).toBe(`--out ${url} is not a usable destination URL`);
      expect(e).toMatchObject({ kind: 'usage', code: 'bad_destination' });
      expect(e.exitCode).toBe(2);
      expect(e.hint).toContain(`give ${example}`);
    }
  });

  it('keyOf puts a name under the prefix; contentType by extension', () => {
    expect(keyOf('', 'export.json')).toBe('export.json');
    expect(keyOf('a/b', 'error/OperationOutcome.000.ndjson')).toBe(
      'a/b/error/OperationOutcome.000.ndjson',
    );
    expect(contentType('Patient.000.ndjson')).toBe('application/fhir+ndjson');
    expect(contentType('Patient.000.ndjson.gz')).toBe('application/gzip');
    expect(contentType('manifest.json')).toBe('application/json');
    expect(contentType('notes.txt')).toBe('application/octet-stream');
  });

  it('notEmpty: exit 2; the hint offers --resume (quoted) only for an earlier export', () => {
    const earlier = notEmpty("s3://b/it's here", true);
    expect(earlier.message).toBe("--out s3://b/it's here is not empty");
    expect(earlier).toMatchObject({ kind: 'usage', code: 'out_not_empty' });
    expect(earlier.exitCode).toBe(2);
    expect(earlier.hint).toMatch(
      /^it holds an earlier export: continue it with `smart export --resume /,
    );
    expect(earlier.hint).toContain(`'s3://b/it'\\''s here'`);
    const other = notEmpty('az://c/x', false);
    expect(other.hint).toBe(
      'choose a new or empty prefix (the export never mixes its files with others)',
    );
  });
});
