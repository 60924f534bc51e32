import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../fsutil.js';
import type { ManagementCredentials } from './types.js';

/**
 * RFC 7592 management credentials (registration_client_uri and registration_access_token), one
 * 0600 file per client id under <config dir>/registrations/, so that `unregister-client` can
 * DELETE the registration later. The token is a secret: never printed, never in the profile.
 */
function fileOf(configDir: string, clientId: string): string {
  const name = createHash('sha256').update(clientId).digest('hex').slice(0, 32);
  return join(configDir, 'registrations', `${name}.json`);
}

export async function saveManagement(configDir: string, m: ManagementCredentials): Promise<string> {
  const path = fileOf(configDir, m.clientId);
  await fs.mkdir(join(configDir, 'registrations'), { recursive: true, mode: 0o700 });
  await writeFileAtomic(path, JSON.stringify(m, null, 2) + '\n', { mode: 0o600 });
  return path;
}

export async function loadManagement(
  configDir: string,
  clientId: string,
): Promise<ManagementCredentials | undefined> {
  try {
    const m = JSON.parse(
      await fs.readFile(fileOf(configDir, clientId), 'utf8'),
    ) as Partial<ManagementCredentials>;
    if (
      m.clientId === clientId &&
      typeof m.registrationClientUri === 'string' &&
      typeof m.registrationAccessToken === 'string'
    ) {
      return m as ManagementCredentials;
    }
  } catch {
    // No file (or an unreadable one): nothing saved for this client.
  }
  return undefined;
}

export async function deleteManagement(configDir: string, clientId: string): Promise<void> {
  await fs.rm(fileOf(configDir, clientId), { force: true });
}
