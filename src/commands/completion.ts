import { Argument, type Command } from 'commander';
import type { Context } from '../context.js';

const SHELLS = ['bash', 'zsh', 'fish'] as const;
type Shell = (typeof SHELLS)[number];

export function registerCompletion(program: Command, ctx: Context): void {
  program
    .command('completion')
    .description('Print a shell completion script for bash, zsh or fish')
    .addArgument(new Argument('<shell>', 'bash, zsh or fish').choices(SHELLS))
    .addHelpText(
      'after',
      `
The script completes commands, subcommands, options, profile names (read from the config file
when you press TAB), --alg and --output values, and common FHIR resource types after query.
It is generated from smart's own commands: regenerate it after an upgrade.

Install:
  bash  source <(smart completion bash)                  # in ~/.bashrc
        # or: smart completion bash > ~/.local/share/bash-completion/completions/smart
  zsh   smart completion zsh > "\${fpath[1]}/_smart"      # then start a new shell
        # or: source <(smart completion zsh)             # in ~/.zshrc, after compinit
  fish  smart completion fish > ~/.config/fish/completions/smart.fish

Examples:
  $ smart completion bash > ~/.local/share/bash-completion/completions/smart
  $ smart completion fish > ~/.config/fish/completions/smart.fish
`,
    )
    .action(async (shell: Shell) => {
      const [
        { buildProgram },
        completion,
        { KEYGEN_ALGS, RSA_BITS, SIGNING_ALGS },
        { PROFILE_KEYS },
        out,
      ] = await Promise.all([
        import('../program.js'),
        import('../output/completion.js'),
        import('../core/auth/keys.js'),
        import('../core/settings.js'),
        import('../output/index.js'),
      ]);
      // The whole program (every command loaded), not the one-command program that runs this.
      const full = await buildProgram(ctx);
      const specs = completion.completionSpec(full, {
        algs: (path) => (path[0] === 'keygen' ? KEYGEN_ALGS : SIGNING_ALGS),
        configKeys: PROFILE_KEYS,
        bits: RSA_BITS.map(String),
      });
      const script =
        shell === 'bash'
          ? completion.bashScript(specs, ctx.version)
          : shell === 'zsh'
            ? completion.zshScript(specs, ctx.version)
            : completion.fishScript(specs, ctx.version);
      await out.writeOut(ctx.io.stdout, script);
    });
}
