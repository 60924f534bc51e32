/**
 * The embedded SMART Backend Services + FHIR R4 server (`smart sandbox`): an Aidbox-like admin
 * API, discovery, a strict private_key_jwt token endpoint, FHIR search/read, Bulk $export and
 * fault injection. It shares no code with src/core, so that a client bug cannot hide in both.
 */
export { startSandbox } from './server.js';
export { parseFaultSpec } from './faults.js';
export { QUIRKS, parseQuirks, type Quirk } from './quirks.js';
export { FIXTURES_DIR } from './data.js';
export { DEFAULT_ALGS, KNOWN_ALGS } from './auth.js';
export type {
  FaultAction,
  FaultRule,
  RequestArrival,
  RequestLogEntry,
  Resource,
  SandboxHandle,
  SandboxOptions,
} from './types.js';
