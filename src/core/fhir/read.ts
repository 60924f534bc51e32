import { SmartError } from '../errors.js';
import type { HttpResponse } from '../http/index.js';
import { searchPath, type SearchParam } from './query.js';
import type { FhirRequester, Resource } from './types.js';

/** Reads of one resource: GET [base]/Type/id. */

async function fhirJson<T>(
  session: FhirRequester,
  path: string,
): Promise<{ res: HttpResponse; body: T }> {
  const res = await session.request(path);
  if (!res.ok) throw session.error(res, 'GET');
  return { res, body: res.json<T>() };
}

/** GET [base]/Type/id: the resource, and its JSON text as the server sent it. */
export async function readResource(
  session: FhirRequester,
  type: string,
  id: string,
  params: SearchParam[] = [],
): Promise<{ resource: Resource; text: string }> {
  const { res, body } = await fhirJson<Resource>(
    session,
    searchPath(`${type}/${encodeURIComponent(id)}`, params),
  );
  if (!body || typeof body !== 'object' || typeof body.resourceType !== 'string') {
    throw new SmartError('fhir', `GET ${res.url} did not return a FHIR resource`, {
      hint: 'is --fhir-url the FHIR base of the server?',
    });
  }
  return { resource: body, text: res.text };
}

/** GET [base]/Type/id. */
export async function read(
  session: FhirRequester,
  type: string,
  id: string,
  params: SearchParam[] = [],
): Promise<Resource> {
  return (await readResource(session, type, id, params)).resource;
}
