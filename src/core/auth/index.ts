/**
 * The client's authorization: its keys and the token it gets with them. The parts:
 * - keys.ts: signing keys (generation, import, algorithms), JWKS parsing, kid = RFC 7638 thumbprint;
 * - jwks.ts: the client's own JWKS file and key files (keygen, jwks add/remove);
 * - assertion.ts: the signed client assertion (private_key_jwt);
 * - jwt.ts: JWT inspection for `smart decode` (times, assertion rules, signature);
 * - token.ts: the token provider (endpoint, discovery, the exchange and its retries);
 * - token-cache.ts: which cached token answers a request, until when, and what is stored;
 * - token-errors.ts: a refused token request as one line and the hint naming its likely cause;
 * - session.ts: the FHIR session (a token obtained or reused, one retry on 401).
 *
 * This file only re-exports. The start-up path of `smart token` and of the commands imports the
 * specific files instead (token.ts loads assertion.ts and token-errors.ts only when it fetches).
 */
export * from './assertion.js';
export * from './jwks.js';
export * from './jwt.js';
export * from './keys.js';
export * from './session.js';
export * from './token-cache.js';
export * from './token-errors.js';
export * from './token.js';
