import type { Command } from 'commander';
import { basename, isAbsolute, join, relative, resolve } from 'node:path';
import type { Context } from '../context.js';
import { SmartError, isSmartError, usageError } from '../core/errors.js';
import { checkOutputFormat } from '../core/export/naming.js';
import type { ExportParams, ExportSummary } from '../core/export/types.js';
import { addSettingOptions } from './options.js';
import { openSession, outputFor } from './shared.js';

interface ExportOptions {
  group?: string;
  patient?: boolean;
  type?: string;
  since?: string;
  typeFilter?: string[];
  out?: string;
  parallel?: string;
  post?: boolean;
  outputFormat?: string;
  resume?: string;
  wait?: string;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

const TYPE_NAME = /^[A-Z][A-Za-z0-9]*$/;

function positiveNumber(flag: string, value: string, integer: boolean, max: number): number {
  const n = Number(value);
  const ok =
    /^\d+(\.\d+)?$/.test(value.trim()) && n > 0 && n <= max && (!integer || Number.isInteger(n));
  if (!ok) {
    throw usageError(
      `${flag} "${value}" is not ${integer ? 'a whole number' : 'a number'} between ${integer ? 1 : 'more than 0'} and ${max}`,
      flag === '--parallel'
        ? 'e.g. --parallel 4 (downloads at once)'
        : 'e.g. --wait 7200 (seconds)',
      { code: 'bad_flag' },
    );
  }
  return n;
}

/** A directory as the user would type it: relative when it is below the working directory. */
function displayPath(ctx: Context, dir: string): string {
  const rel = relative(ctx.cwd, dir);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : dir;
}

/** A destination URL (s3://, az://) as given; a directory resolved against the working directory. */
function destination(ctx: Context, given: string, isSinkUrl: (s: string) => boolean): string {
  // An unknown scheme stays a URL too: opening it says which schemes there are.
  return isSinkUrl(given) || /^[a-z][a-z0-9+.-]*:\/\//i.test(given)
    ? given
    : resolve(ctx.cwd, given);
}

/** `export-20240601T120000Z` in the working directory. */
function defaultOutDir(ctx: Context): string {
  const stamp = new Date(ctx.now())
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return resolve(ctx.cwd, `export-${stamp}`);
}

function kickoffParams(opts: ExportOptions, isFhirInstant: (s: string) => boolean): ExportParams {
  if (opts.group !== undefined && opts.patient) {
    throw usageError(
      '--group and --patient cannot be used together',
      'choose one export level: --group <id> (a Group of patients), --patient (all patients) or neither (the whole system)',
      { code: 'bad_flag' },
    );
  }
  if (opts.group !== undefined && !/^[A-Za-z0-9\-.]{1,64}$/.test(opts.group)) {
    throw usageError(
      `--group "${opts.group}" is not a FHIR id`,
      'ids are 1-64 letters, digits, "-" and "."',
      { code: 'bad_flag' },
    );
  }
  const params: ExportParams = {
    level:
      opts.group !== undefined
        ? { kind: 'group', id: opts.group }
        : opts.patient
          ? { kind: 'patient' }
          : { kind: 'system' },
    method: opts.post ? 'POST' : 'GET',
  };
  if (opts.type !== undefined) {
    const types = opts.type
      .split(',')
      .map((t) => t.trim())
      .filter(Boolean);
    const bad = types.find((t) => !TYPE_NAME.test(t));
    if (!types.length || bad !== undefined) {
      throw usageError(
        `--type: "${bad ?? opts.type}" is not a resource type`,
        'give FHIR resource types separated by commas, e.g. --type Patient,Observation',
        { code: 'bad_flag' },
      );
    }
    params.types = types;
  }
  if (opts.since !== undefined) {
    if (!isFhirInstant(opts.since)) {
      throw usageError(
        `--since "${opts.since}" is not a FHIR instant`,
        "give a date and time with seconds and a time zone, e.g. --since 2024-06-01T00:00:00Z (a previous export's transactionTime works)",
        { code: 'bad_flag' },
      );
    }
    params.since = opts.since;
  }
  if (opts.typeFilter?.length) {
    const bad = opts.typeFilter.find((f) => !/^[A-Z][A-Za-z0-9]*\?.+/.test(f));
    if (bad !== undefined) {
      throw usageError(
        `--type-filter "${bad}" is not a search query`,
        'give Type?params, e.g. --type-filter "Observation?code=4548-4"',
        { code: 'bad_flag' },
      );
    }
    params.typeFilters = opts.typeFilter;
  }
  if (opts.outputFormat !== undefined) params.outputFormat = checkOutputFormat(opts.outputFormat);
  return params;
}

export function registerExport(program: Command, ctx: Context): void {
  const exportCmd = program
    .command('export')
    .description('Bulk Data $export: kick off, wait, and download every NDJSON file (resumable)')
    .option('--group <id>', 'export the patients of this Group (Group/<id>/$export)')
    .option(
      '--patient',
      'export all patients (Patient/$export); default: the whole system ($export)',
    )
    .option('--type <types>', 'only these resource types, comma-separated (_type)')
    .option('--since <instant>', 'only resources changed after this FHIR instant (_since)')
    .option(
      '--type-filter <query>',
      'a search query such as "Observation?code=4548-4" (_typeFilter); repeatable',
      collect,
    )
    .option(
      '--out <dir|url>',
      'a new or empty directory, s3://bucket/prefix or az://container/prefix (default ./export-<timestamp>)',
    )
    .option('--parallel <n>', 'downloads at once (default 4)')
    .option('--post', 'kick off by POST with a FHIR Parameters body instead of GET')
    .option(
      '--output-format <format>',
      "_outputFormat (default: the server's, application/fhir+ndjson)",
    )
    .option(
      '--resume <dir|url>',
      'continue the export saved in <dir|url>: poll again and fetch only missing files',
    );
  // --trust-origin (repeatable): from its row in the settings table.
  addSettingOptions(exportCmd, ['trustedOrigins'])
    .option(
      '--wait <seconds>',
      'give up when the server has not finished the job after this long (default 3600, or --timeout when given)',
    )
    .addHelpText(
      'after',
      `
Examples:
  $ smart export --type Patient,Observation --out ./export
  $ smart export --group cohort-1 --since 2024-06-01T00:00:00Z
  $ smart export --patient --type Observation --type-filter "Observation?code=4548-4" --post
  $ smart export --resume ./export            # after Ctrl-C, a timeout or a broken connection
  $ smart export cancel ./export              # DELETE the job on the server
  $ smart export -o json | jq .resourcesByType
  $ smart export --out s3://my-bucket/exports/2024-06     # AWS_* credentials, as for the aws CLI
  $ smart export --out az://exports/2024-06               # AZURE_STORAGE_* credentials

Files: <dir>/<Type>.000.ndjson..., error/OperationOutcome.000.ndjson, deleted/...; the state in
<dir>/export.json and the server's manifest in <dir>/manifest.json. Each file is streamed to
<name>.part and renamed when complete; its line count is checked against the manifest's count.
--wait bounds the whole wait for the job; --timeout (global) bounds each HTTP request and a
download that stalls, and without --wait the whole wait too (--timeout 600: give up after 600 s).
Ctrl-C stops cleanly (exit 130); a second Ctrl-C quits at once.
Output: progress on stderr; -o json a summary, -o ndjson the progress events, on stdout.
Object storage: the same names under the prefix; each file is committed (a multipart upload
completed, a block list committed) only when complete, with its line count in its metadata.
See README "Exporting to object storage" for the environment variables.
`,
    )
    .action(async (opts: ExportOptions) => {
      const [core, { isFhirInstant }, output] = await Promise.all([
        import('../core/export/index.js'),
        import('../core/export/kickoff.js'),
        outputFor(ctx, 'exportSummary', 'export'),
      ]);
      const parallel =
        opts.parallel !== undefined
          ? positiveNumber('--parallel', opts.parallel, true, 64)
          : core.DEFAULT_PARALLEL;
      let waitMs =
        opts.wait !== undefined
          ? Math.round(positiveNumber('--wait', opts.wait, false, 31 * 24 * 3600) * 1000)
          : core.DEFAULT_WAIT_MS;
      let params: ExportParams | undefined;
      let outDir: string;
      if (opts.resume !== undefined) {
        const given = (
          [
            ['--group', opts.group !== undefined],
            ['--patient', opts.patient],
            ['--type', opts.type !== undefined],
            ['--since', opts.since !== undefined],
            ['--type-filter', (opts.typeFilter?.length ?? 0) > 0],
            ['--post', opts.post],
            ['--output-format', opts.outputFormat !== undefined],
            ['--out', opts.out !== undefined],
          ] as const
        )
          .filter(([, on]) => on)
          .map(([flag]) => flag);
        if (given.length) {
          throw usageError(
            `--resume takes the export's parameters from ${opts.resume}/export.json; ${given.join(', ')} cannot be changed`,
            'drop those flags, or start a new export with a new --out',
            { code: 'bad_flag' },
          );
        }
        outDir = destination(ctx, opts.resume, core.isSinkUrl);
      } else {
        params = kickoffParams(opts, isFhirInstant);
        outDir =
          opts.out !== undefined ? destination(ctx, opts.out, core.isSinkUrl) : defaultOutDir(ctx);
      }
      // s3://, az://: the store's SDK is loaded now, and only now.
      const sink = await core.openSink(outDir, ctx.env);
      const settings = await ctx.settings();
      if (opts.resume !== undefined) await useSavedServer(ctx, sink, opts.resume);
      // `smart export --timeout 600` gives up on the job after 600 s, as one would expect;
      // --wait, when given, says so explicitly and leaves --timeout to each request.
      if (opts.wait === undefined && settings.sources.timeout === 'flag')
        waitMs = settings.timeoutMs;
      const session = await openSession(ctx);
      const [{ createExportReporter }, { renderersOf }] = await Promise.all([
        import('../output/export-progress.js'),
        import('../output/render.js'),
      ]);
      const reporter = createExportReporter(
        (await renderersOf(output.format)).progressOnStdout
          ? 'ndjson'
          : ctx.io.stderr.isTTY
            ? 'tty'
            : 'plain',
        ctx.io,
        ctx.now,
      );
      const shown = sink.kind === 'directory' ? displayPath(ctx, outDir) : outDir;
      const { listOf } = await import('../core/settings.js');
      const runOptions = {
        session,
        trustedOrigins: listOf(settings.trustedOrigins),
        http: () => ctx.http(),
        outDir,
        sink,
        displayDir: shown,
        parallel,
        waitMs,
        signal: ctx.signal,
        now: ctx.now,
        sleep: ctx.clock.sleep,
        idleTimeoutMs: settings.timeoutMs,
        // When --out cannot take the job's state after the kick-off, it goes here instead.
        stateFallbackDir: join(
          settings.paths.cacheDir,
          'exports',
          `${basename(outDir) || 'export'}-${ctx.now().toString(36)}`,
        ),
        onEvent: (e: Parameters<typeof reporter.onEvent>[0]) => reporter.onEvent(e),
      };
      let summary: ExportSummary;
      try {
        summary = params
          ? await core.startExport(params, runOptions)
          : await core.resumeExport(runOptions);
      } catch (e) {
        reporter.finish();
        if (ctx.signal.aborted || (isSmartError(e) && e.code === 'interrupted')) {
          const state = await core.readState(sink).catch(() => undefined);
          if (state) {
            const done = (state.files ?? []).filter((f) => f.status === 'done').length;
            ctx.log.info(
              done
                ? `stopped: ${done} completed file${done === 1 ? '' : 's'} kept in ${shown}`
                : `stopped: the job is still running on the server; its state is in ${sink.describe('export.json')}`,
            );
            ctx.log.info(`to resume: smart export --resume ${core.quoteArg(shown)}`);
          }
        }
        throw e;
      } finally {
        await sink.close();
      }
      reporter.finish();
      await output.show({ kind: 'exportSummary', summary });
      if (summary.mismatches.length) {
        const list = summary.mismatches
          .map((m) => `${m.file} (${m.actual} of ${m.expected})`)
          .join(', ');
        throw new SmartError(
          'fhir',
          `${summary.mismatches.length} file(s) do not hold the number of resources the manifest gives: ${list}`,
          {
            code: 'count_mismatch',
            hint: `the files are kept in ${shown}; try them again with \`smart export --resume ${core.quoteArg(shown)}\`, or report the server's count as wrong`,
          },
        );
      }
      if (summary.errorCountMismatches.length) {
        // The server reported errors and miscounted them: not a broken download (warned above).
        throw new SmartError(
          'fhir',
          `the export finished with errors: the server reported ${summary.errorCount} OperationOutcome${summary.errorCount === 1 ? '' : 's'} in error[], and its error[] counts do not match the files`,
          {
            code: 'export_errors',
            hint: `the output files match the manifest; everything is in ${shown}, the error files as the server sent them`,
          },
        );
      }
    });

  exportCmd
    .command('cancel')
    .description('Cancel an export: DELETE its status URL (saved in <dir>/export.json)')
    .argument('<dir|url>', 'the --out directory or URL of the export')
    .addHelpText(
      'after',
      `
Examples:
  $ smart export cancel ./export
  $ smart export cancel ./export -o json
  $ smart export cancel s3://my-bucket/exports/2024-06

The server stops the job, or frees the files of a finished one. Files already downloaded stay.
`,
    )
    .action(async (dir: string) => {
      const output = await outputFor(ctx, 'exportCancel', 'export cancel');
      const { cancelExport, isSinkUrl, openSink } = await import('../core/export/index.js');
      const outDir = destination(ctx, dir, isSinkUrl);
      const sink = await openSink(outDir, ctx.env);
      await useSavedServer(ctx, sink, dir);
      const session = await openSession(ctx);
      const result = await cancelExport({ session, outDir, sink, signal: ctx.signal }).finally(() =>
        sink.close(),
      );
      await output.show({
        kind: 'exportCancel',
        statusUrl: result.statusUrl,
        status: result.status,
        outDir,
      });
    });
}

/**
 * `--resume` and `cancel` of an export started with `--fhir-url` alone: with no FHIR URL
 * configured now, the server is the one export.json names (the kick-off URL's FHIR base). A
 * FHIR URL from the environment or a profile on another origin is refused with the right hint:
 * its token is for that other server.
 */
async function useSavedServer(
  ctx: Context,
  sink: import('../core/export/index.js').Sink,
  shown: string,
): Promise<void> {
  const settings = await ctx.settings();
  if (settings.sources.fhirUrl === 'flag') return;
  const { readState } = await import('../core/export/index.js');
  const state = await readState(sink).catch(() => undefined);
  if (!state?.kickoff?.url) return;
  let saved: URL;
  try {
    saved = new URL(state.kickoff.url);
  } catch {
    return;
  }
  const path = saved.pathname.replace(/\/(Patient|Group\/[^/]+)?\/\$export$/, '');
  const base = `${saved.origin}${path}`.replace(/\/+$/, '');
  if (!settings.fhirUrl) {
    settings.fhirUrl = base;
    settings.baseUrl ??= saved.origin;
    settings.sources.fhirUrl = 'derived';
    ctx.log.verbose(`FHIR base ${base} (from ${shown}'s export.json)`);
    return;
  }
  const configured = new URL(settings.fhirUrl).origin;
  const alias = settings.serverUrl;
  if (configured !== saved.origin && alias !== saved.origin) {
    throw usageError(
      `the export in ${shown} was started on ${saved.origin} (export.json), but the FHIR URL in use is ${settings.fhirUrl} (from ${settings.sources.fhirUrl === 'env' ? 'SMART_FHIR_URL' : `profile "${settings.profile}"`})`,
      `give that server again: --fhir-url ${base} (and the --token-url, --client-id and --key used to start it)`,
      { code: 'bad_export_state' },
    );
  }
}
