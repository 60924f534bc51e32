import { describe, expect, it } from 'vitest';
import {
  checkServerKind,
  registrarFor,
  serverKindOf,
} from '../../../../src/core/registration/registry.js';
import { SERVER_KINDS } from '../../../../src/core/registration/types.js';
import type { SmartError } from '../../../../src/core/errors.js';

const thrown = (f: () => unknown): SmartError => {
  try {
    f();
  } catch (e) {
    return e as SmartError;
  }
  throw new Error('expected an error');
};

describe('checkServerKind', () => {
  it('takes every known kind', () => {
    for (const k of SERVER_KINDS) expect(checkServerKind(k)).toBe(k);
  });

  it('refuses another, naming where it came from and the kinds (exit 2)', () => {
    const e = thrown(() => checkServerKind('hapi'));
    expect(e.message).toBe('--server "hapi" is not a server kind smart can register with');
    expect([e.hint, e.code, e.exitCode]).toEqual([
      'use one of aidbox, rfc7591, smart-reference',
      'bad_server_kind',
      2,
    ]);
    expect(thrown(() => checkServerKind('Aidbox', 'SMART_SERVER')).message).toMatch(
      /^SMART_SERVER "Aidbox"/,
    );
  });
});

describe('serverKindOf', () => {
  it('the setting, else aidbox; a bad one names the flag or the setting', () => {
    expect(serverKindOf({ server: undefined, sources: {} } as never)).toBe('aidbox');
    expect(serverKindOf({ server: 'rfc7591', sources: { server: 'env' } } as never)).toBe(
      'rfc7591',
    );
    expect(
      thrown(() => serverKindOf({ server: 'x', sources: { server: 'flag' } } as never)).message,
    ).toMatch(/^--server "x"/);
    expect(
      thrown(() => serverKindOf({ server: 'x', sources: { server: 'profile' } } as never)).message,
    ).toMatch(/^server "x"/);
  });
});

describe('registrarFor', () => {
  it('loads the module of each kind', async () => {
    for (const k of SERVER_KINDS) {
      const r = await registrarFor(k);
      expect(r.kind).toBe(k);
      expect(r.needsAdmin).toBe(k === 'aidbox');
    }
  });
});
