import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The unit tests mirror src/core: every module with runtime code has its own test file,
 * test/unit/core/<same path>.test.ts. A module holds runtime code unless every statement is an
 * import, a re-export (`export * from`, `export { ... } from`, `export type { ... }`), an
 * `export interface` or a type alias: pure type files and barrels get no test of their own.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CORE = join(ROOT, 'src', 'core');

function modules(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? modules(join(dir, e.name))
      : e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')
        ? [join(dir, e.name)]
        : [],
  );
}

/** The code without its comments (quotes are respected, so `'https://x'` stays). */
function stripComments(source: string): string {
  let out = '';
  let quote = '';
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    if (quote) {
      out += c;
      if (c === '\\') out += source[++i] ?? '';
      else if (c === quote) quote = '';
    } else if (c === '/' && source[i + 1] === '/') {
      while (i < source.length && source[i] !== '\n') i++;
      out += '\n';
    } else if (c === '/' && source[i + 1] === '*') {
      const end = source.indexOf('*/', i + 2);
      i = end < 0 ? source.length : end + 1;
      out += ' ';
    } else {
      if (c === "'" || c === '"' || c === '`') quote = c;
      out += c;
    }
  }
  return out;
}

/** The index just after the `;` (or the block's `}`) that ends the statement starting at `i`. */
function statementEnd(code: string, i: number, block: boolean): number {
  let depth = 0;
  let quote = '';
  for (; i < code.length; i++) {
    const c = code[i]!;
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = '';
    } else if (c === "'" || c === '"' || c === '`') quote = c;
    else if ('{(['.includes(c)) depth++;
    else if ('})]'.includes(c)) {
      depth--;
      if (block && depth === 0 && c === '}') return i + 1;
    } else if (c === ';' && depth === 0) return i + 1;
  }
  return code.length;
}

const FROM = String.raw`\s*from\s*['"][^'"\n]*['"]\s*;`;
/** Statements that declare types or pass other modules' exports on, as they start. */
const ALLOWED: Array<[RegExp, 'line' | 'block' | 'type']> = [
  [new RegExp(String.raw`^import\s[^;'"]*?` + FROM), 'line'],
  [new RegExp(String.raw`^export\s+\*(\s+as\s+\w+)?` + FROM), 'line'],
  [new RegExp(String.raw`^export\s+(type\s+)?\{[^}]*\}(` + FROM + String.raw`|\s*;)`), 'line'],
  [/^(export\s+)?(declare\s+)?interface\s+\w+/, 'block'],
  [/^(export\s+)?(declare\s+)?type\s+\w+[^=]*=/, 'type'],
];

/**
 * Whether a module holds runtime code: anything but imports, re-exports (`export * from`,
 * `export { ... } from`, `export type { ... }`), interfaces and type aliases, comments aside.
 */
function hasRuntimeCode(source: string): boolean {
  const code = stripComments(source);
  let i = 0;
  for (;;) {
    while (i < code.length && /\s/.test(code[i]!)) i++;
    if (i >= code.length) return false;
    const rest = code.slice(i);
    const hit = ALLOWED.find(([re]) => re.test(rest));
    if (!hit) return true;
    const [re, how] = hit;
    i = how === 'line' ? i + rest.match(re)![0].length : statementEnd(code, i, how === 'block');
  }
}

describe('the unit tests mirror src/core', () => {
  it('has a test file for every module with runtime code', () => {
    const missing = modules(CORE)
      .map((f) => relative(CORE, f))
      .filter((m) => hasRuntimeCode(readFileSync(join(CORE, m), 'utf8')))
      .map((m) => join('test', 'unit', 'core', m.replace(/\.ts$/, '.test.ts')))
      .filter((t) => !existsSync(join(ROOT, t)));
    // Each one: write test/unit/core/<path>.test.ts for the module (see the brief of issue 13).
    expect(missing).toEqual([]);
  });

  it('tells runtime code from types and re-exports', () => {
    const none = [
      "import type { A } from './a.js';\nexport interface B { a: A }\nexport type C = B | string;",
      "/** A barrel. */\nexport * from './a.js';\nexport { b, type C } from './b.js';\n// done",
      "export type { D } from './d.js';",
      "export type Fn = (a: { b: 'x;y' }) => void;\nexport interface I {\n  f(): { g: string };\n}",
      "import { a, type B } from './a.js';\nexport { a, type B };",
      '// only a comment with a URL https://x.example/;\n',
      '',
    ];
    for (const source of none) expect(hasRuntimeCode(source), source).toBe(false);
    const some = [
      'export const KINDS = ["a"] as const;',
      'export function f() {}',
      'export class K {}',
      'export enum E { A }',
      "import './side-effect.js';",
      "export * from './a.js';\nconst cache = new Map();",
      'export default 1;',
      "export type T = string;\nlet url = 'https://x'; // not a comment",
      'export interface I { a: string }\nexport function g() {}',
      '/* export const hidden = 1; */ export const shown = 1;',
    ];
    for (const source of some) expect(hasRuntimeCode(source), source).toBe(true);
  });

  it('knows the pure type files and barrels of src/core today', () => {
    for (const m of [
      'http/types.ts',
      'fhir/types.ts',
      'auth/index.ts',
      'fhir/index.ts',
      'http/index.ts',
    ]) {
      expect(hasRuntimeCode(readFileSync(join(CORE, m), 'utf8')), m).toBe(false);
    }
    for (const m of ['registration/types.ts', 'registration/index.ts', 'errors.ts']) {
      expect(hasRuntimeCode(readFileSync(join(CORE, m), 'utf8')), m).toBe(true);
    }
  });
});
