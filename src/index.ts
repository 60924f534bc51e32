/**
 * The programmatic API of `smart`: the same core the CLI uses. Nothing here prints, prompts or
 * exits; errors are SmartErrors with a kind, a message and a hint.
 */
export * from './core/errors.js';
export * from './core/settings.js';
export * from './core/http.js';
export * from './core/keys.js';
export * from './core/jwks.js';
export * from './core/jwks-server.js';
export * from './core/assertion.js';
export * from './core/discovery.js';
export * from './core/token.js';
export * from './core/session.js';
export * from './core/fhir.js';
export * from './core/aidbox.js';
export * from './core/jwt.js';
export * as bulkExport from './core/export/index.js';
export { startSandbox, parseFaultSpec } from './sandbox/index.js';
export type {
  SandboxOptions,
  SandboxHandle,
  FaultRule,
  FaultAction,
  RequestLogEntry,
} from './sandbox/index.js';
