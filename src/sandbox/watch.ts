/**
 * A log that grows, and promises of entries to come: what a test waits on instead of a timer
 * (`SandboxHandle.logged`, `SandboxHandle.received`).
 */
interface Waiter<T> {
  match: (item: T, index: number) => boolean;
  count: number;
  resolve: (item: T) => void;
  reject: (e: Error) => void;
}

export class Watched<T> {
  private readonly waiters = new Set<Waiter<T>>();
  private closed: Error | undefined;

  constructor(
    /** Every entry so far, oldest first (the array itself is handed out, e.g. `requests`). */
    readonly items: T[] = [],
  ) {}

  push(item: T): void {
    const index = this.items.push(item) - 1;
    for (const w of [...this.waiters]) {
      if (w.match(item, index) && --w.count === 0) {
        this.waiters.delete(w);
        w.resolve(item);
      }
    }
  }

  /**
   * Resolves with the `count`-th entry, counting from the first one ever, that `match` accepts
   * (`index`: the entry's position in `items`): at once when it is already there, else when it
   * comes. Rejects when the log closes first.
   */
  when(match: (item: T, index: number) => boolean = () => true, count = 1): Promise<T> {
    if (!Number.isInteger(count) || count < 1) {
      return Promise.reject(new Error(`count must be a positive integer, not ${count}`));
    }
    let left = count;
    for (const [i, item] of this.items.entries()) {
      if (match(item, i) && --left === 0) return Promise.resolve(item);
    }
    if (this.closed) return Promise.reject(this.closed);
    return new Promise<T>((resolve, reject) => {
      this.waiters.add({ match, count: left, resolve, reject });
    });
  }

  /** No more entries: every wait still open rejects with `reason`. */
  close(reason: Error): void {
    this.closed = reason;
    for (const w of this.waiters) w.reject(reason);
    this.waiters.clear();
  }
}
