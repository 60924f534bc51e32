import { expect } from 'vitest';
import { SmartError } from '../../src/core/errors.js';

/** The SmartError a promise rejects with; fails the test if it resolves or rejects otherwise. */
export async function rejected(p: Promise<unknown>): Promise<SmartError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(SmartError);
    return e as SmartError;
  }
  throw new Error('expected a rejection');
}
