import type { IncomingMessage } from 'node:http';
import { SmartError } from '../errors.js';
import { redactUrl } from '../redact.js';
import { MAX_REDIRECTS, redirectLoop } from './network-errors.js';

/**
 * How bytes go out: node:http(s) with keep-alive agents and our own redirect loop, or undici's
 * fetch behind a proxy from the environment; and the CAs both trust.
 */

const REDIRECT_STATUS = new Set([301, 302, 303, 307, 308]);

async function readCaBundle(path: string, what: string): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new SmartError(
      'usage',
      `cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      {
        cause: e,
        hint: 'give a readable PEM file of CA certificates',
      },
    );
  }
  // A file without one certificate would silently trust nothing more: say so.
  if (!text.includes('-----BEGIN CERTIFICATE-----')) {
    throw new SmartError('usage', `${what} ${path} holds no PEM certificate`, {
      code: 'bad_ca_file',
      hint: 'give a PEM file of CA certificates (-----BEGIN CERTIFICATE----- blocks)',
    });
  }
  return text;
}

type NodeHttp = typeof import('node:http');
type Transport = { request: NodeHttp['request']; agent: import('node:http').Agent };

export interface Transports {
  /** undici's fetch and its proxy agent: only when the environment names a proxy. */
  proxied?: () => Promise<{
    fetch: typeof import('undici').fetch;
    dispatcher: InstanceType<typeof import('undici').Dispatcher>;
  }>;
  /**
   * A request over node:http(s), following up to 20 redirects as fetch does: 303 (and 301/302
   * after a POST) become a GET without a body; the Authorization header and cookies never leave
   * the origin.
   */
  nodeRequest(
    url: string,
    method: string,
    headers: Record<string, string>,
    body: Buffer | string | undefined,
    signal: AbortSignal,
  ): Promise<{ res: IncomingMessage; url: string; method: string }>;
}

/** The transports of one client: the private CA (if any) read once, agents made on first use. */
export async function createTransports(o: {
  caFile?: string;
  env: Record<string, string | undefined>;
}): Promise<Transports> {
  const env = o.env;
  let connect: { ca: string[] } | undefined;
  if (o.caFile) {
    // Replacing `ca` drops the defaults, so put the system roots (and NODE_EXTRA_CA_CERTS) back.
    // node:tls only when a CA file is given: it costs a few ms on every start otherwise.
    const { rootCertificates } = await import('node:tls');
    const ca = [...rootCertificates, await readCaBundle(o.caFile, 'CA file')];
    if (env.NODE_EXTRA_CA_CERTS)
      ca.push(await readCaBundle(env.NODE_EXTRA_CA_CERTS, 'NODE_EXTRA_CA_CERTS file'));
    connect = { ca };
  }
  const proxyEnv = {
    httpProxy: env.HTTP_PROXY ?? env.http_proxy,
    httpsProxy: env.HTTPS_PROXY ?? env.https_proxy,
    noProxy: env.NO_PROXY ?? env.no_proxy,
  };
  const useProxy = Boolean(proxyEnv.httpProxy || proxyEnv.httpsProxy);

  // With a proxy: the undici package's fetch and its EnvHttpProxyAgent (~40 ms to load).
  // Plain http goes to an http proxy in absolute form, as curl does (many proxies allow CONNECT
  // to port 443 only); https is tunnelled with CONNECT, and the private CA, if any, verifies
  // both the server at the end of the tunnel and an https proxy.
  type Undici = typeof import('undici');
  let proxied:
    { fetch: Undici['fetch']; dispatcher: InstanceType<Undici['Dispatcher']> } | undefined;
  async function proxyFetch() {
    if (!proxied) {
      const undici = await import('undici');
      proxied = {
        fetch: undici.fetch,
        dispatcher: new undici.EnvHttpProxyAgent({
          ...proxyEnv,
          proxyTunnel: false,
          ...(connect ? { connect, requestTls: connect, proxyTls: connect } : {}),
        }),
      };
    }
    return proxied;
  }

  // node:http or node:https with a keep-alive agent, each loaded on the first request of its
  // scheme (node:https brings node:tls, ~5 ms of start-up that a plain http server does not
  // need). Node unrefs idle pooled sockets, so they never hold the exit.
  const transports: Record<string, Transport> = {};
  async function nodeTransport(protocol: string): Promise<Transport | undefined> {
    if (transports[protocol]) return transports[protocol];
    if (protocol === 'http:') {
      const http = await import('node:http');
      transports[protocol] = { request: http.request, agent: new http.Agent({ keepAlive: true }) };
    } else if (protocol === 'https:') {
      const https = await import('node:https');
      transports[protocol] = {
        request: https.request,
        agent: new https.Agent({ keepAlive: true, ...(connect ? { ca: connect.ca } : {}) }),
      };
    }
    return transports[protocol];
  }

  /**
   * A request over node:http(s), following up to 20 redirects as fetch does: 303 (and 301/302
   * after a POST) become a GET without a body; the Authorization header and cookies never leave
   * the origin.
   */
  async function nodeRequest(
    url: string,
    method: string,
    headers: Record<string, string>,
    body: Buffer | string | undefined,
    signal: AbortSignal,
  ): Promise<{ res: IncomingMessage; url: string; method: string }> {
    let current = new URL(url);
    let hdrs = { ...headers };
    let payload = body;
    for (let hop = 0; ; hop++) {
      const transport = await nodeTransport(current.protocol);
      if (!transport) {
        throw new SmartError('usage', `invalid URL: ${redactUrl(current.href)}`, {
          code: 'ERR_INVALID_URL',
          hint: 'URLs must be absolute http(s) URLs',
        });
      }
      if (payload !== undefined) hdrs['content-length'] = String(Buffer.byteLength(payload));
      const res = await new Promise<IncomingMessage>((resolve, reject) => {
        const req = transport.request(
          current,
          { method, headers: hdrs, signal, agent: transport.agent },
          resolve,
        );
        req.on('error', reject);
        req.end(payload);
      });
      const status = res.statusCode ?? 0;
      const location = res.headers.location;
      if (REDIRECT_STATUS.has(status) && location && hop >= MAX_REDIRECTS) {
        res.resume();
        throw redirectLoop(url, new URL(location, current).href);
      }
      if (REDIRECT_STATUS.has(status) && location) {
        res.resume();
        const next = new URL(location, current);
        // A bearer token is for its own server: never for storage a file URL redirects to.
        if (next.origin !== current.origin) {
          const { authorization: _a, cookie: _c, ...rest } = hdrs;
          hdrs = rest;
        }
        if (
          (status === 303 && method !== 'HEAD') ||
          ((status === 301 || status === 302) && method === 'POST')
        ) {
          method = 'GET';
          payload = undefined;
          const { 'content-length': _l, 'content-type': _t, ...rest } = hdrs;
          hdrs = rest;
        }
        current = next;
        continue;
      }
      return { res, url: current.href, method };
    }
  }

  return { proxied: useProxy ? proxyFetch : undefined, nodeRequest };
}
