/**
 * The programmatic API of `smart`: the same core the CLI uses, curated. Nothing here prints,
 * prompts or exits; every failure the caller can act on is a {@link SmartError} with a `kind`
 * (its exit code in the CLI), a message naming the thing, and a hint.
 *
 * Helpers the CLI uses internally (text shortening, redaction, cache files) are not part of it:
 * import what is listed here, and nothing from `dist/core/...`, whose layout may change.
 *
 * @packageDocumentation
 */

/**
 * Errors: one class, a kind per exit code.
 *
 * @example
 * ```ts
 * import { isSmartError } from 'smart-backend-cli';
 * try { await provider.getToken(); }
 * catch (e) { if (isSmartError(e)) console.error(e.message, e.hint, e.exitCode); else throw e; }
 * ```
 */
export {
  SmartError,
  isSmartError,
  EXIT_CODES,
  type ErrorKind,
  type SmartErrorCode,
  type SmartErrorOptions,
} from './core/errors.js';

/**
 * Settings: flags > `SMART_*` environment > profile in the config file > defaults.
 *
 * @example
 * ```ts
 * import { resolveSettings } from 'smart-backend-cli';
 * const settings = await resolveSettings({
 *   flags: { baseUrl: 'http://localhost:8080', clientId: 'my-client', key: './key.pem' },
 *   env: process.env,
 *   cwd: process.cwd(),
 * });
 * ```
 */
export {
  resolveSettings,
  DEFAULT_SCOPE,
  type Settings,
  type ResolveInput,
  type Profile,
} from './core/settings.js';

/**
 * The HTTP client every request goes through: timeouts, retries with Retry-After, proxies,
 * private CAs, and the refusal to send credentials over plain http to a remote host.
 *
 * @example
 * ```ts
 * import { createHttpClient } from 'smart-backend-cli';
 * const http = await createHttpClient({ timeoutMs: 10_000 });
 * const res = await http.request('http://localhost:8080/fhir/metadata');
 * ```
 */
export {
  createHttpClient,
  type HttpClient,
  type HttpClientOptions,
  type HttpRequest,
  type HttpResponse,
} from './core/http/index.js';

/**
 * Keys: generate or load a signing key; the kid is the RFC 7638 thumbprint.
 *
 * @example
 * ```ts
 * import { generateSigningKey, loadSigningKey } from 'smart-backend-cli';
 * const fresh = await generateSigningKey('RS384');
 * const stored = await loadSigningKey('./rs384.private.pem'); // the alg follows the key
 * ```
 */
export {
  generateSigningKey,
  loadSigningKey,
  parseJwks,
  thumbprint,
  SIGNING_ALGS,
  type SigningAlg,
} from './core/auth/keys.js';

/**
 * Key pairs on disk and the public JWKS a server fetches from the client's `jwks_uri`.
 *
 * @example
 * ```ts
 * import { createKeyPair, startJwksServer } from 'smart-backend-cli';
 * const pair = await createKeyPair({ alg: 'ES384', dir: './keys' });
 * const server = await startJwksServer({ file: pair.jwks, port: 0 });
 * ```
 */
export { createKeyPair, stripPrivate } from './core/auth/jwks.js';
export { startJwksServer } from './core/jwks-server.js';

/**
 * A SMART client assertion: iss = sub = client id, aud = token endpoint, short exp, fresh jti,
 * kid in the header.
 *
 * @example
 * ```ts
 * import { loadSigningKey, signClientAssertion } from 'smart-backend-cli';
 * const key = await loadSigningKey('./rs384.private.pem');
 * const { jwt } = await signClientAssertion({
 *   key, clientId: 'my-client', audience: 'http://localhost:8080/auth/token',
 * });
 * ```
 */
export {
  signClientAssertion,
  MAX_ASSERTION_LIFETIME,
  type AssertionOptions,
  type SignedAssertion,
} from './core/auth/assertion.js';

/**
 * Discovery: `.well-known/smart-configuration`, and what SMART Backend Services needs of it.
 *
 * @example
 * ```ts
 * import { createHttpClient, discoverSmartConfiguration } from 'smart-backend-cli';
 * const found = await discoverSmartConfiguration(await createHttpClient(), 'http://localhost:8080/fhir');
 * console.log(found.config.token_endpoint);
 * ```
 */
export { discoverSmartConfiguration, backendServicesChecks } from './core/discovery.js';

/**
 * Tokens: sign an assertion, exchange it, cache the answer until shortly before it expires.
 *
 * @example
 * ```ts
 * import { TokenProvider, createHttpClient, resolveSettings } from 'smart-backend-cli';
 * const settings = await resolveSettings({ flags: {}, env: process.env, cwd: process.cwd() });
 * const http = await createHttpClient();
 * const tokens = new TokenProvider({ settings, http: async () => http, now: Date.now });
 * const { accessToken, expiresAt } = await tokens.getToken();
 * ```
 */
export { TokenProvider, type TokenProviderOptions } from './core/auth/token.js';

/**
 * A FHIR session (a token obtained or reused, one retry on 401) and searches as async
 * iterators over pages.
 *
 * @example
 * ```ts
 * import { FhirSession, searchPages, toSearchParams } from 'smart-backend-cli';
 * const session = new FhirSession({ settings, http: async () => http, now: Date.now });
 * for await (const bundle of searchPages(session, 'Observation', toSearchParams(['code=4548-4']))) {
 *   console.log(bundle.entry?.length);
 * }
 * ```
 */
export { FhirSession, type SessionOptions } from './core/auth/session.js';
export {
  searchPages,
  streamSearch,
  toSearchParams,
  parseQueryTarget,
  type Bundle,
  type Resource,
  type SearchOptions,
  type SearchPage,
  type SearchParam,
} from './core/fhir/index.js';

/**
 * JWT inspection, as `smart decode` does it: decode without trusting, check the SMART assertion
 * rules, verify a signature against a JWKS.
 *
 * @example
 * ```ts
 * import { checkAssertionRules, decodeJwt } from 'smart-backend-cli';
 * const d = decodeJwt(assertion);
 * const violated = checkAssertionRules(d, { nowMs: Date.now() }).filter((c) => !c.ok);
 * ```
 */
export { decodeJwt, checkAssertionRules, verifyJwtSignature } from './core/auth/jwt.js';

/**
 * Bulk Data `$export`: kick-off, polling, streaming downloads checked against the manifest,
 * resumable from the state file in the output directory.
 *
 * @example
 * ```ts
 * import { bulkExport } from 'smart-backend-cli';
 * const summary = await bulkExport.startExport(
 *   { level: { kind: 'system' }, types: ['Patient'], method: 'GET' },
 *   { session, http: async () => http, outDir: './export' },
 * );
 * ```
 */
export * as bulkExport from './core/export/index.js';

/**
 * The embedded SMART Backend Services + FHIR server, for tests and offline work.
 *
 * @example
 * ```ts
 * import { startSandbox } from 'smart-backend-cli';
 * const sandbox = await startSandbox({ port: 0 });
 * console.log(sandbox.fhirUrl, sandbox.tokenUrl, sandbox.adminSecret);
 * await sandbox.close();
 * ```
 */
export { startSandbox, parseFaultSpec } from './sandbox/index.js';
export type {
  SandboxOptions,
  SandboxHandle,
  FaultRule,
  FaultAction,
  RequestArrival,
  RequestLogEntry,
} from './sandbox/index.js';
