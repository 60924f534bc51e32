/** What callers read of response headers (fetch's Headers fits too). */
export interface HeaderMap {
  get(name: string): string | null;
  has(name: string): boolean;
  forEach(callback: (value: string, name: string) => void): void;
}

/**
 * Response headers, lower-case names, iterated in name order (as fetch's Headers are). A small
 * class of our own: the global Headers would load Node's whole bundled fetch stack.
 */
export class ResponseHeaders implements HeaderMap, Iterable<[string, string]> {
  private readonly map = new Map<string, string>();

  constructor(init?: Iterable<[string, string]> | Record<string, string | string[] | undefined>) {
    if (!init) return;
    const pairs: Iterable<[string, string | string[] | undefined]> =
      Symbol.iterator in init
        ? (init as Iterable<[string, string]>)
        : Object.entries(init as Record<string, string | string[] | undefined>);
    for (const [k, v] of pairs) {
      if (Array.isArray(v)) for (const one of v) this.append(k, one);
      else if (v !== undefined) this.append(k, v);
    }
  }

  append(name: string, value: string): void {
    const k = name.toLowerCase();
    const had = this.map.get(k);
    this.map.set(k, had === undefined ? value : `${had}, ${value}`);
  }

  get(name: string): string | null {
    return this.map.get(name.toLowerCase()) ?? null;
  }

  has(name: string): boolean {
    return this.map.has(name.toLowerCase());
  }

  forEach(callback: (value: string, name: string) => void): void {
    for (const [k, v] of this) callback(v, k);
  }

  *[Symbol.iterator](): IterableIterator<[string, string]> {
    yield* [...this.map].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }
}
