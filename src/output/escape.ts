/**
 * Text from a server shown on a terminal stays visible but inert: C0 controls (ESC, BEL, CR,
 * backspace...), DEL, C1 controls (U+0080-U+009F: CSI, OSC...) and the bidirectional overrides
 * (U+202A-U+202E, U+2066-U+2069, which reorder what is shown) are written as `\u001b`-style
 * escapes. Tab and newline are kept unless the layout is one line. JSON output needs none of
 * this (JSON.stringify escapes controls itself), and piped raw output stays byte-exact.
 */

// Everything but tab and newline; then the same without those exceptions.
/* eslint-disable no-control-regex */
const CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
const CONTROLS_ONE_LINE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
const HAS_CONTROL = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
/* eslint-enable no-control-regex */

const escapeOne = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/**
 * `text` with control characters escaped (`\u001b`). With `oneLine`, tab and newline are escaped
 * too (an `error:` line stays one line); otherwise they are kept.
 */
export function escapeControls(text: string, options: { oneLine?: boolean } = {}): string {
  // Most text holds none: skip the replace.
  if (!HAS_CONTROL.test(text)) return text;
  return text.replace(options.oneLine ? CONTROLS_ONE_LINE : CONTROLS, escapeOne);
}

/**
 * A streaming escaper for bodies shown on a terminal: UTF-8 chunks in, escaped text out (a
 * character split across chunks is decoded whole).
 */
export function controlEscaper(): { push(chunk: Uint8Array): string; end(): string } {
  const decoder = new TextDecoder();
  return {
    push: (chunk) => escapeControls(decoder.decode(chunk, { stream: true })),
    end: () => escapeControls(decoder.decode()),
  };
}
