// oidc-provider ships no types; the test helper uses a small part of it.
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';
  export interface ClientMetadata {
    client_id: string;
    [k: string]: unknown;
  }
  export interface Configuration {
    clients?: ClientMetadata[];
    [k: string]: unknown;
  }
  export default class Provider {
    constructor(issuer: string, configuration?: Configuration);
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    on(event: string, listener: (...args: unknown[]) => void): this;
    proxy: boolean;
  }
}
