import { SmartError } from './errors.js';
import type { HttpClient, HttpResponse } from './http/index.js';
import { FileCache } from './cache.js';
import { SIGNING_ALGS } from './auth/algs.js';

export interface SmartConfiguration {
  issuer?: string;
  jwks_uri?: string;
  token_endpoint: string;
  token_endpoint_auth_methods_supported?: string[];
  token_endpoint_auth_signing_alg_values_supported?: string[];
  grant_types_supported?: string[];
  scopes_supported?: string[];
  capabilities?: string[];
  [member: string]: unknown;
}

export interface DiscoveryResult {
  /** Where the document came from: a .well-known URL or the CapabilityStatement. */
  source: string;
  config: SmartConfiguration;
  /** Every URL tried, with what it answered, for `smart discover` and error messages. */
  tried: Array<{ url: string; result: string }>;
  /** FHIR version and software from /metadata, when read. */
  capabilityStatement?: { fhirVersion?: string; software?: string; tokenUrl?: string };
}

const DISCOVERY_TTL_MS = 60 * 60 * 1000;
const OAUTH_URIS = 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris';

/** Candidate .well-known URLs: under the FHIR base first, then at the origin (Aidbox documents the root). */
export function wellKnownUrls(fhirUrl: string): string[] {
  const base = fhirUrl.replace(/\/+$/, '');
  const urls = [`${base}/.well-known/smart-configuration`];
  const origin = new URL(base).origin;
  if (`${origin}` !== base) urls.push(`${origin}/.well-known/smart-configuration`);
  return urls;
}

/** "404", "500 text/html (not JSON)", "200 application/json": what a URL answered, for messages. */
function answerSummary(res: HttpResponse, body: unknown): string {
  const type = res.contentType.split(';')[0]?.trim() || 'no content type';
  if (body === undefined)
    return res.text.trim() === '' ? `${res.status} (empty)` : `${res.status} ${type} (not JSON)`;
  return `${res.status}`;
}

function parseJson(res: HttpResponse): unknown {
  try {
    return JSON.parse(res.text);
  } catch {
    return undefined;
  }
}

interface CapabilityInfo {
  fhirVersion?: string;
  software?: string;
  tokenUrl?: string;
}

function readCapabilityStatement(body: unknown): CapabilityInfo | undefined {
  if (!body || typeof body !== 'object') return undefined;
  const cs = body as {
    resourceType?: string;
    fhirVersion?: string;
    software?: { name?: string; version?: string };
    rest?: Array<{
      security?: {
        extension?: Array<{ url?: string; extension?: Array<{ url?: string; valueUri?: string }> }>;
      };
    }>;
  };
  if (cs.resourceType !== 'CapabilityStatement') return undefined;
  let tokenUrl: string | undefined;
  for (const rest of cs.rest ?? []) {
    for (const ext of rest.security?.extension ?? []) {
      if (ext.url !== OAUTH_URIS) continue;
      tokenUrl = ext.extension?.find((e) => e.url === 'token')?.valueUri ?? tokenUrl;
    }
  }
  const software = cs.software?.name
    ? `${cs.software.name}${cs.software.version ? ` ${cs.software.version}` : ''}`
    : undefined;
  return { fhirVersion: cs.fhirVersion, software, tokenUrl };
}

/**
 * Find the SMART configuration of a FHIR server: {fhir}/.well-known/smart-configuration, then the
 * origin's, then the CapabilityStatement's oauth-uris extension. Relative endpoints are resolved
 * against the FHIR base. Network errors propagate (the server is unreachable, say so).
 */
export async function discoverSmartConfiguration(
  http: HttpClient,
  fhirUrl: string,
  options: { withMetadata?: boolean } = {},
): Promise<DiscoveryResult> {
  const tried: DiscoveryResult['tried'] = [];
  let found: { source: string; config: SmartConfiguration } | undefined;
  for (const url of wellKnownUrls(fhirUrl)) {
    const res = await http.request(url, {
      headers: { accept: 'application/json' },
      sizeCap: 'small',
    });
    const body = parseJson(res);
    if (
      res.ok &&
      body &&
      typeof body === 'object' &&
      typeof (body as SmartConfiguration).token_endpoint === 'string'
    ) {
      const config = body as SmartConfiguration;
      config.token_endpoint = new URL(
        config.token_endpoint,
        fhirUrl.replace(/\/?$/, '/'),
      ).toString();
      tried.push({ url, result: `${res.status} smart-configuration` });
      found = { source: url, config };
      break;
    }
    tried.push({
      url,
      result:
        res.ok && body
          ? `${res.status} but no token_endpoint in the answer`
          : answerSummary(res, body),
    });
  }
  let capabilityStatement: CapabilityInfo | undefined;
  if (!found || options.withMetadata) {
    const url = `${fhirUrl.replace(/\/+$/, '')}/metadata`;
    const res = await http.request(url, { headers: { accept: 'application/fhir+json' } });
    capabilityStatement = res.ok ? readCapabilityStatement(parseJson(res)) : undefined;
    tried.push({
      url,
      result: capabilityStatement
        ? `${res.status} CapabilityStatement${capabilityStatement.tokenUrl ? ' with oauth-uris' : ' without oauth-uris'}`
        : answerSummary(res, parseJson(res)),
    });
    if (!found && capabilityStatement?.tokenUrl) {
      found = {
        source: url,
        config: {
          token_endpoint: new URL(
            capabilityStatement.tokenUrl,
            fhirUrl.replace(/\/?$/, '/'),
          ).toString(),
        },
      };
    }
  }
  if (!found) {
    throw new SmartError(
      'http',
      `no SMART configuration found for ${fhirUrl}: ${tried.map((t) => `${t.url} answered ${t.result}`).join('; ')}`,
      {
        code: 'no_discovery',
        hint: 'check --fhir-url (the FHIR base, e.g. https://server/fhir), or pass --token-url',
        details: { tried },
      },
    );
  }
  return { ...found, tried, capabilityStatement };
}

interface CachedDiscovery {
  fhirUrl: string;
  fetchedAt: number;
  source: string;
  config: SmartConfiguration;
}

async function freshCacheEntry(
  cacheDir: string,
  fhirUrl: string,
  now: number,
): Promise<CachedDiscovery | undefined> {
  const hit = await new FileCache(cacheDir).get<CachedDiscovery>(
    'discovery',
    FileCache.keyOf(fhirUrl),
  );
  const fresh =
    hit &&
    hit.fhirUrl === fhirUrl &&
    now - hit.fetchedAt < DISCOVERY_TTL_MS &&
    typeof hit.config?.token_endpoint === 'string';
  return fresh ? hit : undefined;
}

/** The signing algs a configuration advertises for the token endpoint: none when the list is empty. */
export function advertisedSigningAlgs(
  config: SmartConfiguration | undefined,
): string[] | undefined {
  const algs = config?.token_endpoint_auth_signing_alg_values_supported;
  return Array.isArray(algs) && algs.length ? algs : undefined;
}

/** The cached discovery of a FHIR base, if there is a fresh one; never makes a request. */
export async function readCachedDiscovery(
  fhirUrl: string,
  cacheDir: string,
  now: number,
): Promise<SmartConfiguration | undefined> {
  return (await freshCacheEntry(cacheDir, fhirUrl, now))?.config;
}

/** Discovery with a per-FHIR-base file cache (an hour), so warm commands make no request. */
export async function cachedDiscovery(
  http: () => Promise<HttpClient>,
  fhirUrl: string,
  cacheDir: string,
  now: number,
): Promise<{ config: SmartConfiguration; source: string; fromCache: boolean }>;
/** With `http` undefined: the cached discovery only, undefined when none is fresh. */
export async function cachedDiscovery(
  http: (() => Promise<HttpClient>) | undefined,
  fhirUrl: string,
  cacheDir: string,
  now: number,
): Promise<{ config: SmartConfiguration; source: string; fromCache: boolean } | undefined>;
export async function cachedDiscovery(
  http: (() => Promise<HttpClient>) | undefined,
  fhirUrl: string,
  cacheDir: string,
  now: number,
): Promise<{ config: SmartConfiguration; source: string; fromCache: boolean } | undefined> {
  const hit = await freshCacheEntry(cacheDir, fhirUrl, now);
  if (hit) return { config: hit.config, source: hit.source, fromCache: true };
  return http ? fetchDiscovery(http, fhirUrl, cacheDir, now) : undefined;
}

/**
 * Discovery by request, kept in the cache: cachedDiscovery() after a miss, or a caller that has
 * just looked at the cache itself (cachedDiscovery without `http`) and found nothing fresh.
 */
export async function fetchDiscovery(
  http: () => Promise<HttpClient>,
  fhirUrl: string,
  cacheDir: string,
  now: number,
): Promise<{ config: SmartConfiguration; source: string; fromCache: false }> {
  const result = await discoverSmartConfiguration(await http(), fhirUrl);
  await saveDiscovery(cacheDir, fhirUrl, result, now);
  return { config: result.config, source: result.source, fromCache: false };
}

export async function saveDiscovery(
  cacheDir: string,
  fhirUrl: string,
  result: DiscoveryResult,
  now: number,
): Promise<void> {
  await new FileCache(cacheDir).set('discovery', FileCache.keyOf(fhirUrl), {
    fhirUrl,
    fetchedAt: now,
    source: result.source,
    config: result.config,
  });
}

export type CheckStatus = 'ok' | 'assumed' | 'missing';

export interface BackendServicesCheck {
  requirement: string;
  /** ok: advertised; assumed: not advertised, and what is assumed is in `warning`; missing: fails. */
  status: CheckStatus;
  /** True unless the status is missing (kept for scripts that read `ok`). */
  ok: boolean;
  detail: string;
  /** For an assumed check: the field that is not advertised and the assumption made. */
  warning?: string;
}

const ASYMMETRIC = 'client-confidential-asymmetric';

/**
 * What SMART Backend Services needs from a server's configuration. Strict on what is required: a
 * token endpoint, and evidence of asymmetric client authentication (private_key_jwt among the
 * auth methods, or the client-confidential-asymmetric capability). Lenient on what is advisory:
 * an absent grant_types_supported, signing alg list or scopes_supported is assumed (with a
 * warning), but a field that is present and excludes what is needed fails.
 */
export function backendServicesChecks(
  config: SmartConfiguration,
  options: { keyAlg?: string } = {},
): BackendServicesCheck[] {
  const list = (field: keyof SmartConfiguration): string[] | undefined => {
    const v = config[field];
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : undefined;
  };
  const ok = (requirement: string, detail: string): BackendServicesCheck => ({
    requirement,
    status: 'ok',
    ok: true,
    detail,
  });
  const missing = (requirement: string, detail: string): BackendServicesCheck => ({
    requirement,
    status: 'missing',
    ok: false,
    detail,
  });
  const assumed = (requirement: string, warning: string): BackendServicesCheck => ({
    requirement,
    status: 'assumed',
    ok: true,
    detail: warning,
    warning,
  });
  const checks: BackendServicesCheck[] = [];
  const methods = list('token_endpoint_auth_methods_supported');
  const capabilities = list('capabilities');
  const hasPkj = methods?.includes('private_key_jwt') === true;
  const hasAsym = capabilities?.includes(ASYMMETRIC) === true;

  checks.push(
    typeof config.token_endpoint === 'string' && config.token_endpoint !== ''
      ? ok('token endpoint', config.token_endpoint)
      : missing('token endpoint', 'token_endpoint is not advertised'),
  );

  const grants = list('grant_types_supported');
  if (grants === undefined) {
    checks.push(
      assumed(
        'client_credentials',
        hasAsym
          ? `grant_types_supported not advertised: client_credentials assumed, as ${ASYMMETRIC} implies it`
          : 'grant_types_supported not advertised: client_credentials assumed',
      ),
    );
  } else if (grants.includes('client_credentials')) {
    checks.push(ok('client_credentials', 'grant_types_supported includes client_credentials'));
  } else {
    checks.push(
      missing('client_credentials', 'grant_types_supported does not include client_credentials'),
    );
  }

  // Asymmetric client authentication: either advertisement is evidence enough.
  if (hasPkj) {
    checks.push(
      ok('private_key_jwt', 'token_endpoint_auth_methods_supported includes private_key_jwt'),
    );
  } else if (hasAsym) {
    checks.push(
      assumed(
        'private_key_jwt',
        methods === undefined
          ? `token_endpoint_auth_methods_supported not advertised: private_key_jwt assumed, as ${ASYMMETRIC} implies it`
          : `token_endpoint_auth_methods_supported does not list private_key_jwt: assumed, as ${ASYMMETRIC} implies it`,
      ),
    );
  } else {
    checks.push(
      missing(
        'private_key_jwt',
        methods === undefined
          ? `token_endpoint_auth_methods_supported is not advertised, nor the ${ASYMMETRIC} capability`
          : 'token_endpoint_auth_methods_supported does not include private_key_jwt',
      ),
    );
  }

  const algs = list('token_endpoint_auth_signing_alg_values_supported');
  if (algs === undefined) {
    checks.push(
      assumed(
        'signing algorithm',
        `token_endpoint_auth_signing_alg_values_supported not advertised: ${options.keyAlg ?? 'RS384 or ES384'} assumed, as SMART servers verify RS384 or ES384`,
      ),
    );
  } else {
    const usable = algs.filter((a) => (SIGNING_ALGS as readonly string[]).includes(a));
    const keyOk = options.keyAlg ? algs.includes(options.keyAlg) : undefined;
    if (usable.length === 0) {
      checks.push(
        missing(
          'signing algorithm',
          `none of ${algs.join(', ') || '(empty list)'} is one smart can sign with (${SIGNING_ALGS.join(', ')})`,
        ),
      );
    } else if (keyOk === false) {
      checks.push(
        missing(
          'signing algorithm',
          `the key signs with ${options.keyAlg}, the server takes ${algs.join(', ')}: make a key with \`smart keygen --alg ${usable[0]}\``,
        ),
      );
    } else {
      checks.push(
        ok(
          'signing algorithm',
          `can sign with ${usable.join(', ')}${options.keyAlg ? ` (the key: ${options.keyAlg})` : ''}`,
        ),
      );
    }
  }

  if (hasAsym) {
    checks.push(ok(ASYMMETRIC, `capabilities includes ${ASYMMETRIC}`));
  } else if (hasPkj) {
    checks.push(
      assumed(
        ASYMMETRIC,
        capabilities === undefined
          ? `capabilities not advertised: ${ASYMMETRIC} assumed, as private_key_jwt is advertised`
          : `capabilities does not list ${ASYMMETRIC}: assumed, as private_key_jwt is advertised`,
      ),
    );
  } else {
    checks.push(
      missing(
        ASYMMETRIC,
        capabilities === undefined
          ? 'capabilities is not advertised'
          : `capabilities does not include ${ASYMMETRIC}`,
      ),
    );
  }

  const scopes = list('scopes_supported');
  if (scopes === undefined) {
    checks.push(
      assumed(
        'scopes',
        'scopes_supported not advertised: system/ scopes assumed (it is only RECOMMENDED)',
      ),
    );
  } else {
    const system = scopes.filter((x) => x.startsWith('system/'));
    checks.push(
      ok(
        'scopes',
        system.length
          ? `scopes_supported lists ${system.length} system/ scope${system.length === 1 ? '' : 's'}`
          : `scopes_supported lists no system/ scope (it need not be exhaustive)`,
      ),
    );
  }
  return checks;
}
