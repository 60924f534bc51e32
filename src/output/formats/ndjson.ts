import type { FormatRenderers, RenderIO } from '../render.js';
import { jsonText, writeOut } from '../write.js';
import { decodeDocument, registrationDocument } from './json.js';

// -o ndjson: one JSON value per line (a list: one record per line).

const line = (io: RenderIO, value: unknown) => writeOut(io.io.stdout, jsonText(value, false));

export const renderers: FormatRenderers = {
  progressOnStdout: true,
  object: (r, io) => line(io, r.value),
  records: async (r, io) => {
    if (r.rows.length === 0 && r.empty !== undefined) return io.log.info(r.empty);
    if (r.note !== undefined) io.log.info(r.note);
    await writeOut(io.io.stdout, r.rows.map((x) => JSON.stringify(x) + '\n').join(''));
    if (r.after !== undefined) io.log.info(r.after);
  },
  text: (r, io) => line(io, r.json),
  serving: (r, io) => line(io, r.value),
  discover: (r, io) => line(io, r.document),
  decode: (r, io) => line(io, decodeDocument(r)),
  registration: (r, io) => line(io, registrationDocument(r, io)),
  search: async (r, io) => {
    const { renderSearch, SEARCH_WRITERS } = await import('../stream.js');
    await renderSearch(r.stdout ?? io.io.stdout, r.pages, r.options, SEARCH_WRITERS.ndjson);
  },
  demo: async (r, io) => {
    const { renderSearch, SEARCH_WRITERS } = await import('../stream.js');
    await renderSearch(r.stdout ?? io.io.stdout, r.pages, r.options, SEARCH_WRITERS.ndjson);
  },
  resource: async (r, io) => {
    const { renderResource, RESOURCE_WRITERS } = await import('../stream.js');
    await renderResource(io.io.stdout, r.resource, r.options, r.text, RESOURCE_WRITERS.ndjson);
  },
  // The `complete` event of the progress stream already carries it.
  exportSummary: async () => undefined,
  exportCancel: (r, io) =>
    line(io, { status: 'cancelled', statusUrl: r.statusUrl, outDir: r.outDir }),
};
