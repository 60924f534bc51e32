/** One RFC 4180 field: quoted when it holds a comma, quote, CR or LF. */
export function csvField(value: unknown): string {
  const s =
    value === undefined || value === null
      ? ''
      : typeof value === 'string'
        ? value
        : typeof value === 'object'
          ? JSON.stringify(value)
          : String(value);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** One RFC 4180 record, terminated by CRLF. */
export function csvRow(values: unknown[]): string {
  return values.map(csvField).join(',') + '\r\n';
}
