import { describe, expect, test } from 'vitest';
import { SmartError } from '../../../src/core/errors.js';
import { checkNextLink } from '../../../src/core/fhir/index.js';
import { resolveFhirUrl } from '../../../src/core/auth/session.js';
import {
  ownName,
  reachable,
  serverAlias,
  unreachableOwnName,
} from '../../../src/core/server-url.js';

const alias = serverAlias({
  serverUrl: 'http://aidbox:8080',
  baseUrl: 'http://localhost:8080',
})!;

describe('serverAlias, reachable, ownName', () => {
  test('only when serverUrl names another origin than the base URL', () => {
    expect(alias).toEqual({ own: 'http://aidbox:8080', reached: 'http://localhost:8080' });
    expect(serverAlias({ baseUrl: 'http://localhost:8080' })).toBeUndefined();
    expect(
      serverAlias({ serverUrl: 'http://localhost:8080', baseUrl: 'http://localhost:8080/' }),
    ).toBeUndefined();
  });

  test('URLs on the own origin move to the reached one and back; others stay as they are', () => {
    expect(reachable('http://aidbox:8080/fhir/Patient?_page=2&_count=5', alias)).toBe(
      'http://localhost:8080/fhir/Patient?_page=2&_count=5',
    );
    expect(reachable('http://aidbox:9090/fhir', alias)).toBe('http://aidbox:9090/fhir');
    expect(reachable('https://storage.example.com/f?sig=1', alias)).toBe(
      'https://storage.example.com/f?sig=1',
    );
    expect(ownName('http://localhost:8080/auth/token', alias)).toBe(
      'http://aidbox:8080/auth/token',
    );
    expect(ownName('http://localhost:8080/auth/token', undefined)).toBe(
      'http://localhost:8080/auth/token',
    );
  });

  test('the session moves an absolute URL on the own name, and still refuses a third origin', () => {
    const fhir = 'http://localhost:8080/fhir';
    expect(resolveFhirUrl(fhir, 'http://aidbox:8080/fhir/$export-status/1', alias)).toBe(
      'http://localhost:8080/fhir/$export-status/1',
    );
    expect(() => resolveFhirUrl(fhir, 'http://evil.example/fhir/Patient', alias)).toThrow(
      /refusing to send the access token to http:\/\/evil\.example/,
    );
    // Without serverUrl, the refusal says what to set.
    try {
      resolveFhirUrl(fhir, 'http://aidbox:8080/fhir/Patient');
      expect.unreachable();
    } catch (e) {
      expect((e as SmartError).hint).toContain('smart config set serverUrl http://aidbox:8080');
    }
  });

  test('a DNS failure or a plain-http refusal on another origin gets the advice; other failures do not', () => {
    const dns = new SmartError('network', 'cannot resolve host aidbox', { code: 'ENOTFOUND' });
    const refused = new SmartError('network', 'connection refused', { code: 'ECONNREFUSED' });
    const plain = new SmartError('usage', 'refusing', { code: 'insecure_http' });
    const at = 'http://localhost:8080';
    expect(unreachableOwnName(dns, 'http://aidbox:8080/auth/token', at)?.hint).toMatch(
      /^the server calls itself http:\/\/aidbox:8080 \(Aidbox's BOX_WEB_BASE_URL\) but you reach it at http:\/\/localhost:8080: set `smart config set serverUrl http:\/\/aidbox:8080`/,
    );
    expect(unreachableOwnName(plain, 'http://aidbox:8080/auth/token', at)?.exitCode).toBe(2);
    expect(unreachableOwnName(refused, 'http://aidbox:8080/auth/token', at)).toBeUndefined();
    expect(unreachableOwnName(dns, 'http://localhost:8080/auth/token', at)).toBeUndefined();
  });
});

describe('checkNextLink', () => {
  const page = 'http://localhost:8080/fhir/Patient?_count=2';
  const session = {
    fhirUrl: 'http://localhost:8080/fhir',
    reachable: (u: string) => reachable(u, alias),
  };

  test('an absolute link on the server name moves to the base URL', () => {
    expect(checkNextLink('http://aidbox:8080/fhir/Patient?_page=2', page, session)).toBe(
      'http://localhost:8080/fhir/Patient?_page=2',
    );
  });

  test('a relative link outside the FHIR base is resolved under it, with one remark', () => {
    let remarks = 0;
    const next = checkNextLink('/Patient?_page=4&_count=2', page, session, () => remarks++);
    expect(next).toBe('http://localhost:8080/fhir/Patient?_page=4&_count=2');
    expect(remarks).toBe(1);
    // Relative links inside the base are left alone.
    expect(checkNextLink('Patient?_page=5', page, session, () => remarks++)).toBe(
      'http://localhost:8080/fhir/Patient?_page=5',
    );
    expect(checkNextLink('/fhir/Patient?_page=6', page, session, () => remarks++)).toBe(
      'http://localhost:8080/fhir/Patient?_page=6',
    );
    expect(remarks).toBe(1);
  });

  test('another origin is refused, naming serverUrl', () => {
    expect(() => checkNextLink('http://other:8080/fhir/Patient?_page=2', page, session)).toThrow(
      /refusing to follow the next link to http:\/\/other:8080/,
    );
  });
});

describe('mayBeOwnName', () => {
  test('a Docker service name, or the same port; not a separate auth server', async () => {
    const { mayBeOwnName } = await import('../../../src/core/server-url.js');
    expect(mayBeOwnName('http://aidbox:8080/auth/token', 'http://localhost:8888/fhir')).toBe(true);
    expect(mayBeOwnName('http://aidbox.internal:8080/a', 'http://localhost:8080/fhir')).toBe(true);
    expect(mayBeOwnName('https://auth.example.org/token', 'http://127.0.0.1:4312/fhir')).toBe(
      false,
    );
    expect(mayBeOwnName('http://localhost:8080/auth/token', 'http://localhost:8080/fhir')).toBe(
      false,
    );
  });
});
