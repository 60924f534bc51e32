import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { fnv1a64Hex, sha256Hex } from '../../../src/core/hash.js';

const nodeSha256 = (data: string | Uint8Array) => createHash('sha256').update(data).digest('hex');

/** FNV-1a, 64-bit, over UTF-16 code units, with BigInt arithmetic: the reference. */
function referenceFnv(text: string): string {
  let h = 0xcbf29ce484222325n;
  for (let i = 0; i < text.length; i++) {
    h ^= BigInt(text.charCodeAt(i));
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h.toString(16).padStart(16, '0');
}

describe('sha256Hex', () => {
  test('the FIPS 180-4 examples', () => {
    expect(sha256Hex('abc')).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
    expect(sha256Hex('')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(sha256Hex('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')).toBe(
      '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
    );
  });

  test("node:crypto's digest for every length across the padding boundaries, bytes and strings", () => {
    for (let n = 0; n <= 300; n++) {
      const bytes = randomBytes(n);
      expect(sha256Hex(bytes), `${n} bytes`).toBe(nodeSha256(bytes));
    }
    for (const s of ['é', '€ and 𝄞', 'https://fhir.example.org/r4\u0000client\u0000system/*.rs']) {
      expect(sha256Hex(s)).toBe(nodeSha256(s));
    }
    const large = randomBytes(100_000);
    expect(sha256Hex(large)).toBe(nodeSha256(large));
  });
});

describe('fnv1a64Hex', () => {
  test('the published FNV-1a 64 test vectors', () => {
    expect(fnv1a64Hex('')).toBe('cbf29ce484222325');
    expect(fnv1a64Hex('a')).toBe('af63dc4c8601ec8c');
    expect(fnv1a64Hex('foobar')).toBe('85944171f73967e8');
  });

  test('the BigInt reference on random text, ASCII and beyond', () => {
    for (let n = 0; n < 200; n++) {
      const text = String.fromCharCode(
        ...Array.from(randomBytes(n * 2), (b, i) => (i % 7 === 0 ? b * 251 : b)),
      );
      expect(fnv1a64Hex(text)).toBe(referenceFnv(text));
    }
  });

  test('one character changed anywhere in a key-sized text gives another fingerprint', () => {
    const text = randomBytes(1200).toString('base64');
    const seen = new Set([fnv1a64Hex(text)]);
    for (let i = 0; i < text.length; i += 37) {
      const changed = text.slice(0, i) + (text[i] === 'A' ? 'B' : 'A') + text.slice(i + 1);
      seen.add(fnv1a64Hex(changed));
    }
    expect(seen.size).toBe(1 + Math.ceil(text.length / 37));
  });
});
