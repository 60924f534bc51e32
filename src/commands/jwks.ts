import type { Command } from 'commander';
import { join, resolve } from 'node:path';
import type { Context } from '../context.js';
import type { JwkSummary } from '../core/auth/jwks.js';
import { usageError } from '../core/errors.js';

async function jwksPath(ctx: Context, given: string | undefined): Promise<string> {
  if (given) return resolve(ctx.cwd, given);
  const settings = await ctx.settings();
  return join(settings.paths.keysDir, 'jwks.json');
}

function parsePort(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535) {
    throw usageError(`--port "${value}" is not a port number`, 'use 0-65535 (0 picks a free port)');
  }
  return n;
}

function parseMaxAge(value: string): number {
  if (!/^\d+$/.test(value)) {
    throw usageError(`--max-age "${value}" is not a number of seconds`, 'e.g. --max-age 300');
  }
  return Number(value);
}

const SUMMARY_COLUMNS = [
  { header: 'kid', get: (k: JwkSummary) => k.kid },
  { header: 'kty', get: (k: JwkSummary) => k.kty },
  { header: 'alg', get: (k: JwkSummary) => k.alg },
  { header: 'use', get: (k: JwkSummary) => k.use },
  { header: 'size', get: (k: JwkSummary) => k.size },
];

export function registerJwks(program: Command, ctx: Context): void {
  const jwks = program
    .command('jwks')
    // `smart jwks` alone shows this help on stderr (program.ts drops Commander's writeErr).
    .configureOutput({
      writeOut: (s) => void ctx.io.stdout.write(s),
      writeErr: (s) => void ctx.io.stderr.write(s),
      outputError: () => undefined,
    })
    .description('Show, edit and serve the public JWK Set (jwks.json)')
    .addHelpText(
      'after',
      `
Examples:
  $ smart jwks show
  $ smart jwks add ./old-key.pem --kid 2025-key
  $ smart jwks remove 2025-key
  $ smart jwks serve --port 8082 --host 0.0.0.0
`,
    );

  jwks
    .command('show [file]')
    .description('List the keys of a JWKS (default <config dir>/keys/jwks.json)')
    .addHelpText(
      'after',
      `
Examples:
  $ smart jwks show
  $ smart jwks show ./keys/jwks.json -o json
`,
    )
    .action(async (file: string | undefined) => {
      const { outputFor } = await import('./shared.js');
      const output = await outputFor(ctx, 'records', 'jwks show');
      const path = await jwksPath(ctx, file);
      const [{ readJwksFile, privateMembers }, { summarizeJwk, stripPrivate }] = await Promise.all([
        import('../core/auth/keys.js'),
        import('../core/auth/jwks.js'),
      ]);
      const set = await readJwksFile(path);
      const leaks = privateMembers(set);
      if (leaks.length) {
        ctx.log.warn(
          `${path} holds private key material (${leaks.join('; ')}); it is not shown, and the file must not be published`,
        );
      }
      await output.show({
        kind: 'records',
        rows: set.keys.map(summarizeJwk),
        columns: SUMMARY_COLUMNS,
        document: stripPrivate(set),
      });
    });

  jwks
    .command('add <key-file>')
    .description('Add the public part of an existing key (PEM or JWK) to a JWKS')
    .option('--kid <id>', 'key id (default: the key’s own kid, else its RFC 7638 thumbprint)')
    .option(
      '--alg <alg>',
      'algorithm to record (default: the key’s own, else RS384 / ES* by curve)',
    )
    .option('--file <jwks>', 'the JWKS file (default <config dir>/keys/jwks.json)')
    .option('--force', 'replace an entry with the same kid or the same key')
    .addHelpText(
      'after',
      `
Accepts PKCS#8, PKCS#1 ("RSA PRIVATE KEY"), SEC1 ("EC PRIVATE KEY"), SPKI public PEM, or a JWK.
Only the public members are ever written.

Examples:
  $ smart jwks add ./rsa-key.pem
  $ smart jwks add ./ec.pem --alg ES384 --kid ec-2026 --file ./public/jwks.json
`,
    )
    .action(
      async (
        keyFile: string,
        opts: { kid?: string; alg?: string; file?: string; force?: boolean },
      ) => {
        const path = await jwksPath(ctx, opts.file);
        const { addKeyFileToJwks } = await import('../core/auth/jwks.js');
        const { withPathOrigin } = await import('../core/errors.js');
        const added = await addKeyFileToJwks(resolve(ctx.cwd, keyFile), path, {
          kid: opts.kid,
          alg: opts.alg ?? ctx.globals.alg,
          force: opts.force,
        }).catch((e: unknown) => {
          // --file is the user's: a file-system failure there is exit 2.
          throw withPathOrigin(e, opts.file !== undefined);
        });
        ctx.log.info(
          `added kid ${added.kid} (${added.alg}, from ${added.format}) to ${path}; it holds ${added.count} key${added.count === 1 ? '' : 's'}`,
        );
        if (added.replaced.length) ctx.log.warn(`replaced JWKS entry ${added.replaced.join(', ')}`);
        const { outputFor } = await import('./shared.js');
        await (
          await outputFor(ctx, 'object', 'jwks add')
        ).show({
          kind: 'object',
          value: { kid: added.kid, alg: added.alg, jwks: path, publicJwk: added.publicJwk },
          fields: [
            ['kid', added.kid],
            ['alg', added.alg],
            ['jwks', path],
          ],
        });
      },
    );

  jwks
    .command('remove <kid>')
    .description('Remove the key with this kid from a JWKS')
    .option('--file <jwks>', 'the JWKS file (default <config dir>/keys/jwks.json)')
    .addHelpText(
      'after',
      `
Examples:
  $ smart jwks remove 2025-key
  $ smart jwks remove Nj3kR0aB --file ./public/jwks.json
`,
    )
    .action(async (kid: string, opts: { file?: string }) => {
      const path = await jwksPath(ctx, opts.file);
      const { removeKidFromJwksFile } = await import('../core/auth/jwks.js');
      const { withPathOrigin } = await import('../core/errors.js');
      const result = await removeKidFromJwksFile(path, kid).catch((e: unknown) => {
        throw withPathOrigin(e, opts.file !== undefined);
      });
      ctx.log.info(`removed kid ${kid} from ${path}; ${result.remaining} key(s) remain`);
      const { outputFor } = await import('./shared.js');
      await (
        await outputFor(ctx, 'object', 'jwks remove')
      ).show({ kind: 'object', value: { removed: kid, jwks: path, remaining: result.remaining } });
    });

  jwks
    .command('serve [file]')
    .description('Serve the JWKS over HTTP at /.well-known/jwks.json, for a jwks_uri')
    .option('--port <port>', 'port to listen on (0 picks a free one)', '8082')
    .option('--host <host>', 'address to listen on (0.0.0.0 for every interface)', '127.0.0.1')
    .option('--max-age <seconds>', 'Cache-Control max-age sent with the JWKS', '300')
    .addHelpText(
      'after',
      `
Logs each fetch (time, remote address, user agent) on stderr, so you see whether the FHIR
server reached it. Refuses a file holding private key members. Stops on Ctrl-C.
The URL must be reachable from the FHIR server (from its container, for Aidbox in Docker).

Examples:
  $ smart jwks serve
  $ smart jwks serve --host 0.0.0.0 --port 8082 ./keys/jwks.json
`,
    )
    .action(
      async (file: string | undefined, opts: { port: string; host: string; maxAge: string }) => {
        const { outputFor } = await import('./shared.js');
        const output = await outputFor(ctx, 'serving', 'jwks serve');
        const port = parsePort(opts.port);
        const maxAge = parseMaxAge(opts.maxAge);
        const path = await jwksPath(ctx, file);
        const { startJwksServer } = await import('../core/jwks-server.js');
        if (ctx.signal.aborted) return;
        const server = await startJwksServer({
          file: path,
          host: opts.host,
          port,
          maxAge,
          onRequest: (e) =>
            ctx.log.info(
              `${e.time.toISOString()} ${e.remoteAddress} ${e.method} ${e.path} ${e.status} "${e.userAgent}"`,
            ),
          onReload: (e) =>
            e.error
              ? ctx.log.warn(
                  `${e.file} changed but cannot be served (${e.error.message}); still serving the previous ${e.keys} key(s)`,
                )
              : ctx.log.info(`reloaded ${e.file}: ${e.keys} key(s)`),
        });
        ctx.log.info(`serving ${path} at ${server.url} (also /jwks.json); Ctrl-C to stop`);
        await output.show({ kind: 'serving', value: { url: server.url } });
        await new Promise<void>((done) => {
          if (ctx.signal.aborted) done();
          else ctx.signal.addEventListener('abort', () => done(), { once: true });
        });
        // Requests in flight get 1 s; idle keep-alive connections do not hold the stop.
        await server.close(1000);
        ctx.log.info('stopped');
      },
    );
}
