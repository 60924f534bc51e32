import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.bench-out/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        URL: 'readonly',
        URLSearchParams: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        AbortController: 'readonly',
        AbortSignal: 'readonly',
        TextEncoder: 'readonly',
        TextDecoder: 'readonly',
        fetch: 'readonly',
        structuredClone: 'readonly',
      },
    },
    rules: {
      'no-console': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
    },
  },
  {
    // The process's entry is CommonJS on purpose (an ES module main starts Node's ES module
    // loader, ~10 ms per run; docs/ARCHITECTURE.md): the shim and src/cli.cts use require().
    files: ['bin/*.cjs', 'src/cli.cts'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // The core is a library: it never touches the terminal, and knows nothing of the CLI.
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            { name: 'chalk', message: 'src/core must not format for a terminal.' },
            { name: 'cli-table3', message: 'src/core must not format for a terminal.' },
            { name: 'inquirer', message: 'src/core must never prompt.' },
          ],
          patterns: [
            { group: ['@inquirer/*'], message: 'src/core must never prompt.' },
            {
              group: ['**/output', '**/output/*', '**/commands', '**/commands/*'],
              message: 'src/core returns data; output/ and commands/ sit above it.',
            },
            {
              group: ['**/context.js', '**/program.js', '**/cli.js', '**/cli.cjs'],
              message: 'src/core is handed what it needs; it never reaches for the CLI context.',
            },
          ],
        },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'process', property: 'exit', message: 'Only cli.ts ends the process.' },
        { object: 'process', property: 'stdout', message: 'src/core never writes to a stream.' },
        { object: 'process', property: 'stderr', message: 'src/core never writes to a stream.' },
      ],
    },
  },
  {
    // Output draws results; it never runs a command.
    files: ['src/output/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['**/commands', '**/commands/*'], message: 'output/ imports no command.' },
          ],
        },
      ],
    },
  },
  {
    // A command is one leaf: shared flows are use cases in core, shared glue in shared.ts (and
    // options.ts: the Commander options made from the settings table).
    files: ['src/commands/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['./*', '!./shared.js', '!./options.js', '!./index.js'],
              message:
                'A command imports no other command: move the shared part to core or shared.ts.',
            },
          ],
        },
      ],
    },
  },
  {
    // The sandbox is an independent peer: it must not share the client's logic.
    files: ['src/sandbox/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['../*', '!../sandbox', '!../sandbox/*'],
              message:
                'src/sandbox imports nothing outside itself (a shared bug would pass on both sides).',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['src/cli.ts', 'src/output/**/*.ts', 'test/**/*.ts', 'bench/**', 'bin/**'],
    rules: { 'no-console': 'off' },
  },
);
