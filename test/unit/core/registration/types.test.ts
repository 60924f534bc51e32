import { describe, expect, it } from 'vitest';
import { DEFAULT_SERVER_KIND, SERVER_KINDS } from '../../../../src/core/registration/types.js';
import { SETTINGS } from '../../../../src/core/settings/table.js';

describe('server kinds', () => {
  it('aidbox, rfc7591 and smart-reference; aidbox by default', () => {
    expect([...SERVER_KINDS]).toEqual(['aidbox', 'rfc7591', 'smart-reference']);
    expect(DEFAULT_SERVER_KIND).toBe('aidbox');
  });

  it('are what the --server help line lists', () => {
    expect(SETTINGS.find((s) => s.key === 'server')!.help).toBe(SERVER_KINDS.join(' | '));
  });
});
