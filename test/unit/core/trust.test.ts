import { describe, expect, it } from 'vitest';
import { processUid, trustProblem } from '../../../src/core/trust.js';

const st = (mode: number, kind: 'file' | 'directory', uid = 1000) => ({
  uid,
  mode,
  isFile: () => kind === 'file',
});

describe('trustProblem', () => {
  it('takes private files and directories no one else can write, of this user', () => {
    expect(trustProblem(st(0o600, 'file'), 'file', 1000)).toBeUndefined();
    expect(trustProblem(st(0o755, 'directory'), 'directory', 1000)).toBeUndefined();
    expect(trustProblem(st(0o700, 'directory', 0), 'directory', undefined)).toBeUndefined();
    expect(trustProblem(st(0o600, 'file', 0), 'file', undefined)).toBeUndefined();
  });

  it('says why it refuses the others, as one clause a warning can quote', () => {
    expect(trustProblem(st(0o640, 'file'), 'file', 1000)).toBe(
      'its mode 0640 lets other users read or change it (expected 0600)',
    );
    expect(trustProblem(st(0o600, 'file', 0), 'file', 1000)).toBe(
      'it is owned by another user (uid 0)',
    );
    expect(trustProblem(st(0o600, 'directory'), 'file', 1000)).toBe('it is not a regular file');
    expect(trustProblem(st(0o775, 'directory'), 'directory', 1000)).toBe(
      'the directory is writable by other users (mode 0775)',
    );
    expect(trustProblem(st(0o700, 'directory', 0), 'directory', 1000)).toBe(
      'the directory is owned by another user (uid 0)',
    );
  });
});

describe('processUid', () => {
  it("is this process's user id where there are user ids, else undefined", () => {
    expect(processUid()).toBe(typeof process.getuid === 'function' ? process.getuid() : undefined);
    if (process.platform !== 'win32') expect(processUid()).toEqual(expect.any(Number));
  });
});
