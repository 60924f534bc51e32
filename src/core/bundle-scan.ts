/**
 * Reads the JSON text of a Bundle piece by piece, as it arrives, without building the whole page
 * as one tree of objects: each member other than `entry` is parsed when it is complete, and each
 * entry is handed out as its own JSON text. Memory is then one entry (plus one chunk) however
 * large the page, and the garbage dies young.
 */

export class MalformedJson extends Error {
  override readonly name = 'MalformedJson';
}

const enum St {
  Start,
  Key,
  Colon,
  ValueStart,
  Value,
  After,
  ElemStart,
  Elem,
  AfterElem,
  Done,
}

const enum Mode {
  Str,
  Nest,
  Lit,
}

const isWs = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09 || c === 0xfeff;
const isDelim = (c: number) => c === 0x2c || c === 0x7d || c === 0x5d || isWs(c);

/** obj[key] = value, also for a member named `__proto__` (which JSON allows). */
export function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

export class BundleScanner {
  /** Members other than the `entry` array, parsed, in the order they came. */
  readonly head: Record<string, unknown> = {};
  /** How many members came before `entry`; -1 when there is no entry array. */
  entryIndex = -1;
  /** Characters consumed so far, for error messages. */
  private consumed = 0;

  private buf = '';
  private i = 0;
  private st = St.Start;
  private first = true;
  private key = '';
  private members = 0;
  // The value being captured: where it starts in `buf`, and how to find its end.
  private tok = -1;
  private mode = Mode.Lit;
  private depth = 0;
  private inStr = false;
  private esc = false;

  get started(): boolean {
    return this.st !== St.Start;
  }

  get done(): boolean {
    return this.st === St.Done;
  }

  private fail(what: string): never {
    throw new MalformedJson(`${what} at character ${this.consumed + this.i}`);
  }

  /** Start capturing the value at `i`. */
  private begin(): void {
    const c = this.buf.charCodeAt(this.i);
    this.tok = this.i;
    this.depth = 0;
    this.esc = false;
    if (c === 0x22) {
      this.mode = Mode.Str;
      this.inStr = true;
      this.i++;
    } else if (c === 0x7b || c === 0x5b) {
      this.mode = Mode.Nest;
      this.inStr = false;
      this.depth = 1;
      this.i++;
    } else if (c === 0x7d || c === 0x5d || c === 0x2c || c === 0x3a) {
      this.fail(`unexpected '${String.fromCharCode(c)}'`);
    } else {
      this.mode = Mode.Lit;
    }
  }

  /** Continue the captured value; its end (exclusive) when complete, else -1 (need more text). */
  private scanValue(): number {
    const b = this.buf;
    const n = b.length;
    let i = this.i;
    if (this.mode === Mode.Lit) {
      while (i < n && !isDelim(b.charCodeAt(i))) i++;
      this.i = i;
      if (i === n) return -1;
      if (i === this.tok) this.fail('a value was expected');
      return i;
    }
    for (; i < n; i++) {
      const c = b.charCodeAt(i);
      if (this.inStr) {
        if (this.esc) this.esc = false;
        else if (c === 0x5c) this.esc = true;
        else if (c === 0x22) {
          this.inStr = false;
          if (this.mode === Mode.Str) {
            this.i = i + 1;
            return i + 1;
          }
        }
      } else if (c === 0x22) this.inStr = true;
      else if (c === 0x7b || c === 0x5b) this.depth++;
      else if (c === 0x7d || c === 0x5d) {
        if (--this.depth === 0) {
          this.i = i + 1;
          return i + 1;
        }
      }
    }
    this.i = i;
    return -1;
  }

  private skipWs(): boolean {
    const b = this.buf;
    while (this.i < b.length && isWs(b.charCodeAt(this.i))) this.i++;
    return this.i < b.length;
  }

  private parse(text: string, what: string): unknown {
    try {
      return JSON.parse(text);
    } catch (e) {
      this.fail(`${what}: ${(e as Error).message}`);
    }
  }

  /** Feed the next piece of text; `onEntry` gets the JSON text of each entry completed in it. */
  push(text: string, onEntry: (entryText: string) => void): void {
    this.buf = this.buf.length === 0 ? text : this.buf + text;
    for (;;) {
      const b = this.buf;
      switch (this.st) {
        case St.Start:
          if (!this.skipWs()) return this.trim();
          if (b.charCodeAt(this.i) !== 0x7b) this.fail('a JSON object was expected');
          this.i++;
          this.st = St.Key;
          break;
        case St.Key:
          if (!this.skipWs()) return this.trim();
          if (this.first && b.charCodeAt(this.i) === 0x7d) {
            this.i++;
            this.st = St.Done;
            break;
          }
          if (b.charCodeAt(this.i) !== 0x22) this.fail('a member name was expected');
          this.begin();
          this.st = St.Colon;
          break;
        case St.Colon: {
          if (this.tok >= 0) {
            const end = this.scanValue();
            if (end < 0) return this.trim();
            this.key = this.parse(b.slice(this.tok, end), 'member name') as string;
            this.tok = -1;
          }
          if (!this.skipWs()) return this.trim();
          if (b.charCodeAt(this.i) !== 0x3a) this.fail("':' was expected");
          this.i++;
          this.st = St.ValueStart;
          break;
        }
        case St.ValueStart:
          if (!this.skipWs()) return this.trim();
          if (this.key === 'entry' && this.entryIndex < 0 && b.charCodeAt(this.i) === 0x5b) {
            this.entryIndex = this.members;
            this.i++;
            this.st = St.ElemStart;
            this.first = true;
          } else {
            this.begin();
            this.st = St.Value;
          }
          break;
        case St.Value: {
          const end = this.scanValue();
          if (end < 0) return this.trim();
          setOwn(this.head, this.key, this.parse(b.slice(this.tok, end), `member "${this.key}"`));
          this.members++;
          this.tok = -1;
          this.st = St.After;
          break;
        }
        case St.After: {
          if (!this.skipWs()) return this.trim();
          const c = b.charCodeAt(this.i++);
          if (c === 0x2c) {
            this.st = St.Key;
            this.first = false;
          } else if (c === 0x7d) this.st = St.Done;
          else {
            this.i--;
            this.fail("',' or '}' was expected");
          }
          break;
        }
        case St.ElemStart:
          if (!this.skipWs()) return this.trim();
          if (this.first && b.charCodeAt(this.i) === 0x5d) {
            this.i++;
            this.st = St.After;
            break;
          }
          this.begin();
          this.st = St.Elem;
          break;
        case St.Elem: {
          const end = this.scanValue();
          if (end < 0) return this.trim();
          onEntry(b.slice(this.tok, end));
          this.tok = -1;
          this.st = St.AfterElem;
          break;
        }
        case St.AfterElem: {
          if (!this.skipWs()) return this.trim();
          const c = b.charCodeAt(this.i++);
          if (c === 0x2c) {
            this.st = St.ElemStart;
            this.first = false;
          } else if (c === 0x5d) this.st = St.After;
          else {
            this.i--;
            this.fail("',' or ']' was expected in the entry array");
          }
          break;
        }
        case St.Done:
          if (this.skipWs()) this.fail('text after the end of the Bundle');
          return this.trim();
      }
    }
  }

  /** Keep only what a value still being captured needs. */
  private trim(): void {
    const keep = this.tok >= 0 ? this.tok : this.i;
    if (keep > 0) {
      this.consumed += keep;
      this.buf = this.buf.slice(keep);
      this.i -= keep;
      if (this.tok >= 0) this.tok = 0;
    }
  }

  /** The text has ended: fail unless it was one complete JSON object. */
  end(): void {
    if (this.st !== St.Done) {
      this.i = this.buf.length;
      this.fail(this.st === St.Start ? 'no JSON object' : 'the JSON ended early');
    }
  }
}

const skipWs = (text: string, i: number) => {
  while (i < text.length && isWs(text.charCodeAt(i))) i++;
  return i;
};

/** The index just past the string that starts (with its quote) at `i`. */
function stringEnd(text: string, i: number): number {
  for (let j = i + 1; j < text.length; j++) {
    const c = text.charCodeAt(j);
    if (c === 0x5c) j++;
    else if (c === 0x22) return j + 1;
  }
  throw new MalformedJson('unterminated string');
}

/** The index just past the JSON value that starts at `i`. */
function valueEnd(text: string, i: number): number {
  const c = text.charCodeAt(i);
  if (c === 0x22) return stringEnd(text, i);
  if (c === 0x7b || c === 0x5b) {
    let depth = 0;
    for (let j = i; j < text.length; j++) {
      const d = text.charCodeAt(j);
      if (d === 0x22) j = stringEnd(text, j) - 1;
      else if (d === 0x7b || d === 0x5b) depth++;
      else if ((d === 0x7d || d === 0x5d) && --depth === 0) return j + 1;
    }
    throw new MalformedJson('unterminated value');
  }
  let j = i;
  while (j < text.length && !isDelim(text.charCodeAt(j))) j++;
  return j;
}

/**
 * The text of one member of a JSON object, exactly as written (the last one, as JSON.parse
 * would take it), or undefined when the object has no such member. `text` must be valid JSON.
 */
export function memberText(text: string, name: string): string | undefined {
  let i = skipWs(text, 0);
  if (text.charCodeAt(i) !== 0x7b) return undefined;
  let found: string | undefined;
  i = skipWs(text, i + 1);
  if (text.charCodeAt(i) === 0x7d) return undefined;
  for (;;) {
    if (text.charCodeAt(i) !== 0x22) throw new MalformedJson(`expected a member name at ${i}`);
    const keyEnd = stringEnd(text, i);
    const key = JSON.parse(text.slice(i, keyEnd)) as string;
    i = skipWs(text, keyEnd);
    if (text.charCodeAt(i) !== 0x3a) throw new MalformedJson(`expected ":" at ${i}`);
    const start = skipWs(text, i + 1);
    const end = valueEnd(text, start);
    if (key === name) found = text.slice(start, end);
    i = skipWs(text, end);
    if (text.charCodeAt(i) === 0x2c) i = skipWs(text, i + 1);
    else return found;
  }
}
