import type { Command } from 'commander';
import { resolve } from 'node:path';
import type { Context } from '../context.js';
import { SmartError } from '../core/errors.js';
import type { FaultRule, SandboxOptions } from '../sandbox/index.js';

const FAULT_HELP = `
Fault injection (--fault, repeatable): <action>:<path>[:<positions>][:<key>=<value>...]
  action     429 | 500 | 503 | drop (cut the body in the middle) | delay
             | throttle (send the body slowly, at rate bytes per second)
  path       a URL path; matches itself and everything below it, * = any characters;
             or ~<regexp> tested against the path
  positions  1-based numbers of the matching requests to hit, e.g. 2,3 (default: every one)
  options    retry-after=<seconds> (429/500/503), ms=<n> (delay, required),
             rate=<bytes per second> (throttle, required),
             method=<GET|POST|...>, times=<n> (the first n matching requests)
  e.g.  --fault '429:/fhir/$export-status:2,3:retry-after=1'
        --fault 503:/auth/token:1   --fault drop:/fhir/$export-file:1
        --fault delay:/fhir/Observation:ms=2000
        --fault 'throttle:/fhir/$export-file:rate=65536'   (64 KiB/s per download)
`;

const QUIRKS_HELP = `
Quirks of real servers (--quirks a,b):
  no-grant-types          discovery without grant_types_supported
  no-signing-algs         discovery without token_endpoint_auth_signing_alg_values_supported
  lowercase-bearer        token_type "bearer"
  kickoff-429             the first two $export kick-offs: 429, Retry-After an epoch time
  invalid-grant           invalid_grant (not invalid_client) for a kid not in the JWKS
  error-counts            an error[] file whose manifest count is the output's
  reference-registration  POST /auth/register (form jwks or jwks_url; answers the client id)
`;

function integer(flag: string, value: string | undefined, min: number, max: number, hint: string) {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < min || n > max) {
    throw new SmartError(
      'usage',
      `${flag} "${value}" is not a whole number from ${min} to ${max}`,
      {
        hint,
      },
    );
  }
  return n;
}

function signedInteger(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[-+]?\d{1,9}$/.test(value.trim())) {
    throw new SmartError('usage', `${flag} "${value}" is not a whole number of seconds`, {
      hint: `e.g. ${flag} -120 (the server's clock two minutes behind)`,
    });
  }
  return Number(value);
}

function origin(flag: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  let u: URL | undefined;
  try {
    u = new URL(value);
  } catch {
    u = undefined;
  }
  if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:') || !/^\/?$/.test(u.pathname)) {
    throw new SmartError('usage', `${flag} "${value}" is not an http(s) origin`, {
      hint: `e.g. ${flag} http://aidbox:8080 (scheme, host and port; no path)`,
    });
  }
  return u.origin;
}

interface SandboxFlags {
  port: string;
  host: string;
  data?: string;
  generate?: string;
  adminSecret?: string;
  exportFileSize?: string;
  exportDelay?: string;
  exportNoToken?: boolean;
  exportSignedStorage?: boolean;
  exportNoStorage?: boolean;
  algs?: string;
  latency?: string;
  clockOffset?: string;
  publicUrl?: string;
  fault?: string[];
  quirks?: string[];
}

export function registerSandbox(program: Command, ctx: Context): void {
  program
    .command('sandbox')
    .description(
      'Run a local SMART backend-services + FHIR R4 server (Aidbox-like, in memory) to try everything offline',
    )
    .option('--port <n>', 'port to listen on (0 = any free port)', '8080')
    .option('--host <host>', 'interface to listen on', '127.0.0.1')
    .option(
      '--data <dir>',
      'serve the .json/.ndjson FHIR resources of this folder instead of the built-in data',
    )
    .option('--generate <n>', 'add n synthetic patients (deterministic) with their resources')
    .option(
      '--admin-secret <secret>',
      'password of the admin client root (default: $SMART_SANDBOX_ADMIN_SECRET, else random)',
    )
    .option('--export-file-size <n>', 'resources per NDJSON file in $export', '1000')
    .option('--export-delay <ms>', 'how long an $export stays in progress', '500')
    .option(
      '--export-no-token',
      '$export files at pre-signed URLs (requiresAccessToken: false) instead of behind the token',
    )
    .option(
      '--export-signed-storage',
      'as Aidbox: $export files pre-signed on a storage listener of their own (another origin)',
    )
    .option(
      '--public-url <origin>',
      "the origin it calls itself, like Aidbox's BOX_WEB_BASE_URL (discovery, aud, links)",
    )
    .option(
      '--algs <list>',
      'client assertion algs advertised and accepted (default RS384, as Aidbox; e.g. RS384,ES384)',
    )
    .option(
      '--export-no-storage',
      'answer every $export with 500 "storage-type not specified", as Aidbox without storage',
    )
    .option('--latency <ms>', 'delay added to every response')
    .option(
      '--clock-offset <seconds>',
      "run the server's clock this far ahead (negative: behind), for clock-skew tests",
    )
    .option(
      '--fault <spec>',
      'inject a fault (repeatable), e.g. 429:/fhir/$export-status:2:retry-after=1',
      (value: string, previous: string[] | undefined) => [...(previous ?? []), value],
    )
    .option(
      '--quirks <list>',
      'behave like some real servers (comma list, repeatable): see below',
      (value: string, previous: string[] | undefined) => [...(previous ?? []), value],
    )
    .addHelpText(
      'after',
      `${FAULT_HELP}${QUIRKS_HELP}\nExamples:\n  $ smart sandbox\n  $ smart sandbox --port 0 --generate 1000\n`,
    )
    .action(async (flags: SandboxFlags) => {
      const { outputFor } = await import('./shared.js');
      const output = await outputFor(ctx, 'serving', 'sandbox');
      const { startSandbox, parseFaultSpec, parseQuirks, KNOWN_ALGS } =
        await import('../sandbox/index.js');
      let algs: string[] | undefined;
      if (flags.algs !== undefined) {
        algs = flags.algs.split(',').map((a) => a.trim().toUpperCase());
        const bad = algs.filter((a) => !KNOWN_ALGS.includes(a));
        if (bad.length || algs.length === 0) {
          throw new SmartError('usage', `--algs: ${bad.join(', ') || '(empty)'} not known`, {
            hint: `name some of ${KNOWN_ALGS.join(', ')}, e.g. --algs RS384,ES384`,
          });
        }
      }
      let quirks: string[] = [];
      try {
        quirks = parseQuirks(flags.quirks ?? []);
      } catch (e) {
        throw new SmartError('usage', `--quirks: ${(e as Error).message}`, {
          hint: 'e.g. --quirks no-grant-types,kickoff-429',
        });
      }
      const faults: FaultRule[] = (flags.fault ?? []).map((spec) => {
        try {
          return parseFaultSpec(spec);
        } catch (e) {
          throw new SmartError('usage', `--fault: ${(e as Error).message}`, {
            hint: 'the form is <429|500|503|drop|delay|throttle>:<path>[:<n,m>][:key=value], e.g. 429:/auth/token:1:retry-after=1',
          });
        }
      });
      const host = flags.host.trim();
      if (!host)
        throw new SmartError('usage', '--host is empty', { hint: 'e.g. --host 127.0.0.1' });
      const options: SandboxOptions = {
        port: integer('--port', flags.port, 0, 65535, 'use 0-65535 (0 picks a free port)'),
        host,
        adminSecret: flags.adminSecret || ctx.env.SMART_SANDBOX_ADMIN_SECRET || undefined,
        generate: integer(
          '--generate',
          flags.generate,
          0,
          200_000,
          'e.g. --generate 1000 (about 12 resources each)',
        ),
        exportFileSize: integer(
          '--export-file-size',
          flags.exportFileSize,
          1,
          10_000_000,
          'e.g. --export-file-size 1000',
        ),
        exportDelayMs: integer(
          '--export-delay',
          flags.exportDelay,
          0,
          3_600_000,
          'milliseconds, e.g. --export-delay 2000',
        ),
        exportRequiresAccessToken: !flags.exportNoToken,
        exportSignedStorage: flags.exportSignedStorage === true,
        exportStorage: !flags.exportNoStorage,
        algs,
        latencyMs: integer(
          '--latency',
          flags.latency,
          0,
          600_000,
          'milliseconds, e.g. --latency 200',
        ),
        clockOffsetSeconds: signedInteger('--clock-offset', flags.clockOffset),
        publicUrl: origin('--public-url', flags.publicUrl),
        faults,
        quirks,
        log: (line) => ctx.io.stderr.write(`${line}\n`),
      };
      if (flags.data) options.dataDir = resolve(ctx.cwd, flags.data);

      let sandbox;
      try {
        sandbox = await startSandbox(options);
      } catch (e) {
        const code = (e as { code?: string }).code;
        const where = `port ${options.port} on ${host}`;
        if (code === 'EADDRINUSE') {
          throw new SmartError('runtime', `${where} is already in use`, {
            hint: 'choose another with --port, or --port 0 for any free port',
            cause: e,
            code,
          });
        }
        if (code === 'EACCES' || code === 'EADDRNOTAVAIL') {
          throw new SmartError('runtime', `cannot listen on ${where} (${code})`, {
            hint: 'ports below 1024 need privileges; the host must be an address of this machine',
            cause: e,
            code,
          });
        }
        if (options.dataDir && !code) {
          throw new SmartError('usage', `--data: ${(e as Error).message}`, {
            hint: 'a folder of FHIR resources or Bundles as .json or .ndjson files',
            cause: e,
          });
        }
        throw e;
      }

      const { url, tokenUrl, fhirUrl, adminClientId, adminSecret } = sandbox;
      const counts = Object.entries(sandbox.counts)
        .map(([type, n]) => `${n} ${type}`)
        .join(', ');
      ctx.io.stderr.write(
        [
          'smart sandbox: SMART backend services + FHIR R4, in memory',
          `  base URL    ${url}`,
          ...(sandbox.publicUrl
            ? [
                `  public URL  ${sandbox.publicUrl} (advertised, the aud it accepts, its links: reach it with --server-url ${sandbox.publicUrl})`,
              ]
            : []),
          `  token URL   ${tokenUrl}`,
          ...(sandbox.storageUrl
            ? [`  storage     ${sandbox.storageUrl} (pre-signed $export file URLs, no token)`]
            : []),
          `  FHIR base   ${fhirUrl}`,
          `  admin       client ${adminClientId}, secret ${adminSecret} (HTTP Basic; PUT /Client/<id>, /AccessPolicy/<id>)`,
          `  data        ${counts}`,
          ...(quirks.length ? [`  quirks      ${quirks.join(', ')}`] : []),
          '',
          'Try:',
          `  $ SMART_ADMIN_SECRET=${adminSecret} smart register-client my-client --base-url ${url} --jwks-file ~/.config/smart/keys/jwks.json`,
          `  $ smart query Observation code=4548-4 --base-url ${url} --client-id my-client`,
          '',
          'Ctrl-C stops it.',
          '',
        ].join('\n'),
      );
      await output.show({
        kind: 'serving',
        value: { url, tokenUrl, fhirUrl, adminClientId, adminSecret },
      });
      if (!ctx.signal.aborted) {
        await new Promise<void>((r) =>
          ctx.signal.addEventListener('abort', () => r(), { once: true }),
        );
      }
      // Requests in flight get 1 s; idle keep-alive connections do not hold the stop.
      await sandbox.close(1000);
      ctx.io.stderr.write('sandbox stopped\n');
    });
}
