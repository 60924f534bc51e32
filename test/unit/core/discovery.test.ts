import { describe, expect, test } from 'vitest';
import {
  backendServicesChecks,
  cachedDiscovery,
  discoverSmartConfiguration,
  saveDiscovery,
  wellKnownUrls,
} from '../../../src/core/discovery.js';
import type { SmartError } from '../../../src/core/errors.js';
import { fakeHttp, type FakeAnswer } from '../../helpers/fake-http.js';
import { tempDir } from '../../helpers/tmp.js';

const FHIR = 'https://server.example.org/fhir';
const CONFIG = {
  token_endpoint: 'https://server.example.org/auth/token',
  token_endpoint_auth_methods_supported: ['private_key_jwt'],
  token_endpoint_auth_signing_alg_values_supported: ['RS384'],
  grant_types_supported: ['client_credentials'],
  capabilities: ['client-confidential-asymmetric'],
};
const routes =
  (table: Record<string, FakeAnswer>) =>
  (c: { url: string }): FakeAnswer =>
    table[c.url] ?? { status: 404, body: { resourceType: 'OperationOutcome', issue: [] } };

describe('wellKnownUrls', () => {
  test('under the FHIR base first, then at the origin', () => {
    expect(wellKnownUrls(`${FHIR}/`)).toEqual([
      `${FHIR}/.well-known/smart-configuration`,
      'https://server.example.org/.well-known/smart-configuration',
    ]);
  });
  test('a FHIR base at the origin: one URL', () => {
    expect(wellKnownUrls('https://fhir.example.org')).toEqual([
      'https://fhir.example.org/.well-known/smart-configuration',
    ]);
  });
});

describe('discoverSmartConfiguration', () => {
  test('the FHIR base .well-known, with Accept JSON', async () => {
    const http = fakeHttp(
      routes({ [`${FHIR}/.well-known/smart-configuration`]: { body: CONFIG } }),
    );
    const d = await discoverSmartConfiguration(http, FHIR);
    expect(d.source).toBe(`${FHIR}/.well-known/smart-configuration`);
    expect(d.config).toEqual(CONFIG);
    expect(http.calls).toHaveLength(1);
    expect(http.calls[0]!.headers.accept).toBe('application/json');
  });

  test("falls back to the origin's (Aidbox), and resolves a relative token endpoint against the FHIR base", async () => {
    const http = fakeHttp(
      routes({
        'https://server.example.org/.well-known/smart-configuration': {
          body: { ...CONFIG, token_endpoint: '../auth/token' },
        },
      }),
    );
    const d = await discoverSmartConfiguration(http, FHIR);
    expect(d.config.token_endpoint).toBe('https://server.example.org/auth/token');
    expect(d.tried).toEqual([
      { url: `${FHIR}/.well-known/smart-configuration`, result: '404' },
      {
        url: 'https://server.example.org/.well-known/smart-configuration',
        result: '200 smart-configuration',
      },
    ]);
  });

  test('then the CapabilityStatement oauth-uris extension', async () => {
    const cs = {
      resourceType: 'CapabilityStatement',
      fhirVersion: '4.0.1',
      software: { name: 'Srv', version: '2' },
      rest: [
        {
          security: {
            extension: [
              {
                url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
                extension: [{ url: 'token', valueUri: 'https://server.example.org/oauth/token' }],
              },
            ],
          },
        },
      ],
    };
    const http = fakeHttp(routes({ [`${FHIR}/metadata`]: { body: cs } }));
    const d = await discoverSmartConfiguration(http, FHIR);
    expect(d.source).toBe(`${FHIR}/metadata`);
    expect(d.config).toEqual({ token_endpoint: 'https://server.example.org/oauth/token' });
    expect(d.capabilityStatement).toEqual({
      fhirVersion: '4.0.1',
      software: 'Srv 2',
      tokenUrl: 'https://server.example.org/oauth/token',
    });
  });

  test('withMetadata reads the FHIR version even when .well-known answered', async () => {
    const http = fakeHttp(
      routes({
        [`${FHIR}/.well-known/smart-configuration`]: { body: CONFIG },
        [`${FHIR}/metadata`]: {
          body: { resourceType: 'CapabilityStatement', fhirVersion: '4.0.1' },
        },
      }),
    );
    const d = await discoverSmartConfiguration(http, FHIR, { withMetadata: true });
    expect(d.capabilityStatement?.fhirVersion).toBe('4.0.1');
  });

  test('nothing found: an error listing every URL and what it answered, content types included', async () => {
    const http = fakeHttp(() => ({
      status: 500,
      body: '<html>oops</html>',
      contentType: 'text/html; charset=utf-8',
    }));
    const e = (await discoverSmartConfiguration(http, FHIR).catch((x: unknown) => x)) as SmartError;
    expect(e.kind).toBe('http');
    expect(e.code).toBe('no_discovery');
    expect(e.message).toBe(
      `no SMART configuration found for ${FHIR}: ${FHIR}/.well-known/smart-configuration answered 500 text/html (not JSON); ` +
        `https://server.example.org/.well-known/smart-configuration answered 500 text/html (not JSON); ${FHIR}/metadata answered 500 text/html (not JSON)`,
    );
  });

  test('a JSON 200 without token_endpoint is not a configuration', async () => {
    const http = fakeHttp(
      routes({ [`${FHIR}/.well-known/smart-configuration`]: { body: { issuer: 'x' } } }),
    );
    const e = (await discoverSmartConfiguration(http, FHIR).catch((x: unknown) => x)) as SmartError;
    expect(e.message).toContain('200 but no token_endpoint in the answer');
  });
});

describe('cachedDiscovery and saveDiscovery', () => {
  test('a second call within the hour makes no request; after it, one', async () => {
    const dir = tempDir('disc-');
    const http = fakeHttp(
      routes({ [`${FHIR}/.well-known/smart-configuration`]: { body: CONFIG } }),
    );
    const a = await cachedDiscovery(async () => http, FHIR, dir, 1000);
    expect(a.fromCache).toBe(false);
    const b = await cachedDiscovery(async () => http, FHIR, dir, 1000 + 59 * 60_000);
    expect(b).toMatchObject({ fromCache: true, config: CONFIG });
    expect(http.calls).toHaveLength(1);
    await cachedDiscovery(async () => http, FHIR, dir, 1000 + 61 * 60_000);
    expect(http.calls).toHaveLength(2);
  });

  test('per FHIR base', async () => {
    const dir = tempDir('disc-');
    const http = fakeHttp(() => ({ body: CONFIG }));
    await cachedDiscovery(async () => http, FHIR, dir, 0);
    await cachedDiscovery(async () => http, 'https://other.example.org/fhir', dir, 0);
    expect(http.calls).toHaveLength(2);
  });

  test('saveDiscovery fills the cache that the token path reads', async () => {
    const dir = tempDir('disc-');
    await saveDiscovery(dir, FHIR, { source: 's', config: CONFIG, tried: [] }, 5);
    const http = fakeHttp(() => ({ status: 500 }));
    expect(await cachedDiscovery(async () => http, FHIR, dir, 10)).toMatchObject({
      fromCache: true,
      source: 's',
    });
    expect(http.calls).toHaveLength(0);
  });
});

describe('backendServicesChecks', () => {
  const statuses = (checks: ReturnType<typeof backendServicesChecks>) =>
    checks.map((c) => [c.requirement, c.status]);

  test('every requirement advertised: all ok', () => {
    const checks = backendServicesChecks({ ...CONFIG, scopes_supported: ['system/*.read'] });
    expect(statuses(checks)).toEqual([
      ['token endpoint', 'ok'],
      ['client_credentials', 'ok'],
      ['private_key_jwt', 'ok'],
      ['signing algorithm', 'ok'],
      ['client-confidential-asymmetric', 'ok'],
      ['scopes', 'ok'],
    ]);
    expect(checks.every((c) => c.ok && c.warning === undefined)).toBe(true);
  });

  test('advisory fields that are absent are assumed, with a warning naming the field', () => {
    const {
      grant_types_supported: _g,
      token_endpoint_auth_signing_alg_values_supported: _a,
      ...rest
    } = CONFIG;
    const checks = backendServicesChecks(rest);
    expect(statuses(checks)).toEqual([
      ['token endpoint', 'ok'],
      ['client_credentials', 'assumed'],
      ['private_key_jwt', 'ok'],
      ['signing algorithm', 'assumed'],
      ['client-confidential-asymmetric', 'ok'],
      ['scopes', 'assumed'],
    ]);
    expect(checks.filter((c) => c.warning).map((c) => c.warning)).toEqual([
      'grant_types_supported not advertised: client_credentials assumed, as client-confidential-asymmetric implies it',
      'token_endpoint_auth_signing_alg_values_supported not advertised: RS384 or ES384 assumed, as SMART servers verify RS384 or ES384',
      'scopes_supported not advertised: system/ scopes assumed (it is only RECOMMENDED)',
    ]);
    expect(checks.every((c) => c.ok)).toBe(true);
    expect(backendServicesChecks(rest, { keyAlg: 'ES384' })[3]!.warning).toContain('ES384 assumed');
  });

  test('asymmetric authentication: either private_key_jwt or the capability is enough', () => {
    const { capabilities: _c, ...noCaps } = CONFIG;
    expect(statuses(backendServicesChecks(noCaps)).slice(2, 5)).toEqual([
      ['private_key_jwt', 'ok'],
      ['signing algorithm', 'ok'],
      ['client-confidential-asymmetric', 'assumed'],
    ]);
    const { token_endpoint_auth_methods_supported: _m, ...noMethods } = CONFIG;
    expect(statuses(backendServicesChecks(noMethods))[2]).toEqual(['private_key_jwt', 'assumed']);
    const neither = backendServicesChecks({ token_endpoint: 'x' });
    expect(statuses(neither)).toEqual([
      ['token endpoint', 'ok'],
      ['client_credentials', 'assumed'],
      ['private_key_jwt', 'missing'],
      ['signing algorithm', 'assumed'],
      ['client-confidential-asymmetric', 'missing'],
      ['scopes', 'assumed'],
    ]);
    expect(neither[2]!.detail).toBe(
      'token_endpoint_auth_methods_supported is not advertised, nor the client-confidential-asymmetric capability',
    );
  });

  test('a field that is present and excludes what is needed fails', () => {
    const checks = backendServicesChecks({
      ...CONFIG,
      grant_types_supported: ['authorization_code'],
    });
    expect(checks[1]).toMatchObject({ status: 'missing', ok: false });
    expect(checks[1]!.detail).toBe('grant_types_supported does not include client_credentials');
  });

  test("only algs smart cannot sign with, or not the key's", () => {
    const hs = backendServicesChecks({
      ...CONFIG,
      token_endpoint_auth_signing_alg_values_supported: ['HS256'],
    });
    expect(hs[3]).toMatchObject({ ok: false, status: 'missing' });
    expect(hs[3]!.detail).toContain('none of HS256');
    const es = backendServicesChecks(CONFIG, { keyAlg: 'ES384' });
    expect(es[3]).toMatchObject({ ok: false });
    expect(es[3]!.detail).toContain('the key signs with ES384, the server takes RS384');
    expect(backendServicesChecks(CONFIG, { keyAlg: 'RS384' })[3]!.ok).toBe(true);
  });
});
