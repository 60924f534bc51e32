import { escapeControls } from './escape.js';

/**
 * One RFC 4180 field: quoted when it holds a comma, quote, CR or LF. For a terminal, control
 * characters other than tab and newline are escaped (\u001b): a pipe gets the bytes as they are.
 */
export function csvField(value: unknown, terminal = false): string {
  let s =
    value === undefined || value === null
      ? ''
      : typeof value === 'string'
        ? value
        : typeof value === 'object'
          ? JSON.stringify(value)
          : String(value);
  if (terminal) s = escapeControls(s);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** One RFC 4180 record, terminated by CRLF. */
export function csvRow(values: unknown[], terminal = false): string {
  return values.map((v) => csvField(v, terminal)).join(',') + '\r\n';
}
