import type { Context, OutStream } from '../context.js';

export interface Style {
  bold(s: string): string;
  dim(s: string): string;
  green(s: string): string;
  red(s: string): string;
  yellow(s: string): string;
  cyan(s: string): string;
}

const plain: Style = {
  bold: (s) => s,
  dim: (s) => s,
  green: (s) => s,
  red: (s) => s,
  yellow: (s) => s,
  cyan: (s) => s,
};

/**
 * Colours for one stream: chalk (which honours NO_COLOR / FORCE_COLOR) when the stream is a TTY
 * and --no-color was not given; plain text otherwise.
 */
export async function styleFor(ctx: Context, stream: OutStream = ctx.io.stderr): Promise<Style> {
  const forced = ctx.env.FORCE_COLOR !== undefined && ctx.env.FORCE_COLOR !== '0';
  if (ctx.globals.color === false || ctx.env.NO_COLOR || (!stream.isTTY && !forced)) return plain;
  const { Chalk } = await import('chalk');
  const chalk = new Chalk({ level: 1 });
  return {
    bold: (s) => chalk.bold(s),
    dim: (s) => chalk.dim(s),
    green: (s) => chalk.green(s),
    red: (s) => chalk.red(s),
    yellow: (s) => chalk.yellow(s),
    cyan: (s) => chalk.cyan(s),
  };
}
