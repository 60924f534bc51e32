import { usageError } from '../errors.js';
import type { Settings } from '../settings.js';
import { DEFAULT_SERVER_KIND, SERVER_KINDS, type Registrar, type ServerKind } from './types.js';

/** One line per server kind; each module is loaded only when used. */
const REGISTRARS: Record<ServerKind, () => Promise<Registrar>> = {
  aidbox: async () => (await import('./aidbox.js')).aidboxRegistrar,
  rfc7591: async () => (await import('./rfc7591.js')).rfc7591Registrar,
  'smart-reference': async () => (await import('./smart-reference.js')).smartReferenceRegistrar,
};

export function checkServerKind(value: string, where = '--server'): ServerKind {
  if ((SERVER_KINDS as readonly string[]).includes(value)) return value as ServerKind;
  throw usageError(
    `${where} "${value}" is not a server kind smart can register with`,
    `use one of ${SERVER_KINDS.join(', ')}`,
    { code: 'bad_server_kind' },
  );
}

/** The server kind the settings name (--server, SMART_SERVER, profile), default aidbox. */
export function serverKindOf(settings: Pick<Settings, 'server' | 'sources'>): ServerKind {
  return checkServerKind(
    settings.server ?? DEFAULT_SERVER_KIND,
    settings.sources.server === 'flag' ? '--server' : 'server',
  );
}

export function registrarFor(kind: ServerKind): Promise<Registrar> {
  return REGISTRARS[kind]();
}
