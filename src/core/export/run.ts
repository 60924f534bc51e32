import { SmartError, isSmartError } from '../errors.js';
import { statusError, type HttpResponse } from '../http/index.js';
import { redactUrl } from '../redact.js';
import { DirectorySink } from './sinks/directory.js';
import { META_LINES, META_MANIFEST } from './sinks/meta.js';
import type { Sink, StoredFile } from './sinks/types.js';
import { buildKickoff, kickOff } from './kickoff.js';
import { extensionFor, planFiles } from './naming.js';
import { makeRun, type ExportRunOptions, type Run } from './options.js';
import { parseManifest, pollUntilComplete, quoteArg } from './poll.js';
import { downloadPending } from './pool.js';
import { MANIFEST_FILE, StateFile, readState } from './state.js';
import { summarize } from './summary.js';
import { sleep } from '../clock.js';
import type { ExportParams, ExportState, ExportSummary, FileState, Manifest } from './types.js';

/**
 * `--out` must be new or empty: an export never mixes its files with others. Returns true when
 * the directory was created.
 */
export async function prepareOutDir(dir: string, display = dir): Promise<boolean> {
  const sink = new DirectorySink(dir);
  try {
    return await sink.prepare(display);
  } finally {
    await sink.release();
  }
}

/** Kick off a new export into an empty `outDir`, wait for it, download everything. */
export async function startExport(
  params: ExportParams,
  o: ExportRunOptions,
): Promise<ExportSummary> {
  const run = makeRun(o);
  const display = o.displayDir ?? o.outDir;
  const warn = (message: string) => run.emit({ event: 'warning', message });
  // Claims the destination and proves it can be written, before anything starts on the server.
  const created = await run.sink.prepare(display, warn);
  try {
    const req = buildKickoff(params);
    let accepted: { statusUrl: string; url: string };
    try {
      run.emit({
        event: 'kickoff',
        method: req.method,
        url: redactUrl(o.session.resolve(req.path)),
      });
      const started = run.now();
      accepted = await kickOff(o.session, params, o.signal, {
        deadline: started + (o.waitMs ?? 3_600_000),
        now: run.now,
        sleep: o.sleep ?? sleep,
        onWait: (w) =>
          run.emit({
            event: 'wait',
            status: w.status,
            reason: w.reason,
            delayMs: w.delayMs,
            elapsedMs: run.now() - started,
          }),
      });
    } catch (e) {
      // Nothing was started: leave no empty directory behind.
      if (created) await run.sink.discard().catch(() => undefined);
      throw e;
    }
    const { statusUrl, url } = accepted;
    const state: ExportState = {
      version: 1,
      statusUrl,
      kickoff: { url, method: params.method, params },
      startedAt: new Date(run.now()).toISOString(),
      status: 'in-progress',
    };
    const file = new StateFile(run.sink, state);
    // Written before anything else can fail: with it the job can always be found again.
    try {
      await file.flush();
    } catch (e) {
      throw await unsavedJob(o, state, display, e);
    }
    run.emit({ event: 'accepted', statusUrl: redactUrl(statusUrl), outDir: o.outDir });
    return await continueExport(run, file, false);
  } finally {
    await run.sink.release?.();
  }
}

/**
 * The job runs on the server but its state could not be written to the destination: save it in
 * the fallback directory when there is one, and in any case name the status URL and the
 * commands that pick the job up or stop it, so it is never lost.
 */
async function unsavedJob(
  o: ExportRunOptions,
  state: ExportState,
  display: string,
  cause: unknown,
): Promise<SmartError> {
  const why = cause instanceof Error ? cause.message : String(cause);
  const url = redactUrl(state.statusUrl);
  const message = `the export was started (status URL ${url}) but its state cannot be saved in ${display}: ${why}`;
  if (o.stateFallbackDir) {
    const other = new DirectorySink(o.stateFallbackDir);
    try {
      await other.prepare(o.stateFallbackDir);
      try {
        await other.writeText('export.json', JSON.stringify(state, null, 2) + '\n');
      } finally {
        await other.release();
      }
      const dir = quoteArg(o.stateFallbackDir);
      return new SmartError('runtime', message, {
        cause,
        code: 'state_not_saved',
        details: { statusUrl: url, stateDir: o.stateFallbackDir },
        hint: `the job is saved in ${o.stateFallbackDir} instead: download it there with \`smart export --resume ${dir}\`, or stop it with \`smart export cancel ${dir}\``,
      });
    } catch {
      // fall through: the status URL alone
    }
  }
  return new SmartError('runtime', message, {
    cause,
    code: 'state_not_saved',
    details: { statusUrl: url },
    hint: `the job keeps running on the server: stop it with \`smart api -X DELETE ${quoteArg(url)}\`; to download it, free space or permissions and start a new export`,
  });
}

/** Re-attach to the export saved in `outDir` and fetch only what is missing or incomplete. */
export async function resumeExport(o: ExportRunOptions): Promise<ExportSummary> {
  const run = makeRun(o);
  const display = o.displayDir ?? o.outDir;
  const state = await readState(run.sink);
  if (state.status === 'cancelled') {
    throw new SmartError('usage', `the export in ${o.outDir} was cancelled`, {
      code: 'export_cancelled',
      hint: 'start a new export with `smart export --out <new dir>`',
    });
  }
  // The status URL will get the token: it must be on the FHIR server's origin.
  o.session.resolve(state.statusUrl);
  // One export at a time in a destination.
  await run.sink.claim?.(display, (message) => run.emit({ event: 'warning', message }));
  try {
    run.emit({
      event: 'resume',
      statusUrl: redactUrl(state.statusUrl),
      outDir: o.outDir,
      startedAt: state.startedAt,
    });
    return await continueExport(run, new StateFile(run.sink, state), true);
  } finally {
    await run.sink.release?.();
  }
}

/**
 * Whether a file recorded as done is there, whole: its size matches and, in a bucket, its
 * metadata (the lines counted, the manifest it came from).
 */
function isStored(stored: Map<string, StoredFile>, f: FileState, manifestUrl: string): boolean {
  if (f.status !== 'done' || f.bytes === undefined) return false;
  const got = stored.get(f.name);
  if (!got || got.bytes !== f.bytes) return false;
  if (!got.meta) return true;
  const lines = got.meta[META_LINES];
  if (lines !== undefined && f.resources !== undefined && lines !== String(f.resources))
    return false;
  return got.meta[META_MANIFEST] === manifestUrl;
}

/**
 * What the destination holds of the files recorded as done: one listing, plus the metadata of
 * each candidate where the listing has none (S3 lists sizes only).
 */
async function inventory(sink: Sink, files: FileState[]): Promise<Map<string, StoredFile>> {
  if (!files.length) return new Map();
  const stored = await sink.list();
  if (sink.kind === 'directory') return stored;
  const need = files.filter((f) => {
    const got = stored.get(f.name);
    return f.status === 'done' && got && got.bytes === f.bytes && !got.meta;
  });
  const queue = [...need];
  await Promise.all(
    Array.from({ length: Math.min(8, queue.length) }, async () => {
      for (let f = queue.shift(); f; f = queue.shift()) {
        const got = await sink.stat(f.name);
        if (got) stored.set(f.name, got);
        else stored.delete(f.name);
      }
    }),
  );
  return stored;
}

async function readSavedManifest(sink: Sink, statusUrl: string): Promise<Manifest | undefined> {
  try {
    const text = await sink.readText(MANIFEST_FILE);
    return text === undefined ? undefined : parseManifest(JSON.parse(text), statusUrl);
  } catch {
    return undefined;
  }
}

function goneError(res: HttpResponse, outDir: string): SmartError {
  return statusError('GET', res.url, res, {
    kind: 'fhir',
    prefix: 'no such export:',
    code: 'no_such_export',
    hint: `the server no longer knows this export (cancelled, expired or never finished); start a new one with a new --out (${outDir} keeps what was downloaded)`,
  });
}

async function continueExport(run: Run, file: StateFile, resumed: boolean): Promise<ExportSummary> {
  const { o } = run;
  const state = file.state;
  const outDir = o.outDir;
  const sink = run.sink;
  try {
    // A finished export whose files are all intact needs no request at all.
    const known = state.files ?? [];
    const stored = state.status === 'complete' ? await inventory(sink, known) : undefined;
    const manifestUrl = redactUrl(state.statusUrl);
    const allThere =
      !!stored && known.length > 0 && known.every((f) => isStored(stored, f, manifestUrl));
    let manifest: Manifest | undefined;
    if (allThere) manifest = await readSavedManifest(sink, state.statusUrl);
    if (!manifest) {
      const polled = await pollUntilComplete({
        session: o.session,
        statusUrl: state.statusUrl,
        waitMs: o.waitMs ?? 3_600_000,
        signal: o.signal,
        now: run.now,
        onEvent: run.emit,
        bounds: o.pollBounds,
        sleep: o.sleep,
        outDir: o.displayDir ?? outDir,
      });
      if (polled.state === 'gone') {
        const saved = resumed ? await readSavedManifest(sink, state.statusUrl) : undefined;
        if (!saved) throw goneError(polled.response, outDir);
        run.emit({
          event: 'warning',
          message: `the server no longer knows this export (${polled.response.status}); using the saved ${MANIFEST_FILE}`,
        });
        manifest = saved;
      } else {
        manifest = polled.manifest;
        // The server's own words, for the record (and for a resume if the job is later gone).
        await sink.writeText(MANIFEST_FILE, polled.text);
      }
    }
    return await downloadAll(run, file, manifest);
  } catch (e) {
    if (o.signal?.aborted) {
      await file.settle().catch(() => undefined);
      const pending = state.files?.filter((f) => f.status !== 'done').length;
      run.emit({ event: 'interrupted', outDir, ...(pending !== undefined ? { pending } : {}) });
      throw o.signal.reason ?? e;
    }
    state.lastError = e instanceof Error ? e.message : String(e);
    await file.flush().catch(() => undefined);
    throw e;
  }
}

async function downloadAll(run: Run, file: StateFile, manifest: Manifest): Promise<ExportSummary> {
  const { o } = run;
  const state = file.state;
  const sink = run.sink;
  const outputFormat = state.kickoff.params?.outputFormat;
  const planned = planFiles(manifest, outputFormat);
  const previous = new Map((state.files ?? []).map((f) => [f.name, f]));
  const stored = await inventory(sink, state.files ?? []);
  const manifestUrl = redactUrl(state.statusUrl);
  const files: FileState[] = [];
  for (const p of planned) {
    const prev = previous.get(p.name);
    const same = prev && prev.type === p.type && prev.count === p.count && prev.kind === p.kind;
    if (same && isStored(stored, prev, manifestUrl)) {
      // Keep the recorded figures, take the (possibly re-signed) URL.
      files.push({ ...prev, url: p.url });
    } else {
      files.push({ ...p, status: 'pending' });
    }
  }
  state.files = files;
  state.transactionTime = manifest.transactionTime;
  state.requiresAccessToken = manifest.requiresAccessToken;
  const pending = files.filter((f) => f.status !== 'done');
  state.status = 'downloading';
  await file.flush();
  // Leftovers of an interrupted run (partial files, unfinished uploads): they restart from zero.
  await sink.sweep(pending.map((f) => f.name));
  if (manifest.requiresAccessToken) checkTokenOrigins(o, pending);

  const counts = files.filter((f) => f.kind === 'output').map((f) => f.count);
  run.emit({
    event: 'manifest',
    transactionTime: manifest.transactionTime,
    requiresAccessToken: manifest.requiresAccessToken,
    files: files.length,
    output: files.filter((f) => f.kind === 'output').length,
    error: files.filter((f) => f.kind === 'error').length,
    deleted: files.filter((f) => f.kind === 'deleted').length,
    ...(counts.every((c) => c !== undefined)
      ? { resources: counts.reduce<number>((a, c) => a + (c ?? 0), 0) }
      : {}),
    pending: pending.length,
  });
  for (const f of files) {
    if (f.status === 'done') {
      run.emit({
        event: 'file-skip',
        file: f.name,
        kind: f.kind,
        resourceType: f.type,
        bytes: f.bytes ?? 0,
        resources: f.resources ?? 0,
      });
    }
  }

  // Gzip files are kept byte-exact; their lines are counted through gunzip.
  const gzip = extensionFor(outputFormat).endsWith('.gz');
  const failure = await downloadPending(run, file, manifest, manifestUrl, pending, gzip);
  if (o.signal?.aborted) throw o.signal.reason;
  if (failure !== undefined) {
    state.status = 'failed';
    throw withResumeHint(failure, o.displayDir ?? o.outDir);
  }

  state.status = 'complete';
  if (pending.length || !state.completedAt) state.completedAt = new Date(run.now()).toISOString();
  delete state.lastError;
  await file.flush();
  const summary = await summarize(run, state);
  run.emit({ event: 'complete', summary });
  return summary;
}

function withResumeHint(e: unknown, outDir: string): unknown {
  if (!isSmartError(e) || e.code === 'file_gone') return e;
  return new SmartError(e.kind, e.message, {
    cause: e,
    status: e.status,
    code: e.code,
    details: e.details,
    hint: `${e.hint ? `${e.hint.replace(/[.;]?\s*$/, '')}; ` : ''}completed files are kept: fetch the rest with \`smart export --resume ${quoteArg(outDir)}\``,
  });
}

/**
 * Files that need the token (requiresAccessToken: true) on an origin other than the FHIR
 * server's: refused before any download, unless the user trusts that origin (--trust-origin).
 * The state is saved: `--resume` with the flag continues the same job.
 */
function checkTokenOrigins(o: ExportRunOptions, files: FileState[]): void {
  const fhirOrigin = new URL(o.session.resolve('metadata')).origin;
  const trusted = new Set(o.trustedOrigins ?? []);
  const foreign = new Set<string>();
  for (const f of files) {
    let origin: string;
    try {
      origin = new URL(o.session.reachable?.(f.url) ?? f.url).origin;
    } catch {
      continue; // a URL that does not parse fails at its download, with its own message
    }
    if (origin !== fhirOrigin && !trusted.has(origin)) foreign.add(origin);
  }
  if (!foreign.size) return;
  const origins = [...foreign];
  const flags = origins.map((x) => `--trust-origin ${x}`).join(' ');
  const dir = quoteArg(o.displayDir ?? o.outDir);
  throw new SmartError(
    'runtime',
    `the manifest's files on ${origins.join(', ')} need the access token (requiresAccessToken: true), but that is not the FHIR server's origin (${fhirOrigin}): refusing to send the token there`,
    {
      code: 'untrusted_origin',
      details: { origins, fhirOrigin },
      hint: `if ${origins.length === 1 ? 'that origin is' : 'those origins are'} the server's own file storage and may have the token, continue with \`smart export --resume ${dir} ${flags}\` (or save it: \`smart config set trustedOrigins ${origins.join(',')}\`)`,
    },
  );
}
