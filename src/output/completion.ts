import type { Command, Option } from 'commander';

// Shell completion scripts, generated from the Commander program itself so that they never drift
// from the real commands and options. The scripts hold the program's shape (commands,
// subcommands, options, and what each value is); the only thing read at completion time is the
// list of profiles, from the config file.

/** What a value (of an option or a positional argument) completes to. */
export type ValueKind =
  | { kind: 'words'; words: readonly string[] }
  | { kind: 'profiles' }
  | { kind: 'files' }
  | { kind: 'dirs' }
  /** Free text: nothing to offer. */
  | { kind: 'free' };

export interface OptionSpec {
  names: string[];
  /** Undefined for a switch (no value). */
  value?: ValueKind;
}

export interface CommandSpec {
  /** [] for the program, ['config', 'set'] for a subcommand. */
  path: string[];
  description: string;
  subcommands: Array<{ name: string; description: string }>;
  /** The command's own options (globals are in the program's spec and apply everywhere). */
  options: OptionSpec[];
  args: ValueKind[];
  /** The last argument repeats (`[params...]`). */
  variadic: boolean;
}

/** Resource types offered after `smart query` (and `export --type`): the common clinical ones. */
export const COMMON_RESOURCE_TYPES: readonly string[] = [
  'AllergyIntolerance',
  'Appointment',
  'CarePlan',
  'CareTeam',
  'Claim',
  'Composition',
  'Condition',
  'Coverage',
  'Device',
  'DiagnosticReport',
  'DocumentReference',
  'Encounter',
  'ExplanationOfBenefit',
  'FamilyMemberHistory',
  'Goal',
  'Group',
  'Immunization',
  'Location',
  'Medication',
  'MedicationAdministration',
  'MedicationDispense',
  'MedicationRequest',
  'MedicationStatement',
  'Observation',
  'Organization',
  'Patient',
  'Practitioner',
  'PractitionerRole',
  'Procedure',
  'Provenance',
  'Questionnaire',
  'QuestionnaireResponse',
  'RelatedPerson',
  'ServiceRequest',
  'Specimen',
  'Task',
];

export const HTTP_METHODS: readonly string[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD'];

export interface Vocabulary {
  /** What --alg offers, per command path ('' for the global one). */
  algs: (path: string[]) => readonly string[];
  configKeys: readonly string[];
  /** What keygen --bits offers. */
  bits: readonly string[];
}

const FILE_VALUES = new Set(['file', 'jwks', 'key-file', 'url|file', 'pem', 'jwks-file']);
const DIR_VALUES = new Set(['dir']);

function valueName(flags: string): string | undefined {
  return /[<[]([^>\]]+?)(\.\.\.)?[>\]]/.exec(flags)?.[1];
}

function optionValue(path: string[], o: Option, vocab: Vocabulary): ValueKind | undefined {
  if (!o.required && !o.optional) return undefined;
  if (o.argChoices) return { kind: 'words', words: o.argChoices };
  if (o.long === '--profile') return { kind: 'profiles' };
  if (o.long === '--alg') return { kind: 'words', words: vocab.algs(path) };
  if (o.long === '--method') return { kind: 'words', words: HTTP_METHODS };
  if (o.long === '--bits') return { kind: 'words', words: vocab.bits };
  if (o.long === '--type' && path[0] === 'export')
    return { kind: 'words', words: COMMON_RESOURCE_TYPES };
  const name = valueName(o.flags) ?? '';
  if (FILE_VALUES.has(name)) return { kind: 'files' };
  if (DIR_VALUES.has(name)) return { kind: 'dirs' };
  return { kind: 'free' };
}

function argumentValue(
  path: string[],
  name: string,
  choices: readonly string[] | undefined,
  commands: readonly string[],
  vocab: Vocabulary,
): ValueKind {
  if (choices) return { kind: 'words', words: choices };
  const where = path.join(' ');
  if (where === 'query' && name === 'target')
    return { kind: 'words', words: COMMON_RESOURCE_TYPES };
  if (where === 'help') return { kind: 'words', words: commands };
  if (path[0] === 'config') {
    if (name === 'key') return { kind: 'words', words: vocab.configKeys };
    if (['profile', 'name', 'old'].includes(name)) return { kind: 'profiles' };
  }
  if (FILE_VALUES.has(name)) return { kind: 'files' };
  if (DIR_VALUES.has(name)) return { kind: 'dirs' };
  return { kind: 'free' };
}

/** The spec of every command of the program, the program first. */
export function completionSpec(program: Command, vocab: Vocabulary): CommandSpec[] {
  const top = program.commands.map((c) => c.name()).filter((n) => n !== 'help');
  const specs: CommandSpec[] = [];
  const walk = (cmd: Command, path: string[]) => {
    const subs = cmd.commands.filter((c) => c.name() !== 'help');
    const options: OptionSpec[] = cmd.options.map((o) => ({
      names: [o.short, o.long].filter((n): n is string => Boolean(n)),
      value: optionValue(path, o, vocab),
    }));
    options.push({ names: path.length === 0 ? ['-h', '--help'] : ['--help'] });
    specs.push({
      path,
      description: cmd.description(),
      subcommands: subs.map((c) => ({ name: c.name(), description: c.description() })),
      options,
      args: cmd.registeredArguments.map((a) =>
        argumentValue(path, a.name(), a.argChoices, top, vocab),
      ),
      variadic: cmd.registeredArguments.at(-1)?.variadic ?? false,
    });
    for (const sub of subs) walk(sub, [...path, sub.name()]);
  };
  walk(program, []);
  // Commander's implicit `help [command]`.
  specs[0]!.subcommands.push({ name: 'help', description: 'show help for a command' });
  specs.push({
    path: ['help'],
    description: 'show help for a command',
    subcommands: [],
    options: [],
    args: [{ kind: 'words', words: top }],
    variadic: false,
  });
  return specs;
}

/** A value kind as the scripts spell it: `w:a b c`, `profiles`, `files`, `dirs`, `free`. */
function kindWord(v: ValueKind): string {
  return v.kind === 'words' ? `w:${v.words.join(' ')}` : v.kind;
}

/** Quote for a POSIX shell (bash, zsh): single quotes, `'` as `'\''`. */
function sq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Quote for fish: single quotes, where only \\ and \' are escapes. */
function fq(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

interface Tables {
  /** path -> subcommand names */
  subs: Array<[string, string[]]>;
  /** path -> "name:description" */
  subDescriptions: Array<[string, Array<[string, string]>]>;
  /** path -> option names (the command's own, then the program's) */
  opts: Array<[string, string[]]>;
  /** "path|option" (or "*|option" for the program's options) -> value kind */
  optValues: Array<[string, string]>;
  /** "path|index" (or "path|*" for a repeating last argument) -> value kind */
  argValues: Array<[string, string]>;
}

function tables(specs: CommandSpec[]): Tables {
  const globals = specs[0]!.options;
  const rootOnly = new Set(['-V', '--version', '-h', '--help']);
  const globalNames = globals.flatMap((o) => o.names).filter((n) => !rootOnly.has(n));
  const t: Tables = { subs: [], subDescriptions: [], opts: [], optValues: [], argValues: [] };
  for (const s of specs) {
    const key = s.path.join(' ');
    if (s.subcommands.length) {
      t.subs.push([key, s.subcommands.map((c) => c.name)]);
      t.subDescriptions.push([key, s.subcommands.map((c) => [c.name, oneLine(c.description)])]);
    }
    const own = s.options.flatMap((o) => o.names);
    t.opts.push([key, s.path.length === 0 ? own : [...new Set([...own, ...globalNames])]]);
    if (s.path.length > 0) {
      for (const o of s.options)
        if (o.value) for (const n of o.names) t.optValues.push([`${key}|${n}`, kindWord(o.value)]);
    }
    s.args.forEach((a, i) => {
      const last = i === s.args.length - 1;
      t.argValues.push([`${key}|${s.variadic && last ? '*' : i}`, kindWord(a)]);
    });
  }
  for (const o of globals)
    if (o.value) for (const n of o.names) t.optValues.push([`*|${n}`, kindWord(o.value)]);
  return t;
}

// Profile names, read from the config file at completion time without starting Node: smart
// writes the file pretty-printed (two-space indent), so the names are the keys that open an
// object one level inside "profiles". A file laid out otherwise (edited by hand) falls back to
// `smart config profiles --names` (exit 3 from awk: not smart's layout).
const PROFILES_AWK = [
  '/^  "profiles": [{][}]/ { seen = 1 }',
  '/^  "profiles": [{]$/ { seen = 1; inp = 1; next }',
  'inp && /^  [}]/ { inp = 0 }',
  'inp && /^    "/ && /": [{]/ { s = $0; sub(/^    "/, "", s); sub(/": [{].*$/, "", s); print s }',
  'END { exit seen ? 0 : 3 }',
].join(' ');

function posixCase(fn: string, arg: string, rows: Array<[string, string]>): string {
  const lines = [`${fn}() {`, `  case "${arg}" in`];
  for (const [pattern, value] of rows) {
    const pat = pattern.startsWith('*|') ? `*${sq(pattern.slice(1))}` : sq(pattern);
    const pat2 = pattern.endsWith('|*') ? `${sq(pattern.slice(0, -1))}*` : pat;
    lines.push(`    ${pat2}) echo ${sq(value)} ;;`);
  }
  lines.push('  esac', '}');
  return lines.join('\n');
}

/** The helpers bash and zsh share: plain POSIX shell functions. */
function posixHelpers(specs: CommandSpec[]): string {
  const t = tables(specs);
  return [
    '# The subcommands of a command path ("" is the program).',
    posixCase(
      '_smart_subs',
      '$1',
      t.subs.map(([k, v]) => [k, v.join(' ')]),
    ),
    '# The options of a command path (its own and the global ones).',
    posixCase(
      '_smart_opts',
      '$1',
      t.opts.map(([k, v]) => [k, v.join(' ')]),
    ),
    '# What the value of an option completes to ("" when it takes none).',
    posixCase('_smart_optval', '$1|$2', t.optValues),
    '# What the n-th positional argument of a command completes to.',
    posixCase('_smart_argval', '$1|$2', t.argValues),
    '# Profile names from the config file.',
    '_smart_profiles() {',
    '  local f="${XDG_CONFIG_HOME:-$HOME/.config}/smart/config.json"',
    '  [ -r "$f" ] || return 0',
    `  awk ${sq(PROFILES_AWK)} "$f" 2>/dev/null`,
    '  [ $? -eq 3 ] && smart config profiles --names 2>/dev/null',
    '  return 0',
    '}',
  ].join('\n');
}

/** The word loop shared by bash and zsh (both run it as is). */
const POSIX_SCAN = `  # Walk the words before the cursor: the command path, the positional count, and whether the
  # previous word is an option waiting for its value.
  local _smart_cmd="" _smart_nargs=0 _smart_expect="" _smart_w _smart_i _smart_v
  for ((_smart_i = _smart_first; _smart_i < _smart_cword; _smart_i++)); do
    _smart_w="\${_smart_words[_smart_i]}"
    if [ -n "$_smart_expect" ]; then
      _smart_expect=""
      [ "$_smart_w" = "=" ] && _smart_expect="\${_smart_words[_smart_i-1]}"
      continue
    fi
    case "$_smart_w" in
      --) break ;;
      -*=*) ;;
      -*)
        _smart_v="$(_smart_optval "$_smart_cmd" "$_smart_w")"
        [ -n "$_smart_v" ] && _smart_expect="$_smart_w"
        ;;
      *)
        case " $(_smart_subs "$_smart_cmd") " in
          *" $_smart_w "*) _smart_cmd="\${_smart_cmd:+$_smart_cmd }$_smart_w"; _smart_nargs=0 ;;
          *) _smart_nargs=$((_smart_nargs + 1)) ;;
        esac
        ;;
    esac
  done`;

export function bashScript(specs: CommandSpec[], version: string): string {
  return `# bash completion for smart ${version}, generated by \`smart completion bash\`.
# Install: source <(smart completion bash)            (in ~/.bashrc)
#      or: smart completion bash > ~/.local/share/bash-completion/completions/smart

${posixHelpers(specs)}

_smart_value() {
  local IFS=$'\\n'
  case "$1" in
    w:*) IFS=$' \\t\\n'; COMPREPLY=($(compgen -W "\${1#w:}" -- "$2")) ;;
    profiles) COMPREPLY=($(compgen -W "$(_smart_profiles)" -- "$2")) ;;
    files) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$2")) ;;
    dirs) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- "$2")) ;;
  esac
}

_smart() {
  COMPREPLY=()
  local _smart_words=("\${COMP_WORDS[@]}") _smart_cword=$COMP_CWORD _smart_first=1
  local cur="\${COMP_WORDS[COMP_CWORD]}"
${POSIX_SCAN}
  # --option=value: bash splits it at "=".
  if [ "$cur" = "=" ]; then return 0; fi
  if [ -n "$_smart_expect" ]; then
    _smart_value "$(_smart_optval "$_smart_cmd" "$_smart_expect")" "$cur"
    return 0
  fi
  case "$cur" in
    -*)
      COMPREPLY=($(compgen -W "$(_smart_opts "$_smart_cmd")" -- "$cur"))
      return 0
      ;;
  esac
  local subs="$(_smart_subs "$_smart_cmd")"
  if [ -n "$subs" ] && [ "$_smart_nargs" -eq 0 ]; then
    COMPREPLY=($(compgen -W "$subs" -- "$cur"))
    return 0
  fi
  _smart_value "$(_smart_argval "$_smart_cmd" "$_smart_nargs")" "$cur"
}

complete -F _smart smart
`;
}

export function zshScript(specs: CommandSpec[], version: string): string {
  const t = tables(specs);
  const descriptions = [
    '# "name:description" for the subcommands of a command path.',
    '_smart_subdesc() {',
    '  case "$1" in',
    ...t.subDescriptions.map(
      ([k, rows]) =>
        `    ${sq(k)}) printf '%s\\n' ${rows.map(([n, d]) => sq(`${n.replace(/:/g, '\\:')}:${d}`)).join(' ')} ;;`,
    ),
    '  esac',
    '}',
  ].join('\n');
  return `#compdef smart
# zsh completion for smart ${version}, generated by \`smart completion zsh\`.
# Install: smart completion zsh > "\${fpath[1]}/_smart"   (then start a new shell)
#      or: source <(smart completion zsh)              (in ~/.zshrc, after compinit)

${posixHelpers(specs)}

${descriptions}

_smart_value() {
  case "$1" in
    w:*) compadd -- \${=\${1#w:}} ;;
    profiles) compadd -- \${(f)"$(_smart_profiles)"} ;;
    files) _files ;;
    dirs) _files -/ ;;
  esac
}

_smart() {
  local -a _smart_words
  _smart_words=("\${(@)words}")
  # zsh arrays start at 1: the command is word 1, the cursor is at CURRENT.
  local _smart_cword=$CURRENT _smart_first=2
  local cur="\${words[CURRENT]}"
${POSIX_SCAN}
  if [ -n "$_smart_expect" ]; then
    _smart_value "$(_smart_optval "$_smart_cmd" "$_smart_expect")"
    return 0
  fi
  if [[ "$cur" == -* ]]; then
    compadd -- $(_smart_opts "$_smart_cmd")
    return 0
  fi
  if [ -n "$(_smart_subs "$_smart_cmd")" ] && [ "$_smart_nargs" -eq 0 ]; then
    local -a subs
    subs=(\${(f)"$(_smart_subdesc "$_smart_cmd")"})
    _describe -t commands 'smart command' subs
    return 0
  fi
  _smart_value "$(_smart_argval "$_smart_cmd" "$_smart_nargs")"
}

if [ "$funcstack[1]" = "_smart" ]; then
  _smart "$@"
else
  compdef _smart smart
fi
`;
}

function fishSwitch(fn: string, rows: Array<[string, string[]]>): string {
  const lines = [`function ${fn}`, '    switch "$argv[1]"'];
  for (const [pattern, values] of rows) {
    const pat = pattern
      .split('*')
      .map((p) => (p === '' ? '' : fq(p)))
      .join('*');
    lines.push(`        case ${pat === '' ? "''" : pat}`);
    lines.push(`            printf '%s\\n' ${values.map(fq).join(' ')}`);
  }
  lines.push('    end', 'end');
  return lines.join('\n');
}

export function fishScript(specs: CommandSpec[], version: string): string {
  const t = tables(specs);
  return `# fish completion for smart ${version}, generated by \`smart completion fish\`.
# Install: smart completion fish > ~/.config/fish/completions/smart.fish

${fishSwitch('__smart_subs', t.subs)}

${fishSwitch(
  '__smart_subdesc',
  t.subDescriptions.map(([k, rows]) => [k, rows.map(([n, d]) => `${n}\t${d}`)]),
)}

${fishSwitch('__smart_opts', t.opts)}

${fishSwitch(
  '__smart_optval',
  t.optValues.map(([k, v]) => [k, [v]]),
)}

${fishSwitch(
  '__smart_argval',
  t.argValues.map(([k, v]) => [k, [v]]),
)}

function __smart_profiles
    set -l f "$HOME/.config/smart/config.json"
    if set -q XDG_CONFIG_HOME; and test -n "$XDG_CONFIG_HOME"
        set f "$XDG_CONFIG_HOME/smart/config.json"
    end
    test -r "$f"; or return 0
    awk ${fq(PROFILES_AWK)} "$f" 2>/dev/null
    if test $status -eq 3
        smart config profiles --names 2>/dev/null
    end
    return 0
end

function __smart_value
    set -l kind $argv[1]
    set -l cur $argv[2]
    switch "$kind"
        case 'w:*'
            string split ' ' -- (string sub -s 3 -- "$kind")
        case profiles
            __smart_profiles
        case files
            __fish_complete_path "$cur"
        case dirs
            __fish_complete_directories "$cur"
    end
end

function __smart_complete
    set -l tokens (commandline -opc)
    set -e tokens[1]
    set -l cur (commandline -ct)
    set -l cmd ''
    set -l nargs 0
    set -l expect ''
    for w in $tokens
        if test -n "$expect"
            set expect ''
            continue
        end
        switch "$w"
            case '--'
                break
            case '-*=*'
            case '-*'
                set -l v (__smart_optval "$cmd|$w")
                if test -n "$v"
                    set expect "$w"
                end
            case '*'
                if contains -- "$w" (__smart_subs "$cmd")
                    set cmd (string trim -- "$cmd $w")
                    set nargs 0
                else
                    set nargs (math $nargs + 1)
                end
        end
    end
    if test -n "$expect"
        set -l kind (__smart_optval "$cmd|$expect")
        __smart_value "$kind" "$cur"
        return 0
    end
    if string match -q -- '-*' "$cur"
        __smart_opts "$cmd"
        return 0
    end
    set -l subs (__smart_subs "$cmd")
    if test (count $subs) -gt 0; and test $nargs -eq 0
        __smart_subdesc "$cmd"
        return 0
    end
    set -l kind (__smart_argval "$cmd|$nargs")
    __smart_value "$kind" "$cur"
end

complete -c smart -f -a '(__smart_complete)'
`;
}
