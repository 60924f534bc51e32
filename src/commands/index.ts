import type { Command } from 'commander';
import type { Context } from '../context.js';

export type Register = (program: Command, ctx: Context) => void;

export interface CommandEntry {
  name: string;
  /** How `smart --help` lists it (Commander's subcommand term). */
  term: string;
  description: string;
  load: () => Promise<Register>;
}

/**
 * Every command, in the order `smart --help` lists them. A command's module is loaded only when
 * that command runs (or its help is asked for), so `smart --help` and `smart --version` stay
 * fast; test/unit/commands/manifest.test.ts checks these lines against the real commands.
 */
export const commandManifest: CommandEntry[] = [
  {
    name: 'demo',
    term: 'demo [options]',
    description:
      'Run the whole flow on this machine: sandbox, keygen, JWKS, register-client, token, query',
    load: async () => (await import('./demo.js')).registerDemo,
  },
  {
    name: 'init',
    term: 'init',
    description: 'Create or update a profile: a wizard on a terminal, or from flags',
    load: async () => (await import('./init.js')).registerInit,
  },
  {
    name: 'config',
    term: 'config',
    description: 'Read and write settings in the config file (profiles)',
    load: async () => (await import('./config.js')).registerConfig,
  },
  {
    name: 'keygen',
    term: 'keygen [options]',
    description: 'Create a signing key pair: private key (PEM, 0600) and its public JWKS',
    load: async () => (await import('./keygen.js')).registerKeygen,
  },
  {
    name: 'jwks',
    term: 'jwks',
    description: 'Show, edit and serve the public JWK Set (jwks.json)',
    load: async () => (await import('./jwks.js')).registerJwks,
  },
  {
    name: 'register-client',
    term: 'register-client [options] <client-id>',
    description:
      'Register a backend-services client: Aidbox admin API (default), RFC 7591, or SMART reference servers',
    load: async () => (await import('./register-client.js')).registerRegisterClient,
  },
  {
    name: 'unregister-client',
    term: 'unregister-client [options] <client-id>',
    description:
      'Delete a registered client: Aidbox Client and AccessPolicy, or an RFC 7592 registration',
    load: async () => (await import('./unregister-client.js')).registerUnregisterClient,
  },
  {
    name: 'discover',
    term: 'discover [fhir-base-url]',
    description:
      "Read a server's SMART configuration and check it can do Backend Services (exit 1 when it cannot)",
    load: async () => (await import('./discover.js')).registerDiscover,
  },
  {
    name: 'token',
    term: 'token [options]',
    description:
      'Get an access token (client_credentials + signed assertion) and print it alone on stdout; cached until 60 s before expiry',
    load: async () => (await import('./token.js')).registerToken,
  },
  {
    name: 'assertion',
    term: 'assertion [options]',
    description: 'Print a signed SMART client assertion (a JWT) for use with curl or Postman',
    load: async () => (await import('./assertion.js')).registerAssertion,
  },
  {
    name: 'decode',
    term: 'decode [options] <jwt>',
    description:
      'Decode a JWT (access token or client assertion): header, claims, times, SMART assertion checks',
    load: async () => (await import('./decode.js')).registerDecode,
  },
  {
    name: 'query',
    term: 'query [options] <target> [params...]',
    description: 'Search or read FHIR resources, e.g. smart query Observation code=4548-4',
    load: async () => (await import('./query.js')).registerQuery,
  },
  {
    name: 'api',
    term: 'api [options] <path>',
    description: 'Make an authenticated request to the FHIR API and print the response body',
    load: async () => (await import('./api.js')).registerApi,
  },
  {
    name: 'export',
    term: 'export [options]',
    description: 'Bulk Data $export: kick off, wait, and download every NDJSON file (resumable)',
    load: async () => (await import('./export.js')).registerExport,
  },
  {
    name: 'completion',
    term: 'completion <shell>',
    description: 'Print a shell completion script for bash, zsh or fish',
    load: async () => (await import('./completion.js')).registerCompletion,
  },
  {
    name: 'sandbox',
    term: 'sandbox [options]',
    description:
      'Run a local SMART backend-services + FHIR R4 server (Aidbox-like, in memory) to try everything offline',
    load: async () => (await import('./sandbox.js')).registerSandbox,
  },
];
