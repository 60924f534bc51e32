import { describe, expect, it } from 'vitest';
import type { Command } from 'commander';
import { buildProgram } from '../../../src/program.js';
import { SETTINGS, flagsOf, helpOf, type SettingSpec } from '../../../src/core/settings/table.js';
import { quietContext } from '../../helpers/context.js';

/** Every command of the full program below the root, with its path: ['export'], ['config', 'set'], ... */
function commands(cmd: Command, prefix: string[] = []): { path: string; cmd: Command }[] {
  const out: { path: string; cmd: Command }[] = [];
  for (const sub of cmd.commands) {
    const path = [...prefix, sub.name()];
    out.push({ path: path.join(' '), cmd: sub }, ...commands(sub, path));
  }
  return out;
}

const longFlag = (s: SettingSpec) => flagsOf(s).split(' ')[0]!;
// The settings whose flag belongs to commands. (`keygen --alg` and `jwks --alg` are those commands'
// own options, the algorithm of a key to make, and only share the global option's name.)
const byFlag = new Map(
  SETTINGS.filter((s) => !s.global).map((s) => [longFlag(s), s as SettingSpec]),
);

describe("a command's own options that set a setting", () => {
  it('are made from their rows of the settings table: flag, value name, help with the env name', async () => {
    const program = await buildProgram(quietContext());
    const seen = new Map<string, string[]>();
    for (const { path, cmd } of commands(program)) {
      for (const option of cmd.options) {
        const row = option.long ? byFlag.get(option.long) : undefined;
        if (!row) continue;
        expect(option.flags, `${path} ${option.long}`).toBe(flagsOf(row));
        expect(option.description, `${path} ${option.long}`).toBe(helpOf(row));
        expect(option.description).toContain(`env ${row.env}`);
        seen.set(row.key, [...(seen.get(row.key) ?? []), path]);
      }
    }
    expect(Object.fromEntries(seen)).toEqual({
      server: ['register-client', 'unregister-client'],
      registrationUrl: ['register-client'],
      jwksUri: ['register-client'],
      trustedOrigins: ['export'],
    });
    // Every row with a command flag is some command's option.
    for (const s of SETTINGS) if (!s.global) expect(seen.has(s.key), s.key).toBe(true);
  });

  it("a list setting's flag repeats and gathers its values", async () => {
    const program = await buildProgram(quietContext());
    const exportCmd = program.commands.find((c) => c.name() === 'export')!;
    const option = exportCmd.options.find((o) => o.long === '--trust-origin')!;
    expect(option.description).toMatch(/; repeatable \(env SMART_TRUST_ORIGIN, comma-separated\)$/);
    const parse = option.parseArg as (v: string, previous: unknown) => unknown;
    expect(parse('https://a.example', undefined)).toEqual(['https://a.example']);
    expect(parse('https://b.example', ['https://a.example'])).toEqual([
      'https://a.example',
      'https://b.example',
    ]);
  });

  it('the global options are made from their rows too', async () => {
    const program = await buildProgram(quietContext());
    for (const s of SETTINGS.filter((r) => r.global)) {
      const option = program.options.find((o) => o.long === longFlag(s));
      expect(option?.flags, s.key).toBe(flagsOf(s));
      expect(option?.description, s.key).toBe(helpOf(s));
    }
  });
});
