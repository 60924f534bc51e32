import type { Command } from 'commander';
import type { Context } from '../context.js';
import { usageError } from '../core/errors.js';
import type { Resource } from '../core/fhir/index.js';
import { openSession, outputFor } from './shared.js';

export interface QueryOptions {
  all?: boolean;
  limit?: string;
  count?: string;
  columns?: string;
  where?: string;
}

function parseCountFlag(flag: string, value: string | undefined, min: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value.trim()) || Number(value) < min) {
    throw usageError(
      `${flag} "${value}" is not ${min === 0 ? 'a whole number' : 'a positive whole number'}`,
      flag === '--limit'
        ? 'e.g. --limit 50 (stop after 50 resources)'
        : 'e.g. --count 100 (ask for 100 resources per page)',
      { code: 'bad_flag' },
    );
  }
  return Number(value);
}

export function registerQuery(program: Command, ctx: Context): void {
  program
    .command('query')
    .description('Search or read FHIR resources, e.g. smart query Observation code=4548-4')
    .argument('<target>', 'a resource type, Type/id (read), or "Type?name=value&..."')
    .argument('[params...]', 'search parameters as name=value (repeat a name to AND, commas to OR)')
    .option('--all', 'follow Bundle next links to the last page')
    .option('--limit <n>', 'stop after n resources (follows next links as far as needed)')
    .option('--count <n>', 'page size asked of the server (sets _count)')
    .option(
      '--columns <list>',
      'table/CSV columns: comma-separated FHIRPath expressions, each optionally label=expression',
    )
    .option(
      '--where <fhirpath>',
      'keep only the resources for which this FHIRPath expression is true (any output format)',
    )
    .addHelpText(
      'after',
      `
Examples:
  $ smart query Patient
  $ smart query Observation code=4548-4 _count=2
  $ smart query Observation code=http://loinc.org|4548-4 date=ge2020-01-01 date=lt2021-01-01
  $ smart query "Observation?code=4548-4&_count=2"
  $ smart query Patient/a6a91d7e-7ded-4325-9dbe-42a088e7e039
  $ smart query Observation --all -o ndjson > observations.ndjson
  $ smart query Observation --limit 500 -o csv > observations.csv
  $ smart query Patient --columns 'id,name=name.first().family,birthDate'
  $ smart query Observation --columns 'id,code.coding.first().display,value.ofType(Quantity).value'
  $ smart query Patient --where "gender = 'female' and birthDate < @1970" --all
  $ smart query Observation --all --where 'value.ofType(Quantity).value > 7' -o ndjson
  $ smart query Patient -o json | jq -r '.entry[].resource.id'

Output: a table on a terminal (footer on stderr: shown / total), JSON when piped.
  -o json     the server's Bundle (or resource); with --all or --limit one searchset Bundle
  -o ndjson   one resource per line, streamed page by page
  -o csv      RFC 4180, the table's columns, header row
Without --all or --limit only the first page is fetched.
--where filters on this machine, as pages stream in: --limit and the server's total count what the
server matched; -o json is then one searchset Bundle of the kept entries (no total). A bad
expression is exit 2 before any request. On a terminal, --all and --limit show the pages fetched,
resources and rate on stderr (one line that updates).
`,
    )
    .action((target: string, params: string[], opts: QueryOptions) =>
      runQuery(ctx, target, params, opts),
    );
}

/** `smart query`: the action, also run without Commander for a plain command line (fast.ts). */
export async function runQuery(
  ctx: Context,
  target: string,
  params: string[],
  opts: QueryOptions,
): Promise<void> {
  const limit = parseCountFlag('--limit', opts.limit, 1);
  const count = parseCountFlag('--count', opts.count, 0);
  const { parseQueryTarget, readResource, streamSearch } = await import('../core/fhir/index.js');
  const query = parseQueryTarget(target, params);
  const output = await outputFor(ctx, query.id !== undefined ? 'resource' : 'search', 'query');
  const format = output.format;
  const { defaultColumns } = await import('../output/resources.js');
  let columns = defaultColumns(query.type);
  if (opts.columns !== undefined) {
    const { compileColumns } = await import('../output/fhirpath-columns.js');
    columns = await compileColumns(opts.columns, query.type);
    if (format === 'json' || format === 'ndjson') {
      ctx.log.warn(`--columns applies to table and csv output, not ${format}`);
    }
  }
  let where: ((r: Resource) => boolean) | undefined;
  if (opts.where !== undefined) {
    const { compileWhere } = await import('../output/fhirpath-columns.js');
    where = await compileWhere(opts.where, query.type);
  }
  const session = await openSession(ctx);
  const { terminalWidth } = await import('../output/format.js');
  const render = {
    columns,
    pretty: Boolean(ctx.io.stdout.isTTY),
    terminal: Boolean(ctx.io.stdout.isTTY),
    // A forced table on a pipe takes COLUMNS, like other terminal tools.
    width: terminalWidth(ctx.io.stdout, ctx.env),
    info: (line: string) => ctx.log.info(line),
    warn: (line: string) => ctx.log.warn(line),
    where,
  };
  if (query.id !== undefined) {
    if (opts.all || limit !== undefined || count !== undefined) {
      ctx.log.warn(
        `--all, --limit and --count apply to searches; ${query.type}/${query.id} is a read`,
      );
    }
    const { resource, text } = await readResource(session, query.type, query.id, query.params);
    if (where && !where(resource)) {
      ctx.log.info(`--where: ${query.type}/${query.id} does not match; nothing to show`);
      return;
    }
    // The server's text goes out as sent: JSON.parse would turn a decimal 1.50 into 1.5.
    await output.show({ kind: 'resource', resource, text, options: render });
    return;
  }
  // --where rewrites the Bundle: -o json is one searchset Bundle of what it keeps.
  const combine = Boolean(opts.all) || limit !== undefined || where !== undefined;
  const pages = streamSearch(session, query.type, query.params, {
    all: opts.all,
    limit,
    count,
    // One page as JSON is printed as the server sent it: read it whole. Everything else
    // streams, entry by entry.
    stream: format !== 'json' || combine,
    idleTimeoutMs: (await ctx.settings()).timeoutMs,
    signal: ctx.signal,
    onWarning: (m) => ctx.log.warn(m),
  });
  const paging = Boolean(opts.all) || limit !== undefined;
  // --verbose and --debug lines would break into the line: no progress with them.
  const quiet = ctx.globals.verbose || ctx.globals.debug;
  if (!paging || !ctx.io.stderr.isTTY || quiet) {
    await output.show({ kind: 'search', pages, options: { ...render, combine } });
    return;
  }
  // Paging on a terminal: one line on stderr that says how far it got.
  const { pagingProgress } = await import('../output/query-progress.js');
  const progress = pagingProgress(pages, ctx.io, ctx.now);
  try {
    await output.show({
      kind: 'search',
      stdout: progress.stdout,
      pages: progress.pages,
      options: {
        ...render,
        combine,
        info: (line) => {
          progress.finish();
          render.info(line);
        },
        warn: (line) => {
          progress.clear();
          render.warn(line);
        },
      },
    });
  } finally {
    progress.finish();
  }
}
