import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateSigningKey } from '../../src/core/keys.js';
import { startSandbox } from '../../src/sandbox/index.js';
import type { SandboxHandle, SandboxOptions } from '../../src/sandbox/index.js';
import { makeWorkspace, type Workspace } from '../helpers/cli.js';

export interface QueryFlow {
  sandbox: SandboxHandle;
  ws: Workspace;
  clientId: string;
  /** Environment for the CLI: base URL, client id, key file. */
  env: Record<string, string>;
  close(): Promise<void>;
}

/**
 * A sandbox with a registered backend-services client (inline JWKS, allow policy) and the
 * environment `smart` needs to use it. Private to the query/api e2e tests.
 */
export async function startQueryFlow(
  options: SandboxOptions & { scope?: string[]; policy?: boolean } = {},
): Promise<QueryFlow> {
  const sandbox = await startSandbox({ port: 0, ...options });
  const ws = makeWorkspace();
  const key = await generateSigningKey('RS384');
  const keyFile = join(ws.home, 'key.pem');
  writeFileSync(keyFile, key.privateKeyPem, { mode: 0o600 });
  const clientId = 'query-e2e';
  const auth = `Basic ${Buffer.from(`root:${sandbox.adminSecret}`).toString('base64')}`;
  const put = async (path: string, body: unknown) => {
    const res = await fetch(`${sandbox.url}${path}`, {
      method: 'PUT',
      headers: { authorization: auth, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`PUT ${path}: ${res.status} ${await res.text()}`);
  };
  await put(`/Client/${clientId}`, {
    type: 'bulk-api-client',
    active: true,
    grant_types: ['client_credentials'],
    auth: {
      client_credentials: {
        client_assertion_types: ['urn:ietf:params:oauth:client-assertion-type:jwt-bearer'],
        access_token_expiration: 300,
        token_format: 'jwt',
      },
    },
    scope: options.scope ?? ['system/*.read'],
    jwks: [key.publicJwk],
  });
  if (options.policy !== false) {
    await put(`/AccessPolicy/${clientId}`, {
      engine: 'allow',
      link: [{ resourceType: 'Client', id: clientId }],
    });
  }
  return {
    sandbox,
    ws,
    clientId,
    env: {
      SMART_BASE_URL: sandbox.url,
      SMART_CLIENT_ID: clientId,
      SMART_KEY: keyFile,
      SMART_SCOPE: (options.scope ?? ['system/*.read']).join(' '),
    },
    close: () => sandbox.close(),
  };
}
