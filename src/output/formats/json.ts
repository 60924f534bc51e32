import type { FormatRenderers, RenderIO } from '../render.js';
import type { DecodeResult, RegistrationResult } from '../results.js';
import { jsonText, writeOut } from '../write.js';

// -o json (indented), and what a script gets from a pipe without -o.

/** `{header, claims, times, assertion, checks, verified?}` of `smart decode`. */
export function decodeDocument(r: DecodeResult): Record<string, unknown> {
  const body: Record<string, unknown> = {
    header: r.decoded.header,
    claims: r.decoded.claims,
    times: r.times,
    assertion: r.isAssertion,
    checks: r.checks,
  };
  if (r.verification) body.verified = r.verification;
  return body;
}

/** `{client: {...}, accessPolicy: {...}}`: each with the result and what the server stored. */
export function registrationDocument(r: RegistrationResult, io: RenderIO): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const o of r.rows) {
    body[o.what === 'Client' ? 'client' : o.what === 'AccessPolicy' ? 'accessPolicy' : o.what] = {
      resourceType: o.what,
      id: o.id,
      url: o.url,
      result: o.result,
      status: o.status,
      ...(o.resource ? { resource: o.resource } : {}),
    };
  }
  io.log.verbose(`${r.verb}: ${r.rows.map((o) => `${o.what}/${o.id} ${o.result}`).join(', ')}`);
  return body;
}

const doc = (io: RenderIO, value: unknown) => writeOut(io.io.stdout, jsonText(value, true));

export const renderers: FormatRenderers = {
  progressOnStdout: false,
  object: (r, io) => doc(io, r.value),
  records: (r, io) => doc(io, r.document ?? r.rows),
  text: (r, io) => doc(io, r.json),
  // One line, also with -o json: a script reads it as soon as the server listens.
  serving: (r, io) => writeOut(io.io.stdout, JSON.stringify(r.value) + '\n'),
  discover: (r, io) => doc(io, r.document),
  decode: (r, io) => doc(io, decodeDocument(r)),
  registration: (r, io) => doc(io, registrationDocument(r, io)),
  search: async (r, io) => {
    const { renderSearch, SEARCH_WRITERS } = await import('../stream.js');
    await renderSearch(r.stdout ?? io.io.stdout, r.pages, r.options, SEARCH_WRITERS.json);
  },
  demo: async (r, io) => {
    const { renderSearch, SEARCH_WRITERS } = await import('../stream.js');
    await renderSearch(r.stdout ?? io.io.stdout, r.pages, r.options, SEARCH_WRITERS.json);
  },
  resource: async (r, io) => {
    const { renderResource, RESOURCE_WRITERS } = await import('../stream.js');
    await renderResource(io.io.stdout, r.resource, r.options, r.text, RESOURCE_WRITERS.json);
  },
  exportSummary: (r, io) => doc(io, r.summary),
  exportCancel: (r, io) =>
    doc(io, { status: 'cancelled', statusUrl: r.statusUrl, outDir: r.outDir }),
};
