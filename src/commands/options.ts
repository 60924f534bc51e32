import { Option, type Command } from 'commander';
import {
  flagsOf,
  helpOf,
  settingOf,
  type CommandKey,
  type GlobalKey,
} from '../core/settings/table.js';

// Commander options made from the settings table. Apart from shared.ts, so that the actions'
// helpers (which a bare `smart token` loads without Commander, src/fast.ts) do not load it.

/**
 * A setting's option, from its row in the settings table (src/core/settings/table.ts): the flag
 * and its value name, the help line with the default and the environment variable, the row's
 * parser, and a list's flag repeating (`--trust-origin a --trust-origin b`). The resolver reads
 * the value back by the flag's name and checks it with the row's check.
 */
export function settingOption(key: GlobalKey | CommandKey): Option {
  const s = settingOf(key);
  const option = new Option(flagsOf(s), helpOf(s));
  if (s.list) {
    const parse = s.parse;
    return option.argParser((value: string, previous: unknown[] | undefined) => [
      ...(previous ?? []),
      parse ? parse(value) : value,
    ]);
  }
  return s.parse ? option.argParser(s.parse) : option;
}

/**
 * A command's own options that set a setting, from their rows: adding one is a row in the table
 * and its key here, in the order --help shows them.
 */
export function addSettingOptions(cmd: Command, keys: readonly CommandKey[]): Command {
  for (const key of keys) cmd.addOption(settingOption(key));
  return cmd;
}
