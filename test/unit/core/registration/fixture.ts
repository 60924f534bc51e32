import type { IncomingHttpHeaders } from 'node:http';
import { expect } from 'vitest';
import type { SmartError } from '../../../../src/core/errors.js';
import type { TestServer } from '../http/harness.js';

/** A request as the test server got it. */
export interface Seen {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** What the test server answers: an object is JSON, a string text/plain. */
export interface Answer {
  status?: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/**
 * Makes the file's server answer with `answer` and record every request with its body: the
 * exact requests a registrar sends, and the answers a case needs.
 */
export function answerWith(srv: TestServer, answer: (s: Seen, n: number) => Answer): Seen[] {
  const seen: Seen[] = [];
  srv.handler = (req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const s: Seen = { method: req.method!, path: req.url!, headers: req.headers, body };
      seen.push(s);
      const a = answer(s, seen.length);
      const text =
        a.body === undefined ? '' : typeof a.body === 'string' ? a.body : JSON.stringify(a.body);
      res.writeHead(a.status ?? 200, {
        'content-type': typeof a.body === 'string' ? 'text/plain' : 'application/json',
        ...a.headers,
      });
      res.end(text);
    });
  };
  return seen;
}

/** An error the user reads: one line, no stack, and the exit code given. */
export function expectOneLine(e: SmartError, exitCode: number): void {
  expect(e.message).not.toMatch(/\n/);
  expect(e.hint ?? '').not.toMatch(/\n/);
  expect(e.exitCode).toBe(exitCode);
}
