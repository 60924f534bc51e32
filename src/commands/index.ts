import type { Command } from 'commander';
import type { Context } from '../context.js';

export type Register = (program: Command, ctx: Context) => void;

/** Every command, in the order `smart --help` lists them. */
export const commands: Register[] = [];
