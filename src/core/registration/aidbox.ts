import { SmartError, isSmartError } from '../errors.js';
import {
  type AdminRequest,
  checkClientId,
  clientBody,
  inlineJwks,
  registrationRequests,
  sendAdminRequests,
  unregistrationRequests,
} from '../aidbox.js';
import type {
  PlannedCall,
  RegistrationDeps,
  RegistrationPlan,
  Registrar,
  RegistrationRow,
} from './types.js';

function toCall(r: AdminRequest): PlannedCall {
  return {
    what: r.resourceType,
    id: r.id,
    method: r.method,
    url: r.url,
    headers: r.body === undefined ? {} : { 'content-type': 'application/json' },
    body: r.body,
  };
}

function toAdmin(c: PlannedCall): AdminRequest {
  return {
    method: c.method as AdminRequest['method'],
    resourceType: c.what as AdminRequest['resourceType'],
    id: c.id!,
    url: c.url,
    body: c.body,
  };
}

/**
 * A 404/405 from the admin API: there is no Aidbox admin API there. Name the discovered
 * registration_endpoint when the server has one (then it is an RFC 7591 server).
 */
async function wrongKind(e: SmartError, url: string, deps: RegistrationDeps): Promise<SmartError> {
  const origin = new URL(url).origin;
  const endpoint = await deps
    .discover?.()
    .then((c) =>
      typeof c?.registration_endpoint === 'string' ? c.registration_endpoint : undefined,
    )
    .catch(() => undefined);
  return new SmartError('http', `no Aidbox admin API at ${origin}: ${e.message}`, {
    status: e.status,
    code: 'no_admin_api',
    cause: e,
    hint: endpoint
      ? `the server advertises registration_endpoint ${endpoint}: try --server rfc7591`
      : `--base-url must be the Aidbox origin (not the FHIR base); for other servers use --server rfc7591 or --server smart-reference`,
  });
}

export const aidboxRegistrar: Registrar = {
  kind: 'aidbox',
  needsAdmin: true,

  async plan(input) {
    const id = checkClientId(input.name);
    const warnings: string[] = [];
    let keys;
    if (input.jwks) {
      const inline = inlineJwks(input.jwks, input.jwksSource ?? 'the JWKS');
      warnings.push(...inline.warnings);
      keys = inline.keys;
    }
    const body = clientBody({
      scope: input.scope,
      jwksUri: input.jwksUri,
      jwks: keys,
      tokenExpiration: input.tokenExpiration,
      type: input.clientType,
    });
    const calls = registrationRequests(input.baseUrl, id, body, {
      accessPolicy: input.accessPolicy,
    }).map(toCall);
    return { kind: 'aidbox', input, calls, warnings } satisfies RegistrationPlan;
  },

  async apply(plan, deps) {
    if (!deps.admin) throw new Error('aidbox registration without admin credentials');
    let outcomes;
    try {
      outcomes = await sendAdminRequests(deps.http, plan.calls.map(toAdmin), deps.admin);
    } catch (e) {
      if (isSmartError(e) && (e.status === 404 || e.status === 405)) {
        throw await wrongKind(e, plan.calls[0]!.url, deps);
      }
      throw e;
    }
    return {
      kind: 'aidbox',
      clientId: plan.calls[0]!.id!,
      rows: outcomes.map((o): RegistrationRow => ({
        what: o.resourceType,
        id: o.id,
        url: o.url,
        status: o.status,
        result: o.result,
        resource: o.resource,
      })),
    };
  },

  async planRemoval(input) {
    const id = checkClientId(input.clientId);
    return unregistrationRequests(input.baseUrl, id, { accessPolicy: input.accessPolicy }).map(
      toCall,
    );
  },

  async remove(input, deps) {
    if (!deps.admin) throw new Error('aidbox removal without admin credentials');
    const calls = await this.planRemoval(input, deps);
    const outcomes = await sendAdminRequests(deps.http, calls.map(toAdmin), deps.admin);
    return outcomes.map((o) => ({
      what: o.resourceType,
      id: o.id,
      url: o.url,
      status: o.status,
      result: o.result,
      resource: o.resource,
    }));
  },
};
