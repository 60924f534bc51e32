import { SmartError } from '../errors.js';
import { tryJson } from '../json.js';
import { redactText, redactUrl } from '../redact.js';
import type { HttpResponse } from './types.js';

/** What a server said, for an error line: one line, redacted, bounded. */

/** Text on one line: runs of whitespace (newlines included) become one space. */
export function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/** The first characters of a body, on one line, for an error message. */
export function snippet(text: string, max = 200): string {
  const one = oneLine(redactText(text));
  return one.length > max ? `${one.slice(0, max)}…` : one;
}

export function parseJsonBody<T>(
  text: string,
  contentType: string,
  url: string,
  status: number,
): T {
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    const type = contentType.split(';')[0] || 'no content type';
    throw new SmartError(
      'http',
      text.trim() === ''
        ? `expected JSON from ${redactUrl(url)} but the ${status} response was empty`
        : `expected JSON from ${redactUrl(url)} but got ${type} (HTTP ${status}): ${snippet(text)}`,
      {
        cause: e,
        status,
        code: 'not_json',
        hint: 'is this the right URL? a proxy or web server may be answering instead of the FHIR/OAuth server',
      },
    );
  }
}

export interface OperationOutcomeIssue {
  severity?: string;
  code?: string;
  diagnostics?: string;
  details?: { text?: string; coding?: Array<{ code?: string; display?: string }> };
  expression?: string[];
}

/** "error invalid: diagnostics" for each issue of an OperationOutcome, or undefined. */
export function summarizeOperationOutcome(body: unknown): string | undefined {
  if (!body || typeof body !== 'object') return undefined;
  const oo = body as { resourceType?: string; issue?: OperationOutcomeIssue[] };
  if (oo.resourceType !== 'OperationOutcome' || !Array.isArray(oo.issue)) return undefined;
  const parts = oo.issue.map((i) => {
    const text = i.diagnostics ?? i.details?.text ?? i.details?.coding?.[0]?.display ?? '';
    const where = i.expression?.length ? ` at ${i.expression.join(', ')}` : '';
    return `${[i.severity, i.code].filter(Boolean).join(' ')}${text ? `: ${text}` : ''}${where}`;
  });
  return parts.length ? parts.join('; ') : 'OperationOutcome without issues';
}

/** A summary of a non-2xx body: OAuth error, OperationOutcome, other JSON, or text. */
export function describeErrorBody(res: HttpResponse): string {
  const body = tryJson(res.text);
  // Servers echo what they were sent: a summary goes through the redactor, on one line.
  const oo = summarizeOperationOutcome(body);
  if (oo) return oneLine(redactText(oo));
  if (body && typeof body === 'object') {
    const b = body as Record<string, unknown>;
    if (typeof b.error === 'string') {
      const text = `${b.error}${typeof b.error_description === 'string' ? `: ${b.error_description}` : ''}`;
      return oneLine(redactText(text));
    }
    if (typeof b.message === 'string') return redactText(b.message);
    return snippet(res.text);
  }
  if (res.text.trim() === '') return 'empty body';
  return `${res.contentType.split(';')[0] || 'no content type'}: ${snippet(res.text)}`;
}
