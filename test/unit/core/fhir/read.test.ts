import { describe, expect, it } from 'vitest';
import { SmartError } from '../../../../src/core/errors.js';
import { read, readResource } from '../../../../src/core/fhir/index.js';
import { BASE, fakeSession } from './fixtures.js';

describe('read', () => {
  it('GETs Type/id and returns the resource', async () => {
    const s = fakeSession({ [`${BASE}/Patient/p1`]: { resourceType: 'Patient', id: 'p1' } });
    expect(await read(s, 'Patient', 'p1')).toEqual({ resourceType: 'Patient', id: 'p1' });
    await expect(read(s, 'Patient', 'p2')).rejects.toThrow(/404/);
  });

  it('escapes the id into one path segment, and adds the parameters', async () => {
    const s = fakeSession({
      [`${BASE}/Patient/a%2Fb%3Fc`]: { resourceType: 'Patient', id: 'a/b?c' },
      [`${BASE}/Patient/p1?_elements=id`]: { resourceType: 'Patient', id: 'p1' },
    });
    expect((await read(s, 'Patient', 'a/b?c')).id).toBe('a/b?c');
    expect((await read(s, 'Patient', 'p1', [['_elements', 'id']])).id).toBe('p1');
    expect(s.requested).toEqual([`${BASE}/Patient/a%2Fb%3Fc`, `${BASE}/Patient/p1?_elements=id`]);
  });

  it('gives the text as the server sent it', async () => {
    const raw = '{"resourceType":"Patient","id":"p1","x":1.0}';
    const s = fakeSession({
      [`${BASE}/Patient/p1`]: { status: 200, raw, type: 'application/fhir+json' },
    });
    const got = await readResource(s, 'Patient', 'p1');
    expect(got.text).toBe(raw);
    expect(got.resource).toEqual({ resourceType: 'Patient', id: 'p1', x: 1 });
  });

  it('refuses JSON that is not a resource, and names a non-JSON answer', async () => {
    const s = fakeSession({
      [`${BASE}/Patient/arr`]: { status: 200, raw: '[1,2]', type: 'application/json' },
      [`${BASE}/Patient/html`]: { status: 200, raw: '<html>login</html>', type: 'text/html' },
    });
    const e = await read(s, 'Patient', 'arr').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SmartError);
    expect((e as SmartError).message).toBe(
      `GET ${BASE}/Patient/arr did not return a FHIR resource`,
    );
    expect((e as SmartError).exitCode).toBe(1);
    const html = await read(s, 'Patient', 'html').catch((x: unknown) => x);
    expect((html as SmartError).code).toBe('not_json');
    expect((html as SmartError).message).toContain('text/html');
  });
});
