/**
 * A log that grows, and promises of entries to come: what a test waits on instead of a timer
 * (`SandboxHandle.logged`, `SandboxHandle.received`).
 */
interface Waiter<T> {
  match: (item: T) => boolean;
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
    this.items.push(item);
    for (const w of [...this.waiters]) {
      if (w.match(item) && --w.count === 0) {
        this.waiters.delete(w);
        w.resolve(item);
      }
    }
  }

  /**
   * Resolves with the `count`-th entry, counting from the first one ever, that `match` accepts:
   * at once when it is already there, else when it comes. Rejects when the log closes first.
   */
  when(match: (item: T) => boolean = () => true, count = 1): Promise<T> {
    if (!Number.isInteger(count) || count < 1) {
      return Promise.reject(new Error(`count must be a positive integer, not ${count}`));
    }
    let left = count;
    for (const item of this.items) {
      if (match(item) && --left === 0) return Promise.resolve(item);
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
