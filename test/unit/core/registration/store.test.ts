import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  deleteManagement,
  loadManagement,
  saveManagement,
} from '../../../../src/core/registration/store.js';
import { tempDir } from '../../../helpers/tmp.js';

const M = {
  clientId: 'assigned-1',
  registrationClientUri: 'https://as.example/register/assigned-1',
  registrationAccessToken: 'rat-secret',
};

describe('RFC 7592 management credentials', () => {
  it('one 0600 file per client id under <config dir>/registrations (0700), named by a hash', async () => {
    const dir = tempDir();
    const path = await saveManagement(dir, M);
    expect(path).toMatch(new RegExp(`^${dir}/registrations/[0-9a-f]{32}\\.json$`));
    expect(path).not.toContain('assigned-1');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'registrations')).mode & 0o777).toBe(0o700);
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual(M);
    expect(await loadManagement(dir, 'assigned-1')).toEqual(M);
    // Another client has its own file.
    const other = await saveManagement(dir, { ...M, clientId: 'other' });
    expect(other).not.toBe(path);
    expect(readdirSync(join(dir, 'registrations'))).toHaveLength(2);
  });

  it('nothing saved, a corrupt file or one of another client: undefined', async () => {
    const dir = tempDir();
    expect(await loadManagement(dir, 'assigned-1')).toBeUndefined();
    const path = await saveManagement(dir, M);
    writeFileSync(path, '{"clientId":');
    expect(await loadManagement(dir, 'assigned-1')).toBeUndefined();
    writeFileSync(path, JSON.stringify({ ...M, clientId: 'someone-else' }));
    expect(await loadManagement(dir, 'assigned-1')).toBeUndefined();
    writeFileSync(path, JSON.stringify({ ...M, registrationAccessToken: 42 }));
    expect(await loadManagement(dir, 'assigned-1')).toBeUndefined();
  });

  it('delete removes the file; deleting what is not there is fine', async () => {
    const dir = tempDir();
    await saveManagement(dir, M);
    await deleteManagement(dir, 'assigned-1');
    expect(readdirSync(join(dir, 'registrations'))).toEqual([]);
    await deleteManagement(dir, 'assigned-1');
    await deleteManagement(tempDir(), 'never-saved');
  });
});
