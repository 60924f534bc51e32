import type { Command } from 'commander';
import type { Context } from '../context.js';
import { registerDemo } from './demo.js';
import { registerInit } from './init.js';
import { registerConfig } from './config.js';
import { registerKeygen } from './keygen.js';
import { registerJwks } from './jwks.js';
import { registerRegisterClient } from './register-client.js';
import { registerUnregisterClient } from './unregister-client.js';
import { registerDiscover } from './discover.js';
import { registerToken } from './token.js';
import { registerAssertion } from './assertion.js';
import { registerDecode } from './decode.js';
import { registerQuery } from './query.js';
import { registerApi } from './api.js';
import { registerExport } from './export.js';
import { registerSandbox } from './sandbox.js';

export type Register = (program: Command, ctx: Context) => void;

/** Every command, in the order `smart --help` lists them. */
export const commands: Register[] = [
  registerDemo,
  registerInit,
  registerConfig,
  registerKeygen,
  registerJwks,
  registerRegisterClient,
  registerUnregisterClient,
  registerDiscover,
  registerToken,
  registerAssertion,
  registerDecode,
  registerQuery,
  registerApi,
  registerExport,
  registerSandbox,
];
