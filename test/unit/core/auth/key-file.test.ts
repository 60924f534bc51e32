import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { keyFingerprint, readKeyFiles } from '../../../../src/core/auth/key-file.js';
import { generateSigningKey, signingKeyOf } from '../../../../src/core/auth/keys.js';
import { tempDir } from '../../../helpers/tmp.js';
import { rejected } from '../../../helpers/rejected.js';

async function keyDir() {
  const dir = tempDir('smart-key-file-');
  const g = await generateSigningKey('ES256');
  const file = join(dir, 'key.pem');
  writeFileSync(file, g.privateKeyPem, { mode: 0o600 });
  return { dir, file, g };
}

describe('readKeyFiles', () => {
  test('the key text, and the jwks.json beside it when there is one', async () => {
    const { dir, file, g } = await keyDir();
    expect(await readKeyFiles(file)).toEqual({ path: file, text: g.privateKeyPem });
    const jwks = JSON.stringify({ keys: [{ ...g.publicJwk, kid: 'mine' }] });
    writeFileSync(join(dir, 'jwks.json'), jwks);
    expect(await readKeyFiles(file)).toEqual({ path: file, text: g.privateKeyPem, jwksText: jwks });
    // The parsed key comes from those bytes: the JWKS's kid.
    expect((await signingKeyOf(await readKeyFiles(file))).kid).toBe('mine');
  });

  test('a missing key file: a usage error naming it, with what to do', async () => {
    const file = join(tempDir('smart-key-file-'), 'none.pem');
    const e = await rejected(readKeyFiles(file));
    expect(e).toMatchObject({ kind: 'usage', message: `private key file not found: ${file}` });
    expect(e.hint).toContain('smart keygen');
  });
});

describe('keyFingerprint', () => {
  test('the same files and alg: the same fingerprint; a change to any of them: another', async () => {
    const { dir, file, g } = await keyDir();
    const files = await readKeyFiles(file);
    const fp = keyFingerprint(files);
    expect(fp).toMatch(/^[0-9a-f]{16}$/);
    expect(keyFingerprint(await readKeyFiles(file))).toBe(fp);
    expect(keyFingerprint(files, 'ES256')).not.toBe(fp);
    expect(keyFingerprint({ ...files, text: `${files.text}\n` })).not.toBe(fp);
    writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [g.publicJwk] }));
    const withJwks = keyFingerprint(await readKeyFiles(file));
    expect(withJwks).not.toBe(fp);
    writeFileSync(
      join(dir, 'jwks.json'),
      JSON.stringify({ keys: [{ ...g.publicJwk, kid: 'k2' }] }),
    );
    expect(keyFingerprint(await readKeyFiles(file))).not.toBe(withJwks);
    // No JWKS and an empty one are not the same.
    expect(keyFingerprint({ ...files, jwksText: '' })).not.toBe(fp);
  });
});
