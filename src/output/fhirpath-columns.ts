import { SmartError, usageError, type SmartErrorCode } from '../core/errors.js';
import type { Resource } from '../core/fhir/index.js';
import type { Column } from './table.js';

export interface ColumnSpec {
  header: string;
  expression: string;
}

// A label is a plain word before `=`; `gender = 'male'` (with spaces) stays an expression.
const LABEL = /^([A-Za-z_][A-Za-z0-9_-]*)=(?!=)/;

/**
 * Split `--columns` at top-level commas: commas inside (), [], {} or a quoted string belong to
 * the expression, e.g. `name.given.join(', ')`.
 */
export function splitColumns(spec: string): ColumnSpec[] {
  const parts: string[] = [];
  let depth = 0;
  let quote: string | undefined;
  let start = 0;
  for (let i = 0; i < spec.length; i++) {
    const ch = spec[i]!;
    if (quote) {
      if (ch === '\\') i++;
      else if (ch === quote) quote = undefined;
      continue;
    }
    if (ch === "'" || ch === '`' || ch === '"') quote = ch;
    else if (ch === '(' || ch === '[' || ch === '{') depth++;
    else if (ch === ')' || ch === ']' || ch === '}') depth = Math.max(0, depth - 1);
    else if (ch === ',' && depth === 0) {
      parts.push(spec.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(spec.slice(start));
  return parts.map((raw) => {
    const part = raw.trim();
    if (part === '') {
      throw usageError(
        `--columns "${spec}" has an empty column`,
        'give a comma-separated list of FHIRPath expressions, e.g. --columns id,gender,birthDate',
        { code: 'bad_columns' },
      );
    }
    const m = LABEL.exec(part);
    if (m) {
      const expression = part.slice(m[0].length).trim();
      if (!expression) {
        throw usageError(
          `--columns: "${part}" has a label but no expression`,
          'write label=expression, e.g. name=name.family',
          {
            code: 'bad_columns',
          },
        );
      }
      return { header: m[1]!, expression };
    }
    return { header: part, expression: part };
  });
}

function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  // ANTLR lists every token it expected; the position and the unexpected input are enough.
  return msg
    .split('\n')[0]!
    .replace(/\s*expecting \{[^}]*\}/, '')
    .trim();
}

type Evaluator = (resource: unknown) => unknown[];

type FhirpathModules = Awaited<ReturnType<typeof loadFhirpath>>;

interface ExpressionUse {
  /** The flag, for messages: `--columns`, `--where`. */
  flag: string;
  code: SmartErrorCode;
  /** The hint of a bad expression, with an example. */
  example: string;
}

/**
 * One FHIRPath expression compiled once (R4 model, so choice types such as
 * `value.ofType(Quantity)` work), tried on an empty resource of the type (unknown functions only
 * fail when evaluated), and wrapped so that a failure on a resource names it. A bad expression
 * is a usage error before any request.
 */
function compileExpression(
  [{ default: fhirpath }, { default: r4 }]: FhirpathModules,
  expression: string,
  type: string | undefined,
  use: ExpressionUse,
): (r: Resource) => unknown[] {
  const bad = (e: unknown) =>
    usageError(
      `${use.flag}: cannot use the FHIRPath expression "${expression}": ${firstLine(e)}`,
      use.example,
      { code: use.code, cause: e },
    );
  let evaluate: Evaluator;
  try {
    evaluate = fhirpath.compile(expression, r4) as Evaluator;
  } catch (e) {
    throw bad(e);
  }
  try {
    evaluate({ resourceType: type ?? 'Resource', id: 'probe' });
  } catch (e) {
    throw bad(e);
  }
  return (r: Resource) => {
    try {
      return evaluate(r);
    } catch (e) {
      throw new SmartError(
        'usage',
        `${use.flag}: the FHIRPath expression "${expression}" failed on ${r.resourceType}/${r.id ?? '?'}: ${firstLine(e)}`,
        {
          code: use.code,
          cause: e,
          hint: 'check the expression against the resource (smart query ... -o json)',
        },
      );
    }
  };
}

function loadFhirpath() {
  return Promise.all([import('fhirpath'), import('fhirpath/fhir-context/r4')]);
}

/**
 * `--columns` as table/CSV columns: each a FHIRPath expression compiled once (with the R4 model,
 * so choice types such as `value.ofType(Quantity)` work). A bad expression is a usage error that
 * names it. fhirpath is imported here, lazily, only when --columns is used.
 */
export async function compileColumns(spec: string, type?: string): Promise<Column<Resource>[]> {
  const specs = splitColumns(spec);
  const modules = await loadFhirpath();
  return specs.map(({ header, expression }) => {
    const evaluate = compileExpression(modules, expression, type, {
      flag: '--columns',
      code: 'bad_columns',
      example:
        'check the expression, e.g. --columns id,code.coding.first().display,value.ofType(Quantity).value',
    });
    return {
      header,
      get: (r: Resource) => {
        const out = evaluate(r);
        if (!Array.isArray(out)) return out;
        return out.length === 1 ? out[0] : out;
      },
    };
  });
}

/** A FHIRPath result as a yes/no: empty and `false` are no, `true` or any other value is yes. */
export function fhirpathTruth(out: unknown): boolean {
  const items = Array.isArray(out) ? out : [out];
  if (items.length === 0) return false;
  if (items.length === 1 && typeof items[0] === 'boolean') return items[0];
  return items.some((v) => v !== false && v !== undefined && v !== null);
}

/**
 * `--where`: a FHIRPath expression compiled once (R4 model), as a predicate on resources. A bad
 * expression is a usage error before any request.
 */
export async function compileWhere(
  expression: string,
  type?: string,
): Promise<(r: Resource) => boolean> {
  if (expression.trim() === '') {
    throw usageError(
      '--where is empty',
      'give a FHIRPath expression, e.g. --where "gender = \'female\'"',
      {
        code: 'bad_where',
      },
    );
  }
  const evaluate = compileExpression(await loadFhirpath(), expression, type, {
    flag: '--where',
    code: 'bad_where',
    example:
      "check the expression, e.g. --where \"gender = 'female'\" or --where 'value.ofType(Quantity).value > 7'",
  });
  return (r: Resource) => fhirpathTruth(evaluate(r));
}
