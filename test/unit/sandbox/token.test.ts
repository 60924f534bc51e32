import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, createRemoteJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SandboxHandle, startSandbox } from '../../../src/sandbox/index.js';
import {
  JWT_BEARER,
  adminPut,
  clientBody,
  type TestKey,
  makeKey,
  register,
  requestToken,
  serveJwks,
  signAssertion,
  tokenForm,
  json,
  movableClock,
} from './helpers.js';

let sb: SandboxHandle;
const clock = movableClock();
let rsa: TestKey;
let ec: TestKey;
let other: TestKey;
let jwks: Awaited<ReturnType<typeof serveJwks>>;

beforeAll(async () => {
  [rsa, ec, other] = await Promise.all([makeKey('RS384'), makeKey('ES384'), makeKey('RS384')]);
  jwks = await serveJwks([rsa.publicJwk, ec.publicJwk]);
  // ES384 besides Aidbox's RS384 (a test extra): the ES384 checks are the point here.
  sb = await startSandbox({ port: 0, now: clock.now, algs: ['RS384', 'ES384'] });
  await register(sb, 'app', jwks.url);
  await register(sb, 'narrow', jwks.url, { scope: ['system/Patient.read'] });
  await register(sb, 'short', jwks.url, {
    auth: {
      client_credentials: {
        client_assertion_types: [JWT_BEARER],
        access_token_expiration: 120,
        token_format: 'jwt',
      },
    },
  });
  await register(sb, 'sleepy', jwks.url, { active: false });
});
afterAll(async () => {
  await sb.close();
  await jwks.close();
});

const assertion = (o: Partial<Parameters<typeof signAssertion>[0]> = {}) =>
  signAssertion({ key: rsa, clientId: 'app', aud: sb.tokenUrl, ...o });

async function expectRejected(
  form: Record<string, string>,
  status: number,
  error: string,
  description: RegExp,
) {
  const r = await requestToken(sb, form);
  expect(r.body).toMatchObject({ error });
  expect(r.status).toBe(status);
  expect(String(r.body.error_description)).toMatch(description);
  expect(r.body.access_token).toBeUndefined();
}

describe('token endpoint: success', () => {
  it('issues a Bearer JWT for an RS384 assertion, with wildcard scopes expanded per type', async () => {
    const r = await requestToken(sb, tokenForm(await assertion(), 'system/*.read'));
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      token_type: 'Bearer',
      expires_in: 300,
      refresh_token: null,
      need_patient_banner: true,
    });
    const scopes = String(r.body.scope).split(' ');
    expect(scopes).toContain('system/Observation.read');
    expect(scopes).toContain('system/Patient.read');
    expect(scopes).toContain('system/Group.read');
    expect(scopes.some((s) => s.includes('*'))).toBe(false);
    // The access token is signed by the key the sandbox publishes.
    const keys = createRemoteJWKSet(new URL(`${sb.url}/.well-known/jwks.json`));
    const { payload } = await jwtVerify(String(r.body.access_token), keys, { issuer: sb.url });
    expect(payload.sub).toBe('app');
    expect(payload.scope).toBe(r.body.scope);
    expect(payload.exp! - payload.iat!).toBe(300);
    expect(typeof payload.jti).toBe('string');
  });

  it('accepts ES384', async () => {
    const r = await requestToken(
      sb,
      tokenForm(
        await signAssertion({ key: ec, clientId: 'app', aud: sb.tokenUrl }),
        'system/Patient.read',
      ),
    );
    expect(r.status).toBe(200);
    expect(r.body.scope).toBe('system/Patient.read');
  });

  it('uses the client access_token_expiration as expires_in', async () => {
    const a = await signAssertion({ key: rsa, clientId: 'short', aud: sb.tokenUrl });
    const r = await requestToken(sb, tokenForm(a, 'system/Patient.read'));
    expect(r.status).toBe(200);
    expect(r.body.expires_in).toBe(120);
  });

  it('understands v2 scopes against a v1 client scope', async () => {
    const r = await requestToken(
      sb,
      tokenForm(await assertion(), 'system/Observation.rs system/Patient.r'),
    );
    expect(r.status).toBe(200);
    expect(r.body.scope).toBe('system/Observation.rs system/Patient.r');
    // A v2 wildcard is expanded per type too, in v2 form.
    const all = await requestToken(sb, tokenForm(await assertion(), 'system/*.rs'));
    const scopes = String(all.body.scope).split(' ');
    expect(scopes).toContain('system/Observation.rs');
    expect(scopes).toContain('system/Group.rs');
    expect(scopes.every((x) => /^system\/[A-Z][A-Za-z]+\.rs$/.test(x))).toBe(true);
  });

  it('accepts a jku header equal to the registered jwks_uri', async () => {
    const r = await requestToken(
      sb,
      tokenForm(await assertion({ jku: jwks.url }), 'system/Patient.read'),
    );
    expect(r.status).toBe(200);
  });
});

describe('token endpoint: rejections', () => {
  it('scope outside the client scopes -> invalid_scope naming both', async () => {
    const a = () => signAssertion({ key: rsa, clientId: 'narrow', aud: sb.tokenUrl });
    await expectRejected(
      tokenForm(await a(), 'system/Observation.read'),
      400,
      'invalid_scope',
      /system\/Observation\.read.*system\/Patient\.read/,
    );
    await expectRejected(tokenForm(await a(), 'system/*.read'), 400, 'invalid_scope', /not within/);
    await expectRejected(
      tokenForm(await a(), 'system/Patient.write'),
      400,
      'invalid_scope',
      /not within/,
    );
    await expectRejected(tokenForm(await a(), 'patient/*.read'), 400, 'invalid_scope', /system\//);
    await expectRejected(tokenForm(await a(), 'launch'), 400, 'invalid_scope', /not a SMART/);
    await expectRejected(tokenForm(await a(), '  '), 400, 'invalid_scope', /empty/);
  });

  it('no scope parameter -> invalid_request (SMART requires it)', async () => {
    const a = await signAssertion({ key: rsa, clientId: 'narrow', aud: sb.tokenUrl });
    await expectRejected(tokenForm(a, null), 400, 'invalid_request', /scope is missing/);
  });

  it('wrong key (signature) -> invalid_client', async () => {
    const forged = await signAssertion({
      key: other,
      kid: rsa.kid,
      clientId: 'app',
      aud: sb.tokenUrl,
    });
    await expectRejected(tokenForm(forged), 401, 'invalid_client', /signature does not verify/);
  });

  it('unknown kid -> invalid_client naming the kid and the JWKS URL', async () => {
    await expectRejected(
      tokenForm(await signAssertion({ key: other, clientId: 'app', aud: sb.tokenUrl })),
      401,
      'invalid_client',
      new RegExp(`no key with kid '${other.kid}' in the client's JWKS at ${jwks.url}`),
    );
  });

  it('a key whose kty does not fit the alg -> invalid_client', async () => {
    const a = await signAssertion({ key: ec, kid: rsa.kid, clientId: 'app', aud: sb.tokenUrl });
    await expectRejected(tokenForm(a), 401, 'invalid_client', /kty 'RSA'.*cannot verify ES384/);
  });

  it('exp: up to 5 minutes ahead of the server clock, no leeway (as Aidbox); a little skew after', async () => {
    const now = Math.floor(Date.now() / 1000);
    for (const exp of [now + 300, now - 10]) {
      const r = await requestToken(sb, tokenForm(await assertion({ exp }), 'system/Patient.read'));
      expect(r.status, `exp now${exp - now >= 0 ? '+' : ''}${exp - now}`).toBe(200);
    }
    await expectRejected(
      tokenForm(await assertion({ exp: now + 330 })),
      401,
      'invalid_client',
      /at most 300 s/,
    );
    await expectRejected(
      tokenForm(await assertion({ exp: now + 420 })),
      401,
      'invalid_client',
      /at most 300 s/,
    );
  });

  it('expired, missing exp, exp too far -> invalid_client', async () => {
    const now = Math.floor(Date.now() / 1000);
    await expectRejected(
      tokenForm(await assertion({ exp: now - 120 })),
      401,
      'invalid_client',
      /expired/,
    );
    await expectRejected(
      tokenForm(await assertion({ exp: null })),
      401,
      'invalid_client',
      /no exp/,
    );
    await expectRejected(
      tokenForm(await assertion({ exp: now + 3600 })),
      401,
      'invalid_client',
      /at most 300 s/,
    );
  });

  it('wrong aud -> invalid_client naming both', async () => {
    await expectRejected(
      tokenForm(await assertion({ aud: 'https://elsewhere.example/auth/token' })),
      401,
      'invalid_client',
      new RegExp(
        `aud 'https://elsewhere.example/auth/token' does not match the token endpoint '${sb.tokenUrl}'`,
      ),
    );
  });

  it('replayed jti -> invalid_client', async () => {
    const a = await assertion({ jti: 'once-only' });
    expect((await requestToken(sb, tokenForm(a, 'system/Patient.read'))).status).toBe(200);
    await expectRejected(
      tokenForm(a, 'system/Patient.read'),
      401,
      'invalid_client',
      /jti 'once-only' was already used/,
    );
    await expectRejected(
      tokenForm(await assertion({ jti: null })),
      401,
      'invalid_client',
      /no jti/,
    );
  });

  it('iss != sub -> invalid_client', async () => {
    await expectRejected(
      tokenForm(await assertion({ iss: 'someone-else' })),
      401,
      'invalid_client',
      /differ/,
    );
  });

  it('unknown and inactive clients -> invalid_client', async () => {
    await expectRejected(
      tokenForm(await signAssertion({ key: rsa, clientId: 'nobody', aud: sb.tokenUrl })),
      401,
      'invalid_client',
      /unknown client 'nobody'/,
    );
    await expectRejected(
      tokenForm(await signAssertion({ key: rsa, clientId: 'sleepy', aud: sb.tokenUrl })),
      401,
      'invalid_client',
      /not active/,
    );
  });

  it('a client without the grant -> unauthorized_client; without jwt-bearer -> invalid_client', async () => {
    await register(sb, 'no-grant', jwks.url, { grant_types: ['basic'] });
    await expectRejected(
      tokenForm(await signAssertion({ key: rsa, clientId: 'no-grant', aud: sb.tokenUrl })),
      400,
      'unauthorized_client',
      /client 'no-grant' may not use the client_credentials grant/,
    );
    // Checked only once the client has proven who it is.
    await expectRejected(
      tokenForm(await signAssertion({ key: other, clientId: 'no-grant', aud: sb.tokenUrl })),
      401,
      'invalid_client',
      /no key with kid/,
    );
    await register(sb, 'secret-only', jwks.url, {
      secret: 'not-a-key',
      auth: { client_credentials: { token_format: 'jwt' } },
    });
    await expectRejected(
      tokenForm(await signAssertion({ key: rsa, clientId: 'secret-only', aud: sb.tokenUrl })),
      401,
      'invalid_client',
      /'secret-only' is not registered for client assertions.*client_assertion_types/,
    );
  });

  it('a JWKS URL answering an error or no JWKS -> invalid_client saying it could not be fetched', async () => {
    const answers: [number, string, string, RegExp][] = [
      [404, 'text/plain', 'no such file', /HTTP 404/],
      [200, 'text/html', '<html></html>', /the answer is not JSON \(text\/html\)/],
      [200, 'application/json', '{"kty":"RSA"}', /the answer is not a JWK Set/],
    ];
    const server = createServer((req, res) => {
      const [status, type, body] = answers[Number(req.url!.slice(1))]!;
      res.writeHead(status, { 'content-type': type });
      res.end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      for (const [i, [, , , why]] of answers.entries()) {
        const uri = `http://127.0.0.1:${port}/${i}`;
        await register(sb, `broken-${i}`, uri);
        await expectRejected(
          tokenForm(await signAssertion({ key: rsa, clientId: `broken-${i}`, aud: sb.tokenUrl })),
          401,
          'invalid_client',
          new RegExp(`could not fetch the client's JWKS from ${uri}: ${why.source}`),
        );
      }
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('JWKS URL unreachable -> invalid_client saying it could not be fetched', async () => {
    const dead = createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
    const port = (dead.address() as AddressInfo).port;
    await new Promise<void>((r) => dead.close(() => r()));
    const uri = `http://127.0.0.1:${port}/jwks.json`;
    await register(sb, 'lost', uri);
    await expectRejected(
      tokenForm(await signAssertion({ key: rsa, clientId: 'lost', aud: sb.tokenUrl })),
      401,
      'invalid_client',
      new RegExp(`could not fetch the client's JWKS from ${uri}: connection refused`),
    );
  });

  it('bad grant_type and client_assertion_type -> 400', async () => {
    const a = await assertion();
    await expectRejected(
      { ...tokenForm(a), grant_type: 'password' },
      400,
      'unsupported_grant_type',
      /password/,
    );
    const { grant_type: _g, ...noGrant } = tokenForm(a);
    await expectRejected(noGrant, 400, 'invalid_request', /grant_type is missing/);
    await expectRejected(
      {
        ...tokenForm(a),
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:saml2-bearer',
      },
      400,
      'invalid_request',
      /saml2-bearer/,
    );
    const { client_assertion: _c, ...noAssertion } = tokenForm(a);
    await expectRejected(noAssertion, 400, 'invalid_request', /client_assertion is missing/);
  });

  it('missing typ or kid, unsupported alg, not a JWT -> invalid_client', async () => {
    await expectRejected(
      tokenForm(await assertion({ typ: null })),
      401,
      'invalid_client',
      /typ must be 'JWT'/,
    );
    await expectRejected(
      tokenForm(await assertion({ kid: null })),
      401,
      'invalid_client',
      /no kid/,
    );
    const hs = await new SignJWT({ iss: 'app', sub: 'app', aud: sb.tokenUrl, jti: 'x', exp: 2e9 })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid: rsa.kid })
      .sign(new TextEncoder().encode('0123456789abcdef0123456789abcdef'));
    await expectRejected(tokenForm(hs), 401, 'invalid_client', /alg 'HS256' is not supported/);
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const none = `${b64({ alg: 'none', typ: 'JWT', kid: rsa.kid })}.${b64({ iss: 'app', sub: 'app' })}.`;
    await expectRejected(tokenForm(none), 401, 'invalid_client', /alg 'none' is not supported/);
    await expectRejected(tokenForm('not-a-jwt'), 401, 'invalid_client', /not a signed JWT/);
  });

  it('an alg outside RS384/ES384 -> invalid_client, even with a key registered for it', async () => {
    const [rs256, es256] = await Promise.all([makeKey('RS256'), makeKey('ES256')]);
    const host = await serveJwks([rs256.publicJwk, es256.publicJwk]);
    try {
      await register(sb, 'weak-algs', host.url);
      for (const key of [rs256, es256]) {
        await expectRejected(
          tokenForm(await signAssertion({ key, clientId: 'weak-algs', aud: sb.tokenUrl })),
          401,
          'invalid_client',
          new RegExp(`alg '${key.alg}' is not supported; use one of RS384, ES384`),
        );
      }
    } finally {
      await host.close();
    }
  });

  it('jku different from the registered jwks_uri -> invalid_client', async () => {
    await expectRejected(
      tokenForm(await assertion({ jku: 'https://evil.example/jwks.json' })),
      401,
      'invalid_client',
      /jku 'https:\/\/evil\.example\/jwks\.json' does not match the registered jwks_uri/,
    );
  });

  it('client_id that differs from sub, and a JSON body, are rejected', async () => {
    await expectRejected(
      { ...tokenForm(await assertion()), client_id: 'narrow' },
      401,
      'invalid_client',
      /client_id/,
    );
    const res = await fetch(sb.tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(tokenForm(await assertion())),
    });
    expect(res.status).toBe(400);
    expect(await json(res)).toMatchObject({ error: 'invalid_request' });
  });
});

describe('client JWKS cache', () => {
  it('honours max-age and refetches once on an unknown kid (key rotation)', async () => {
    const host = await serveJwks([rsa.publicJwk], 'public, max-age=600');
    try {
      await register(sb, 'cached', host.url);
      const tok = async (key: TestKey) =>
        requestToken(
          sb,
          tokenForm(await signAssertion({ key, clientId: 'cached', aud: sb.tokenUrl })),
        );
      expect((await tok(rsa)).status).toBe(200);
      expect((await tok(rsa)).status).toBe(200);
      expect(host.hits()).toBe(1);
      // Rotation: the new key appears at the URL; an unknown kid forces one refetch.
      host.setKeys([rsa.publicJwk, ec.publicJwk]);
      expect((await tok(ec)).status).toBe(200);
      expect(host.hits()).toBe(2);
      // A kid that is nowhere: exactly one more fetch, then invalid_client.
      const r = await tok(other);
      expect(r.status).toBe(401);
      expect(host.hits()).toBe(3);
      // Removed key: still cached for max-age, as the spec allows.
      host.setKeys([ec.publicJwk]);
      expect((await tok(rsa)).status).toBe(200);
    } finally {
      await host.close();
    }
  });

  it('refetches once max-age has passed', async () => {
    // max-age of a minute, passed on the sandbox's clock: a loaded machine cannot expire it early.
    const host = await serveJwks([rsa.publicJwk], 'max-age=60');
    try {
      await register(sb, 'brief-cache', host.url);
      const tok = async () =>
        requestToken(
          sb,
          tokenForm(await signAssertion({ key: rsa, clientId: 'brief-cache', aud: sb.tokenUrl })),
        );
      expect((await tok()).status).toBe(200);
      expect((await tok()).status).toBe(200);
      expect(host.hits()).toBe(1);
      clock.advance(61_000);
      // The key was removed meanwhile: the stale copy must not be used.
      host.setKeys([ec.publicJwk]);
      const r = await tok();
      expect(host.hits()).toBe(2);
      expect(r.status).toBe(401);
    } finally {
      await host.close();
    }
  });

  it('does not cache a JWKS served with no-store', async () => {
    const host = await serveJwks([rsa.publicJwk], 'no-store');
    try {
      await register(sb, 'uncached', host.url);
      for (let i = 0; i < 2; i++) {
        const a = await signAssertion({ key: rsa, clientId: 'uncached', aud: sb.tokenUrl });
        expect((await requestToken(sb, tokenForm(a))).status).toBe(200);
      }
      expect(host.hits()).toBe(2);
      // A removed key is refused at once.
      host.setKeys([ec.publicJwk]);
      const a = await signAssertion({ key: rsa, clientId: 'uncached', aud: sb.tokenUrl });
      expect((await requestToken(sb, tokenForm(a))).status).toBe(401);
    } finally {
      await host.close();
    }
  });

  it('accepts an inline jwks instead of a jwks_uri', async () => {
    await register(sb, 'inline', 'http://unused.invalid/', {
      jwks_uri: undefined,
      jwks: [
        {
          kty: 'RSA',
          kid: rsa.kid,
          alg: 'RS384',
          use: 'sig',
          n: rsa.publicJwk.n,
          e: rsa.publicJwk.e,
        },
      ],
    });
    const a = await signAssertion({ key: rsa, clientId: 'inline', aud: sb.tokenUrl });
    expect((await requestToken(sb, tokenForm(a))).status).toBe(200);
  });
});

describe('as Aidbox: a Client without token_format or scope', () => {
  it('gets an opaque token without expires_in, good for the FHIR API; without scope, the scope asked is granted', async () => {
    await register(sb, 'opaque', jwks.url, {
      scope: undefined,
      auth: { client_credentials: { client_assertion_types: [JWT_BEARER] } },
    });
    const r = await requestToken(
      sb,
      tokenForm(
        await signAssertion({ key: rsa, clientId: 'opaque', aud: sb.tokenUrl }),
        'system/Patient.read',
      ),
    );
    expect(r.status).toBe(200);
    expect(r.body.expires_in).toBeUndefined();
    expect(r.body.token_type).toBe('Bearer');
    expect(String(r.body.access_token)).toMatch(/^[0-9a-f]{64}$/);
    expect(r.body.scope).toBe('system/Patient.read');
    const res = await fetch(`${sb.fhirUrl}/Patient?_count=1`, {
      headers: { authorization: `Bearer ${String(r.body.access_token)}` },
    });
    expect(res.status).toBe(200);
    const denied = await fetch(`${sb.fhirUrl}/Observation?_count=1`, {
      headers: { authorization: `Bearer ${String(r.body.access_token)}` },
    });
    expect(denied.status).toBe(403);
  });
});

describe('as Aidbox by default: RS384 only', () => {
  it('advertises and accepts RS384 alone, and takes inline jwks of RSA keys only', async () => {
    const aidbox = await startSandbox({ port: 0, now: clock.now });
    try {
      const conf = await json(await fetch(`${aidbox.url}/.well-known/smart-configuration`));
      expect(conf.token_endpoint_auth_signing_alg_values_supported).toEqual(['RS384']);
      await register(aidbox, 'app', jwks.url);
      const es = await requestToken(
        aidbox,
        tokenForm(await signAssertion({ key: ec, clientId: 'app', aud: aidbox.tokenUrl })),
      );
      expect(es.status).toBe(401);
      expect(es.body).toMatchObject({
        error: 'invalid_client',
        error_description: "client assertion alg 'ES384' is not supported; use RS384",
      });
      const rs = await requestToken(
        aidbox,
        tokenForm(await signAssertion({ key: rsa, clientId: 'app', aud: aidbox.tokenUrl })),
      );
      expect(rs.status).toBe(200);
      const inlineEc = await adminPut(
        aidbox,
        '/Client/inline-ec',
        clientBody('http://unused.invalid/', { jwks_uri: undefined, jwks: [ec.publicJwk] }),
      );
      expect(inlineEc.status).toBe(422);
      expect(JSON.stringify(inlineEc.body)).toContain('jwks[0].kty: must be RSA');
    } finally {
      await aidbox.close();
    }
  });
});
