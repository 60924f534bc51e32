/**
 * A second, independent OAuth server for interop tests: oidc-provider (panva), configured for the
 * client_credentials grant with private_key_jwt client authentication, RS384 and ES384 assertions
 * (enabledJWA.clientAuthSigningAlgValues), and clients whose keys come from a jwks_uri.
 *
 *   const op = await startOidcProvider({ clients: [{ clientId: 'c1', jwksUri, scope: 'system/*.read' }] });
 *   op.tokenUrl   // http://127.0.0.1:<port>/token (also in op.discoveryUrl's document)
 *   await op.close();
 *
 * It issues opaque access tokens with expires_in; assertion aud may be the token endpoint URL.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';

export interface OidcClient {
  clientId: string;
  jwksUri: string;
  /** Space-separated scopes the client may ask for. */
  scope?: string;
}

export interface OidcServer {
  issuer: string;
  tokenUrl: string;
  discoveryUrl: string;
  /** `<issuer>/reg` (only served with the registration option). */
  registrationUrl: string;
  /** Errors the provider reported (server_error and the like), for failing tests. */
  errors: string[];
  close(): Promise<void>;
}

export const OIDC_SCOPES = ['system/*.read', 'system/Patient.read', 'system/Observation.read'];

export interface OidcOptions {
  clients: OidcClient[];
  /**
   * Dynamic client registration (RFC 7591) at `<issuer>/reg`, with RFC 7592 management
   * (registration_client_uri + registration_access_token): `{}` for open registration, or an
   * `initialAccessToken` the registration request must carry as a Bearer token.
   */
  registration?: { initialAccessToken?: string };
}

export async function startOidcProvider(options: OidcOptions): Promise<OidcServer> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const issuer = `http://127.0.0.1:${port}`;
  const errors: string[] = [];
  const provider = new Provider(issuer, {
    clients: options.clients.map((c) => ({
      client_id: c.clientId,
      token_endpoint_auth_method: 'private_key_jwt',
      jwks_uri: c.jwksUri,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: c.scope ?? 'system/*.read',
    })),
    clientAuthMethods: ['private_key_jwt'],
    enabledJWA: { clientAuthSigningAlgValues: ['RS384', 'ES384'] },
    features: {
      clientCredentials: { enabled: true },
      devInteractions: { enabled: false },
      ...(options.registration
        ? {
            registration: {
              enabled: true,
              initialAccessToken: options.registration.initialAccessToken ?? false,
            },
            registrationManagement: { enabled: true },
          }
        : {}),
    },
    scopes: OIDC_SCOPES,
    ttl: { ClientCredentials: 300 },
    cookies: { keys: ['interop-test-cookie-key'] },
    // Its SSRF guard refuses loopback addresses, and our JWKS server is on 127.0.0.1: drop the
    // guarded dispatcher for this test-only instance.
    fetch: (url: string, init: RequestInit & { dispatcher?: unknown }) => {
      const { dispatcher: _guarded, ...rest } = init;
      return globalThis.fetch(url, rest);
    },
  });
  provider.on('server_error', (_ctx: unknown, err: unknown) => {
    errors.push(String((err as Error)?.stack ?? err));
  });
  server.on('request', provider.callback());
  return {
    issuer,
    tokenUrl: `${issuer}/token`,
    discoveryUrl: `${issuer}/.well-known/openid-configuration`,
    registrationUrl: `${issuer}/reg`,
    errors,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
