import { statusError } from '../http/status-error.js';
import { redactUrl } from '../redact.js';
import { DirectorySink } from './sinks/directory.js';
import type { Sink } from './sinks/types.js';
import { StateFile, readState } from './state.js';
import type { ExportSession } from './types.js';

export interface CancelResult {
  statusUrl: string;
  status: number;
  outDir: string;
}

/** DELETE the saved status URL: the server stops the job (or frees its files). */
export async function cancelExport(o: {
  session: ExportSession;
  outDir: string;
  sink?: Sink;
  signal?: AbortSignal;
}): Promise<CancelResult> {
  const sink = o.sink ?? new DirectorySink(o.outDir);
  const state = await readState(sink);
  o.session.resolve(state.statusUrl);
  const res = await o.session.request(state.statusUrl, {
    method: 'DELETE',
    headers: { accept: 'application/fhir+json' },
    signal: o.signal,
  });
  if (res.status === 404 || res.status === 410) {
    throw statusError('DELETE', state.statusUrl, res, {
      kind: 'fhir',
      prefix: 'no such export (already finished or cancelled):',
      said: false,
      code: 'no_such_export',
      hint: 'the server no longer knows this export; nothing to cancel',
    });
  }
  if (!res.ok) throw o.session.error(res, 'DELETE');
  const file = new StateFile(sink, { ...state, status: 'cancelled' });
  await file.flush();
  return { statusUrl: redactUrl(state.statusUrl), status: res.status, outDir: o.outDir };
}
