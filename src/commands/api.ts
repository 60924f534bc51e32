import type { Command } from 'commander';
import type { Context } from '../context.js';
import { SmartError, usageError } from '../core/errors.js';
import { openSession } from './shared.js';

export interface ApiOptions {
  method?: string;
  header: string[];
  data?: string;
  include?: boolean;
}

const collect = (value: string, previous: string[]) => [...previous, value];

/** `Name: value` headers to a record with lower-case names. */
export function parseHeaders(headers: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const h of headers) {
    const colon = h.indexOf(':');
    const name = colon < 0 ? '' : h.slice(0, colon).trim();
    if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(name)) {
      throw usageError(
        `-H "${h}" is not a header`,
        "write -H 'Name: value', e.g. -H 'Prefer: return=representation'",
        {
          code: 'bad_header',
        },
      );
    }
    out[name.toLowerCase()] = h.slice(colon + 1).trim();
  }
  return out;
}

async function readAll(chunks: AsyncIterable<Uint8Array | string>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of chunks) parts.push(typeof c === 'string' ? Buffer.from(c) : Buffer.from(c));
  return Buffer.concat(parts);
}

/** -d <json>, -d @file or -d @- (stdin). */
async function readData(ctx: Context, data: string): Promise<string> {
  if (data === '@-') return (await readAll(ctx.io.stdin)).toString('utf8');
  if (data.startsWith('@')) {
    const [{ readFile }, { resolve }] = await Promise.all([
      import('node:fs/promises'),
      import('node:path'),
    ]);
    const file = resolve(ctx.cwd, data.slice(1));
    try {
      return await readFile(file, 'utf8');
    } catch (e) {
      throw usageError(
        `cannot read the request body from ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
        'give -d a readable file (-d @body.json), JSON text, or - for stdin (-d @-)',
        { cause: e, code: 'bad_data' },
      );
    }
  }
  return data;
}

const isJsonType = (type: string) => /^application\/([\w.+-]*\+)?json\b/i.test(type.trim());

const HTTP_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'];

export function registerApi(program: Command, ctx: Context): void {
  program
    .command('api')
    .description('Make an authenticated request to the FHIR API and print the response body')
    .argument(
      '<path>',
      'a path relative to the FHIR base (Patient/123, /metadata) or a URL on its origin',
    )
    .allowExcessArguments()
    .option('-X, --method <method>', 'HTTP method (default GET, or POST with -d)')
    .option(
      '-H, --header <header>',
      "an extra request header 'Name: value' (repeatable)",
      collect,
      [],
    )
    .option('-d, --data <json>', 'request body: JSON text, @file, or @- for stdin')
    .option('-i, --include', 'print the status line and response headers on stderr')
    .addHelpText(
      'after',
      `
Examples:
  $ smart api metadata
  $ smart api GET /metadata       # a leading method word is the method (as gh and httpie take it)
  $ smart api 'Observation?code=4548-4&_count=2'
  $ smart api /Patient/a6a91d7e-7ded-4325-9dbe-42a088e7e039 -i
  $ smart api Patient -X POST -d @patient.json
  $ smart api Patient/123 -X PUT -d @- < patient.json
  $ smart api 'Patient?_summary=count' | jq .total

The body is pretty-printed on a terminal and written as received when piped.
JSON bodies are sent as application/fhir+json. A non-2xx answer prints its body and exits 1.
`,
    )
    .action((_first: string, opts: ApiOptions, command: Command) =>
      runApi(ctx, command.args, opts),
    );
}

/**
 * `smart api`: the action, also run without Commander for a plain command line (fast.ts).
 * `words`: the path, or a method word and the path.
 */
export async function runApi(ctx: Context, words: string[], opts: ApiOptions): Promise<void> {
  const first = words[0]!;
  let path = first;
  if (words.length > 1) {
    if (!HTTP_METHODS.includes(first.toUpperCase()) || words.length > 2) {
      throw usageError(
        `smart api takes one path, got ${words.length} words: ${words.join(' ')}`,
        'give the method with -X (e.g. smart api -X GET /metadata), or as the first word (smart api GET /metadata)',
        { code: 'bad_args' },
      );
    }
    if (opts.method && opts.method.toUpperCase() !== first.toUpperCase()) {
      throw usageError(
        `two methods: ${first.toUpperCase()} and -X ${opts.method}`,
        'give one: smart api GET /metadata, or smart api -X GET /metadata',
        { code: 'bad_method' },
      );
    }
    opts.method = first.toUpperCase();
    path = words[1]!;
  }
  const headers = parseHeaders(opts.header);
  let body: string | undefined;
  if (opts.data !== undefined) {
    body = await readData(ctx, opts.data);
    headers['content-type'] ??= 'application/fhir+json';
    if (isJsonType(headers['content-type'])) {
      try {
        JSON.parse(body);
      } catch (e) {
        throw usageError(
          `the request body (-d ${opts.data.startsWith('@') ? opts.data : '<json>'}) is not valid JSON: ${(e as Error).message}`,
          'check the JSON, e.g. with jq; send another content type with -H "Content-Type: ..."',
          { code: 'bad_json', cause: e },
        );
      }
    }
  }
  const method = (opts.method ?? (body === undefined ? 'GET' : 'POST')).toUpperCase();
  if (!/^[A-Z]+$/.test(method)) {
    throw usageError(
      `-X "${opts.method}" is not an HTTP method`,
      'e.g. -X GET, -X POST, -X PUT, -X DELETE',
      {
        code: 'bad_method',
      },
    );
  }
  const session = await openSession(ctx);
  const res = await session.request(path, { method, headers, body, stream: true });
  const [out, { escapeControls, controlEscaper }] = await Promise.all([
    import('../output/stream.js'),
    import('../output/escape.js'),
  ]);
  if (opts.include) {
    const { STATUS_CODES } = await import('node:http');
    ctx.io.stderr.write(
      escapeControls(out.httpHead(res.status, STATUS_CODES[res.status] ?? '', res.headers)),
    );
  }
  // On a terminal the body is for a person: control characters are shown escaped (\u001b).
  // Piped, it goes out byte for byte.
  const terminal = Boolean(ctx.io.stdout.isTTY);
  const pretty = terminal && isJsonType(res.contentType);
  if (res.ok && !pretty) {
    if (!res.nodeBody) return;
    if (!terminal) return await out.pipeBody(ctx.io.stdout, res.nodeBody);
    const escaper = controlEscaper();
    const body = res.nodeBody;
    return await out.pipeBody(
      ctx.io.stdout,
      (async function* () {
        for await (const chunk of body as AsyncIterable<Uint8Array>)
          yield Buffer.from(escaper.push(chunk));
        yield Buffer.from(escaper.end());
      })(),
    );
  }
  // A body read whole (an error, or JSON pretty-printed on a terminal) is capped like any
  // buffered answer (--max-response); a 2xx body piped through is not.
  const { readBodyCapped, maxResponseBytesOf } = await import('../core/http/index.js');
  const text = res.nodeBody
    ? await readBodyCapped(
        res.nodeBody,
        res.url,
        maxResponseBytesOf((await ctx.settings()).maxResponse),
      )
    : res.text;
  const shown = pretty ? out.prettyBody(text) : text;
  if (text) await out.writeText(ctx.io.stdout, terminal ? escapeControls(shown) : shown);
  if (res.ok) return;
  // Like `gh api`: the body is the answer, exit 1 says it was not a success.
  const err = session.error({ ...res, text }, method);
  const scopes =
    res.status === 403 ? ` (the token's scopes: ${session.grantedScope ?? 'unknown'})` : '';
  throw new SmartError('http', err.message + scopes, {
    status: res.status,
    code: 'http_status',
  });
}
