import type { Command } from 'commander';
import type { Context } from '../context.js';
import { usageError } from '../core/errors.js';

interface DemoFlags {
  keep?: boolean;
  port?: string;
  clientId?: string;
  alg?: string;
}

function parsePort(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535) {
    throw usageError(
      `--port "${value}" is not a port number`,
      'e.g. --port 8080, or 0 for any free port',
    );
  }
  return n;
}

export function registerDemo(program: Command, ctx: Context): void {
  program
    .command('demo')
    .description(
      'Run the whole flow on this machine: sandbox, keygen, JWKS, register-client, token, query',
    )
    .option('--keep', 'leave the sandbox and the JWKS server running, with a ready profile "demo"')
    .option('--port <port>', 'sandbox port (default: any free port)')
    .option('--demo-client <id>', 'client id to register', 'demo-client')
    .addHelpText(
      'after',
      `
Examples:
  $ smart demo
  $ smart demo --keep          # then, in another terminal: smart --profile demo query Patient

Each step prints its title, the equivalent smart command, and the essential request and
response (secrets shortened). Exit 0 only if every step succeeded; a failure names the step.
`,
    )
    .action(async (flags: DemoFlags & { demoClient: string }) => {
      const port = parsePort(flags.port);
      const { outputFor } = await import('./shared.js');
      const output = await outputFor(ctx, 'demo', 'demo');
      const [
        { runDemo },
        { styleFor },
        { createHttpClient },
        { resolvePaths },
        { escapeControls },
      ] = await Promise.all([
        import('../demo/flow.js'),
        import('../output/style.js'),
        import('../core/http/index.js'),
        import('../core/settings.js'),
        import('../output/escape.js'),
      ]);
      const style = await styleFor(ctx);
      const err = ctx.io.stderr;
      const paths = resolvePaths(ctx.env);
      let http: ReturnType<typeof createHttpClient> | undefined;
      const started = ctx.now();

      const run = await runDemo({
        clientId: flags.demoClient,
        sandboxPort: port,
        workspace: flags.keep ? `${paths.configDir}/demo` : undefined,
        // Styled, so written directly (the logger would escape the colours).
        sandboxLog: flags.keep
          ? (line) => void err.write(style.dim(`sandbox: ${escapeControls(line)}`) + '\n')
          : undefined,
        jwksLog: flags.keep
          ? (line) => void err.write(style.dim(escapeControls(line)) + '\n')
          : undefined,
        http: () =>
          (http ??= createHttpClient({
            timeoutMs: (ctx.globals.timeout ?? 30) * 1000,
            userAgent: `smart/${ctx.version}`,
            env: ctx.env,
            signal: ctx.signal,
            onRequest: (e) =>
              ctx.log.verbose(`${e.method} ${e.url} ${e.status ?? e.error ?? '-'} ${e.ms}ms`),
          })),
        now: ctx.now,
        log: (m) => ctx.log.verbose(m),
        onEvent: (e) => {
          switch (e.type) {
            case 'step':
              err.write(`\n${style.bold(`[${e.n}/${e.total}] ${e.title}`)}\n`);
              err.write(`      ${style.cyan(`$ ${e.command}`)}\n`);
              break;
            case 'request':
              err.write(`      ${style.yellow('→')} ${e.text}\n`);
              break;
            case 'response':
              err.write(`      ${style.green('←')} ${e.text}\n`);
              break;
            case 'note':
              err.write(`      ${style.dim(e.text)}\n`);
              break;
          }
        },
      });

      try {
        err.write('\n');
        const [{ defaultColumns }, { terminalWidth }] = await Promise.all([
          import('../output/resources.js'),
          import('../output/format.js'),
        ]);
        const bundle = run.bundle;
        const pages = {
          stats: { pages: 1, matches: bundle.entry?.length ?? 0, total: bundle.total, more: false },
          async *[Symbol.asyncIterator]() {
            yield bundle;
          },
        };
        // A walkthrough for a person: the table, even in a pipe or a CI log, unless -o asks.
        await output.show({
          kind: 'demo',
          pages,
          options: {
            columns: defaultColumns('Observation'),
            pretty: Boolean(ctx.io.stdout.isTTY),
            terminal: Boolean(ctx.io.stdout.isTTY),
            // The demo's table reads best a little wider than a terminal's default, even in a pipe.
            width: terminalWidth(ctx.io.stdout, ctx.env, 120),
            info: () => undefined,
            warn: (line) => ctx.log.warn(line),
          },
        });
        err.write(
          `\n${style.green('✓')} the whole SMART Backend Services flow works (${((ctx.now() - started) / 1000).toFixed(1)}s)\n`,
        );

        if (!flags.keep) {
          err.write(
            `  next: \`smart demo --keep\` to keep the servers running and try the commands yourself\n`,
          );
          return;
        }
        const { updateProfile } = await import('../core/settings.js');
        await updateProfile(paths.configFile, 'demo', {
          baseUrl: run.sandbox.url,
          fhirUrl: undefined,
          tokenUrl: undefined,
          clientId: run.clientId,
          key: run.keyFile,
          jwksUri: run.jwksServer.url,
          scope: run.settings.scope,
          alg: undefined,
        });
        err.write(
          `\nSaved profile "demo" in ${paths.configFile}. The servers keep running; try:\n`,
        );
        for (const c of [
          'smart --profile demo token',
          'smart --profile demo query Patient',
          'smart --profile demo query Observation code=4548-4 --all -o ndjson',
          'smart --profile demo export --type Patient,Observation --out ./demo-export',
          'smart --profile demo discover',
        ]) {
          err.write(`  $ ${c}\n`);
        }
        err.write(
          `Admin secret for register-client: SMART_ADMIN_SECRET=${run.sandbox.adminSecret}\n`,
        );
        err.write('Press Ctrl-C to stop.\n');
        await new Promise<void>((resolve) => {
          if (ctx.signal.aborted) resolve();
          else ctx.signal.addEventListener('abort', () => resolve(), { once: true });
        });
        err.write('stopping the demo servers\n');
      } finally {
        await run.close();
      }
    });
}
