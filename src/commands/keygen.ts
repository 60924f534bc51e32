import type { Command } from 'commander';
import { resolve } from 'node:path';
import type { Context } from '../context.js';
import { usageError } from '../core/errors.js';

interface KeygenOptions {
  alg?: string;
  bits?: string;
  kid?: string;
  dir?: string;
  force?: boolean;
  save: boolean;
}

export function parseBits(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value.trim())) {
    throw usageError(`--bits "${value}" is not a number`, 'use 2048, 3072 or 4096', {
      code: 'bad_bits',
    });
  }
  return Number(value);
}

export function registerKeygen(program: Command, ctx: Context): void {
  program
    .command('keygen')
    .description('Create a signing key pair: private key (PEM, 0600) and its public JWKS')
    .option('--alg <alg>', 'RS384 | ES384 | RS256 | ES256 | RS512 | ES512 | PS384 (default RS384)')
    .option('--bits <n>', 'RSA modulus size: 2048 | 3072 | 4096 (default 2048)')
    .option('--kid <id>', 'key id (default: the RFC 7638 thumbprint)')
    .option('--dir <dir>', 'where to write the key and jwks.json (default <config dir>/keys)')
    .option('--force', 'replace an existing key file or JWKS entry with the same kid')
    .option('--no-save', 'do not save the key and alg in the active profile')
    .addHelpText(
      'after',
      `
Examples:
  $ smart keygen                       # RS384, 2048 bits: what Aidbox accepts
  $ smart keygen --alg ES384 --dir ./keys
  $ smart keygen --kid 2026-key --no-save -o json

The new public key is added to <dir>/jwks.json beside the existing ones (rotation).
`,
    )
    .action(async (opts: KeygenOptions) => {
      // --alg is also a global option, so Commander may have given it to the program.
      const alg = opts.alg ?? ctx.globals.alg;
      const bits = parseBits(opts.bits);
      const settings = await ctx.settings();
      const dir = opts.dir ? resolve(ctx.cwd, opts.dir) : settings.paths.keysDir;
      const { createKeyPair } = await import('../core/auth/jwks.js');
      const { SmartError, withPathOrigin } = await import('../core/errors.js');
      const created = await createKeyPair({
        alg,
        bits,
        kid: opts.kid,
        dir,
        force: opts.force,
      }).catch((e: unknown) => {
        // --dir is the user's: a file-system failure there is exit 2 (1 for the default dir).
        throw withPathOrigin(e, opts.dir !== undefined);
      });
      ctx.log.info(
        `wrote ${created.privateKey} (private, mode 0600) and ${created.jwks} (${created.count} key${created.count === 1 ? '' : 's'})`,
      );
      if (created.replaced.length)
        ctx.log.warn(`replaced JWKS entry ${created.replaced.join(', ')}`);
      if (opts.save) {
        const { updateProfile } = await import('../core/settings.js');
        try {
          await updateProfile(settings.paths.configFile, settings.profile, {
            key: created.privateKey,
            alg: created.alg,
          });
        } catch (e) {
          // The key pair is on disk: say where, and how to use it without the profile.
          const why = e instanceof SmartError ? e.message : String(e);
          throw new SmartError(
            'runtime',
            `the key pair is written (${created.privateKey}, ${created.jwks}) but profile "${settings.profile}" was not saved: ${why}`,
            {
              cause: e,
              code: 'profile_not_saved',
              hint: `use the key with --key ${created.privateKey} (or SMART_KEY=${created.privateKey}); --no-save skips the profile`,
            },
          );
        }
        ctx.log.info(
          `saved key and alg in profile "${settings.profile}" (${settings.paths.configFile})`,
        );
      }
      const { outputFor } = await import('./shared.js');
      await (
        await outputFor(ctx, 'object', 'keygen')
      ).show({
        kind: 'object',
        value: {
          kid: created.kid,
          alg: created.alg,
          ...(created.bits ? { bits: created.bits } : {}),
          privateKey: created.privateKey,
          jwks: created.jwks,
          publicJwk: created.publicJwk,
        },
        fields: [
          ['kid', created.kid],
          ['alg', created.alg],
          ['bits', created.bits],
          ['private key', created.privateKey],
          ['jwks', created.jwks],
        ],
      });
    });
}
