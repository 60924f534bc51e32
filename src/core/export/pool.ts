import { downloadFile } from './download.js';
import { DEFAULT_PARALLEL, type Run } from './options.js';
import type { StateFile } from './state.js';
import type { FileState, Manifest } from './types.js';

/**
 * Download the pending files, `parallel` at a time. After the first failure no new file starts;
 * those in flight finish. Returns that failure (undefined when every file came down, or when
 * the run was aborted: the caller checks the signal).
 */
export async function downloadPending(
  run: Run,
  file: StateFile,
  manifest: Manifest,
  manifestUrl: string,
  pending: FileState[],
  gzip: boolean,
): Promise<unknown> {
  const { o } = run;
  const sink = run.sink;
  const queue = [...pending];
  let failure: unknown;
  const worker = async () => {
    while (queue.length && failure === undefined && !o.signal?.aborted) {
      const f = queue.shift()!;
      try {
        const r = await downloadFile({
          file: f,
          sink,
          manifestUrl,
          requiresAccessToken: manifest.requiresAccessToken,
          trustedOrigins: o.trustedOrigins,
          session: o.session,
          http: o.http,
          signal: o.signal,
          now: run.now,
          onEvent: run.emit,
          retries: o.retries,
          backoffMs: o.backoffMs,
          idleTimeoutMs: o.idleTimeoutMs,
          progressIntervalMs: o.progressIntervalMs,
          gzip,
          // An error[] count is often the failed output's, not the file's lines: never refetched.
          retryMismatch: f.kind !== 'error',
          sleep: o.sleep,
          random: o.random,
        });
        // An error[] file is kept as sent whatever its count says (summary.errorCountMismatches).
        f.status = r.mismatch && f.kind !== 'error' ? 'mismatch' : 'done';
        f.bytes = r.bytes;
        f.resources = r.resources;
        f.completedAt = new Date(run.now()).toISOString();
        file.touch();
        if (r.mismatch && f.kind === 'error') {
          run.emit({
            event: 'warning',
            message: `${f.name}: the manifest's error[] count is ${r.mismatch.expected}, the file holds ${r.mismatch.actual} OperationOutcome${r.mismatch.actual === 1 ? '' : 's'} (kept as sent, not downloaded again)`,
          });
        } else if (r.mismatch) {
          run.emit({
            event: 'warning',
            message: `${f.name}: ${r.mismatch.actual} resources, the manifest says ${r.mismatch.expected} (kept; counted as an error)`,
          });
        }
        run.emit({
          event: 'file-done',
          file: f.name,
          kind: f.kind,
          resourceType: f.type,
          bytes: r.bytes,
          resources: r.resources,
          ms: r.ms,
        });
      } catch (e) {
        if (o.signal?.aborted) return;
        // Stop starting new files; those in flight finish (their data is worth keeping).
        failure ??= e;
      }
    }
  };
  const n = Math.max(1, Math.min(o.parallel ?? DEFAULT_PARALLEL, pending.length || 1));
  await Promise.all(Array.from({ length: n }, worker));
  return failure;
}
