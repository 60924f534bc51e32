import { describe, expect, it } from 'vitest';
import { smartReferenceRegistrar } from '../../../../src/core/registration/smart-reference.js';
import type { RegistrationInput } from '../../../../src/core/registration/types.js';
import { rejected } from '../../../helpers/rejected.js';
import { client, useServer } from '../http/harness.js';
import { answerWith, expectOneLine } from './fixture.js';

const srv = useServer();
const RSA = { kty: 'RSA', kid: 'r1', alg: 'RS384', n: 'nnn', e: 'AQAB' };
const CLIENT_ID = `eyJ${'a'.repeat(1500)}.x.y`;

const input = (over: Partial<RegistrationInput> = {}): RegistrationInput => ({
  name: 'label',
  baseUrl: `${srv.base}//`,
  scope: 'system/*.read',
  jwksUri: 'https://keys.example/jwks.json',
  ...over,
});

const apply = async (over: Partial<RegistrationInput> = {}) =>
  smartReferenceRegistrar.apply(await smartReferenceRegistrar.plan(input(over), {}), {
    http: (await client()).http,
  });

describe('smart-reference registrar: plan', () => {
  it('POST <base-url>/auth/register, form-encoded jwks_url', async () => {
    const plan = await smartReferenceRegistrar.plan(input(), {});
    expect(plan.kind).toBe('smart-reference');
    expect(plan.warnings).toEqual([]);
    expect(plan.calls).toEqual([
      {
        what: 'registration',
        method: 'POST',
        url: `${srv.base}/auth/register`,
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/plain' },
        body: 'jwks_url=https%3A%2F%2Fkeys.example%2Fjwks.json',
      },
    ]);
  });

  it('an inline JWKS as a JSON string (public members only); --registration-url wins', async () => {
    const plan = await smartReferenceRegistrar.plan(
      input({
        jwksUri: undefined,
        jwks: { keys: [{ ...RSA, x5c: ['c'] }] },
        registrationUrl: 'https://ref.example/custom/register',
      }),
      {},
    );
    expect(plan.calls[0]!.url).toBe('https://ref.example/custom/register');
    const form = new URLSearchParams(plan.calls[0]!.body as string);
    expect([...form.keys()]).toEqual(['jwks']);
    expect(JSON.parse(form.get('jwks')!)).toEqual({ keys: [RSA] });
  });

  it('refuses a JWKS with private members (exit 2)', async () => {
    const e = await rejected(
      smartReferenceRegistrar.plan(
        input({ jwksUri: undefined, jwks: { keys: [{ ...RSA, d: 'x' }] } }),
        {},
      ),
    );
    expect(e.code).toBe('private_members');
    expectOneLine(e, 2);
  });
});

describe('smart-reference registrar: apply', () => {
  it('sends the form and takes the plain-text answer as the client id', async () => {
    const seen = answerWith(srv, () => ({ status: 200, body: `${CLIENT_ID}\n` }));
    const result = await apply();
    expect(seen).toHaveLength(1);
    expect([seen[0]!.method, seen[0]!.path, seen[0]!.headers['content-type']]).toEqual([
      'POST',
      '/auth/register',
      'application/x-www-form-urlencoded',
    ]);
    expect(seen[0]!.body).toBe('jwks_url=https%3A%2F%2Fkeys.example%2Fjwks.json');
    expect(result).toEqual({
      kind: 'smart-reference',
      clientId: CLIENT_ID,
      rows: [
        {
          what: 'registration',
          id: CLIENT_ID,
          url: `${srv.base}/auth/register`,
          status: 200,
          result: 'registered',
        },
      ],
    });
  });

  it('404/405: no reference-style /auth/register there (exit 1, hint)', async () => {
    for (const status of [404, 405]) {
      answerWith(srv, () => ({ status, body: 'Cannot POST /auth/register' }));
      const e = await rejected(apply());
      expect(e.message).toBe(
        `registration at ${srv.base}/auth/register failed (${status}): text/plain: Cannot POST /auth/register`,
      );
      expect(e.code).toBe('registration_failed');
      expect(e.hint).toMatch(/^no reference-style \/auth\/register there/);
      expectOneLine(e, 1);
    }
  });

  it('401/403 is exit 3; another status exit 1 without a hint', async () => {
    answerWith(srv, () => ({ status: 403, body: { error: 'forbidden' } }));
    const e = await rejected(apply());
    expect(e.message).toBe(`registration at ${srv.base}/auth/register failed (403): forbidden`);
    expectOneLine(e, 3);
    answerWith(srv, () => ({ status: 500, body: '' }));
    const e500 = await rejected(apply());
    expect(e500.message).toBe(`registration at ${srv.base}/auth/register failed (500): empty body`);
    expect(e500.hint).toBeUndefined();
    expectOneLine(e500, 1);
  });

  it('an answer that is not one line of text is not a client id (exit 1)', async () => {
    for (const [body, said] of [
      ['   ', 'got 0 characters'],
      ['an error page', 'got 13 characters with spaces'],
      ['a\u0007b', 'got 3 characters'],
      ['x'.repeat(16 * 1024 + 1), `got ${16 * 1024 + 1} characters`],
    ] as const) {
      answerWith(srv, () => ({ status: 200, body }));
      const e = await rejected(apply());
      expect(e.message).toBe(
        `the registration answer of ${srv.base}/auth/register is not a client id (expected one line of text, ${said})`,
      );
      expect(e.code).toBe('bad_registration_response');
      expectOneLine(e, 1);
    }
  });
});

describe('smart-reference registrar: removal', () => {
  it('there is no way to delete a registration: a runtime error naming the client (exit 1)', async () => {
    const removal = { clientId: CLIENT_ID, baseUrl: srv.base };
    const deps = { http: (await client()).http };
    for (const p of [
      smartReferenceRegistrar.planRemoval(removal, deps),
      smartReferenceRegistrar.remove(removal, deps),
    ]) {
      const e = await rejected(p);
      expect(e.message).toMatch(
        /^the SMART reference servers have no way to delete a registration \(client "eyJa+…/,
      );
      expect(e.message).not.toContain(CLIENT_ID);
      expect(e.code).toBe('no_registration_management');
      expectOneLine(e, 1);
    }
  });
});
