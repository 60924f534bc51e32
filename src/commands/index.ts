import type { Command } from 'commander';
import type { Context } from '../context.js';
import { registerInit } from './init.js';
import { registerConfig } from './config.js';
import { registerKeygen } from './keygen.js';
import { registerJwks } from './jwks.js';

export type Register = (program: Command, ctx: Context) => void;

/** Every command, in the order `smart --help` lists them. */
export const commands: Register[] = [registerInit, registerConfig, registerKeygen, registerJwks];
