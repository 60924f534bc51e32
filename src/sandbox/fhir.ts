import { requireAdmin } from './admin.js';
import { type AccessToken, type TokenContext, verifyAccessToken } from './auth.js';
import type { Store } from './data.js';
import { type Exchange, HttpError, fhirError, send } from './http.js';
import { R4_RESOURCE_TYPES } from './resource-types.js';
import { type Permission, permsFor } from './scopes.js';
import { runSearch } from './search.js';

export interface FhirContext {
  store: Store;
  tc: TokenContext;
  adminSecret: string;
}

/** As Aidbox: 100 entries a page when the search does not say. */
export const DEFAULT_COUNT = 100;
export const MAX_COUNT = 1000;

/** Aidbox's answer to a forbidden request. */
export function forbidden(diagnostics: string): HttpError {
  return new HttpError(403, {
    resourceType: 'OperationOutcome',
    id: 'forbidden',
    text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">Forbidden</div>' },
    issue: [{ severity: 'fatal', code: 'forbidden', diagnostics }],
  });
}

/**
 * Who is calling /fhir: a Bearer token of this sandbox (whose client must still exist and have
 * an `allow` AccessPolicy, checked on every request), or the root admin over HTTP Basic.
 */
export async function authorize(ex: Exchange, fc: FhirContext): Promise<AccessToken> {
  const header = ex.req.headers.authorization;
  if (header && /^basic /i.test(header)) {
    requireAdmin(ex, fc.adminSecret);
    return { clientId: 'root', scopes: [], scopeText: '(admin)', admin: true };
  }
  const token = await verifyAccessToken(header, fc.tc);
  ex.clientId = token.clientId;
  if (!fc.tc.registry.allows(token.clientId)) {
    throw forbidden(
      `client '${token.clientId}' has no AccessPolicy that allows it (engine 'allow' with a link to Client/${token.clientId})`,
    );
  }
  return token;
}

const ACTIONS: Record<Permission, string> = {
  c: 'create',
  r: 'read',
  u: 'update',
  d: 'delete',
  s: 'search',
};

export function requirePermission(token: AccessToken, type: string, perm: Permission): void {
  if (token.admin) return;
  if (permsFor(token.scopes, type).has(perm)) return;
  throw forbidden(
    `the token's scopes (${token.scopeText || 'none'}) do not allow ${ACTIONS[perm]} of ${type}`,
  );
}

export function requireKnownType(type: string): void {
  if (!R4_RESOURCE_TYPES.has(type)) {
    throw fhirError(404, 'not-supported', `unknown resource type '${type}'`);
  }
}

function positiveInt(name: string, value: string | undefined, fallback: number, min: number) {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < min) {
    throw fhirError(400, 'invalid', `${name}: '${value}' is not an integer >= ${min}`);
  }
  return Number(value);
}

/** GET /fhir/<Type>?... and POST /fhir/<Type>/_search: a searchset Bundle, paged by `_page`. */
export function handleSearch(
  ex: Exchange,
  fc: FhirContext,
  token: AccessToken,
  type: string,
  params: [string, string][],
): void {
  requireKnownType(type);
  requirePermission(token, type, 's');
  const last = (name: string) => params.filter(([k]) => k === name).pop()?.[1];
  const count = Math.min(positiveInt('_count', last('_count'), DEFAULT_COUNT, 0), MAX_COUNT);
  const page = positiveInt('_page', last('_page'), 1, 1);
  const strict = /handling\s*=\s*strict/i.test(String(ex.req.headers.prefer ?? ''));
  const matches = runSearch(fc.store, { type, params, strict });
  const base = `${ex.origin}/fhir/${type}`;
  const kept = params.filter(([k]) => k !== '_page');
  const link = (p: number) => {
    const q = new URLSearchParams(kept);
    q.set('_page', String(p));
    return `${base}?${q}`;
  };
  const selfQuery = new URLSearchParams(params).toString();
  const bundle: Record<string, unknown> = {
    resourceType: 'Bundle',
    type: 'searchset',
    total: matches.length,
    link: [{ relation: 'self', url: selfQuery ? `${base}?${selfQuery}` : base }],
  };
  if (last('_summary') === 'count' || count === 0) {
    send(ex, 200, bundle);
    return;
  }
  const lastPage = Math.max(1, Math.ceil(matches.length / count));
  const links = bundle.link as { relation: string; url: string }[];
  links.push({ relation: 'first', url: link(1) });
  if (page > 1) links.push({ relation: 'previous', url: link(Math.min(page - 1, lastPage)) });
  if (page < lastPage) links.push({ relation: 'next', url: link(page + 1) });
  links.push({ relation: 'last', url: link(lastPage) });
  bundle.entry = matches.slice((page - 1) * count, page * count).map((resource) => ({
    fullUrl: `${ex.origin}/fhir/${type}/${resource.id}`,
    resource,
    search: { mode: 'match' },
  }));
  send(ex, 200, bundle);
}

/** GET /fhir/<Type>/<id> */
export function handleRead(
  ex: Exchange,
  fc: FhirContext,
  token: AccessToken,
  type: string,
  id: string,
) {
  requireKnownType(type);
  requirePermission(token, type, 'r');
  const resource = fc.store.get(type, id);
  if (!resource) throw fhirError(404, 'not-found', `${type}/${id} not found`);
  const headers: Record<string, string> = {};
  if (resource.meta?.lastUpdated) {
    headers['Last-Modified'] = new Date(resource.meta.lastUpdated).toUTCString();
  }
  if (resource.meta?.versionId) headers.ETag = `W/"${resource.meta.versionId}"`;
  send(ex, 200, resource, undefined, headers);
}

const SEARCH_PARAMS: Record<string, [string, string][]> = {
  Patient: [
    ['name', 'string'],
    ['family', 'string'],
    ['given', 'string'],
    ['gender', 'token'],
    ['birthdate', 'date'],
    ['identifier', 'token'],
  ],
  Observation: [
    ['code', 'token'],
    ['subject', 'reference'],
    ['patient', 'reference'],
    ['encounter', 'reference'],
    ['date', 'date'],
    ['status', 'token'],
    ['category', 'token'],
  ],
  Condition: [
    ['code', 'token'],
    ['subject', 'reference'],
    ['patient', 'reference'],
    ['category', 'token'],
  ],
  Encounter: [
    ['subject', 'reference'],
    ['patient', 'reference'],
    ['date', 'date'],
    ['status', 'token'],
  ],
};

/** GET /fhir/metadata: an R4 CapabilityStatement with the SMART oauth-uris extension. */
export function capabilityStatement(url: string, types: string[], date: string) {
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date,
    kind: 'instance',
    software: { name: 'smart sandbox' },
    implementation: { description: 'smart sandbox (in-memory)', url: `${url}/fhir` },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json'],
    rest: [
      {
        mode: 'server',
        security: {
          extension: [
            {
              url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
              extension: [{ url: 'token', valueUri: `${url}/auth/token` }],
            },
          ],
          service: [
            {
              coding: [
                {
                  system: 'http://terminology.hl7.org/CodeSystem/restful-security-service',
                  code: 'SMART-on-FHIR',
                },
              ],
            },
          ],
        },
        resource: types.map((type) => ({
          type,
          interaction: [{ code: 'read' }, { code: 'search-type' }],
          searchParam: [
            ['_id', 'token'],
            ['_lastUpdated', 'date'],
            ...(SEARCH_PARAMS[type] ?? []),
          ].map(([name, t]) => ({ name, type: t })),
          ...(type === 'Patient' || type === 'Group'
            ? {
                operation: [
                  {
                    name: 'export',
                    definition:
                      type === 'Patient'
                        ? 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export'
                        : 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export',
                  },
                ],
              }
            : {}),
        })),
        operation: [
          {
            name: 'export',
            definition: 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export',
          },
        ],
      },
    ],
  };
}
