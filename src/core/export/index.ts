export * from './types.js';
export { buildKickoff, isFhirInstant, kickoffPath } from './kickoff.js';
export { planFiles, safeTypeName } from './naming.js';
export { pollDelay, MIN_POLL_MS, MAX_POLL_MS } from './timing.js';
export { LineCounter } from './lines.js';
export { readState, STATE_FILE, MANIFEST_FILE } from './state.js';
export { quoteArg } from './poll.js';
export { openSink, isSinkUrl } from './sinks/index.js';
export type { Sink } from './sinks/types.js';

export { DEFAULT_PARALLEL, DEFAULT_WAIT_MS, type ExportRunOptions } from './options.js';
export { prepareOutDir, startExport, resumeExport } from './run.js';
export { readIssues } from './summary.js';
export { cancelExport, type CancelResult } from './cancel.js';
