import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as api from '../../src/index.js';

describe('the public API (src/index.ts)', () => {
  it('exports the curated entry points', () => {
    for (const name of [
      'SmartError',
      'isSmartError',
      'EXIT_CODES',
      'resolveSettings',
      'createHttpClient',
      'generateSigningKey',
      'loadSigningKey',
      'createKeyPair',
      'startJwksServer',
      'signClientAssertion',
      'discoverSmartConfiguration',
      'TokenProvider',
      'FhirSession',
      'searchPages',
      'streamSearch',
      'decodeJwt',
      'bulkExport',
      'startSandbox',
    ]) {
      expect(api, name).toHaveProperty(name);
    }
    expect(typeof api.bulkExport.startExport).toBe('function');
  });

  it('keeps internal helpers out of it', () => {
    for (const name of ['oneLine', 'snippet', 'redactText', 'FileCache', 'kebab', 'networkError']) {
      expect(Object.keys(api)).not.toContain(name);
    }
  });

  it('signs an assertion end to end through the public names only', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'smart-api-'));
    try {
      const pair = await api.createKeyPair({ alg: 'ES384', dir });
      const key = await api.loadSigningKey(pair.privateKey);
      const a = await api.signClientAssertion({
        key,
        clientId: 'c1',
        audience: 'https://example.org/auth/token',
      });
      const d = api.decodeJwt(a.jwt);
      expect(d.claims).toMatchObject({
        iss: 'c1',
        sub: 'c1',
        aud: 'https://example.org/auth/token',
      });
      expect(d.header).toMatchObject({ alg: 'ES384', kid: key.kid });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
