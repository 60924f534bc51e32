/** JSON from a server or a file, when it is JSON at all: never throws. */

/** The parsed value, or undefined when `text` is not JSON. */
export function tryJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * The parsed value when its members can be read (an object; an array reads as one without the
 * members looked for); undefined for a scalar, null or what is not JSON.
 */
export function tryJsonObject(text: string): Record<string, unknown> | undefined {
  const v = tryJson(text);
  return v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : undefined;
}
