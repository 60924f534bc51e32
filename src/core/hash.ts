// Hashes in plain JavaScript for the start-up path of a cached token, which thereby does
// without node:crypto (loading it costs a warm `smart token` ~4 ms and 150 KB of young heap):
// - sha256Hex names the entries of the file caches (core/cache.ts), as node:crypto did;
// - fnv1a64Hex fingerprints the key file (auth/key-file.ts): a few KB, too many for SHA-256 in
//   V8's interpreter (the loop gets hot, and the process then waits at exit for TurboFan to
//   finish compiling it: +15 ms), and a change detector there, not a security boundary.
// Signing, verifying and key handling stay with node:crypto and jose. test/unit/core/hash.test.ts
// checks both against references (node:crypto; FNV-1a with BigInt).

const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

/** SHA-256 (FIPS 180-4) of `data` (a string is hashed as UTF-8), as lowercase hex. */
export function sha256Hex(data: string | Uint8Array): string {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const n = bytes.length;
  // The message, a 1 bit, zeros, and its length in bits as a 64-bit big-endian number.
  const m = new Uint8Array((((n + 8) >>> 6) + 1) << 6);
  m.set(bytes);
  m[n] = 0x80;
  const end = m.length;
  const high = Math.floor(n / 0x20000000);
  m[end - 8] = high >>> 24;
  m[end - 7] = high >>> 16;
  m[end - 6] = high >>> 8;
  m[end - 5] = high;
  m[end - 4] = n >>> 21;
  m[end - 3] = n >>> 13;
  m[end - 2] = n >>> 5;
  m[end - 1] = n << 3;

  const w = new Int32Array(64);
  let h0 = 0x6a09e667 | 0;
  let h1 = 0xbb67ae85 | 0;
  let h2 = 0x3c6ef372 | 0;
  let h3 = 0xa54ff53a | 0;
  let h4 = 0x510e527f | 0;
  let h5 = 0x9b05688c | 0;
  let h6 = 0x1f83d9ab | 0;
  let h7 = 0x5be0cd19 | 0;
  for (let off = 0; off < end; off += 64) {
    for (let i = 0; i < 16; i++) {
      const j = off + i * 4;
      w[i] = (m[j]! << 24) | (m[j + 1]! << 16) | (m[j + 2]! << 8) | m[j + 3]!;
    }
    for (let i = 16; i < 64; i++) {
      const x = w[i - 15]!;
      const y = w[i - 2]!;
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w[i] = (s0 + s1 + w[i - 16]! + w[i - 7]!) | 0;
    }
    let a = h0;
    let b = h1;
    let c = h2;
    let d = h3;
    let e = h4;
    let f = h5;
    let g = h6;
    let h = h7;
    for (let i = 0; i < 64; i++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const t1 = (h + S1 + ((e & f) ^ (~e & g)) + K[i]! + w[i]!) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      h = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    h0 = (h0 + a) | 0;
    h1 = (h1 + b) | 0;
    h2 = (h2 + c) | 0;
    h3 = (h3 + d) | 0;
    h4 = (h4 + e) | 0;
    h5 = (h5 + f) | 0;
    h6 = (h6 + g) | 0;
    h7 = (h7 + h) | 0;
  }
  return [h0, h1, h2, h3, h4, h5, h6, h7]
    .map((x) => (x >>> 0).toString(16).padStart(8, '0'))
    .join('');
}

/**
 * FNV-1a, 64-bit, over the UTF-16 code units of `text` (each xored in whole), as 16 hex digits.
 * The state is four 16-bit limbs, so that every value stays a small integer: with 32-bit halves,
 * V8's interpreter allocated a heap number for most steps (~100 KB for a key file, enough to
 * start a garbage collection of its own).
 */
export function fnv1a64Hex(text: string): string {
  // The offset basis 0xcbf29ce484222325, low limb first.
  let l0 = 0x2325;
  let l1 = 0x8422;
  let l2 = 0x9ce4;
  let l3 = 0xcbf2;
  for (let i = 0; i < text.length; i++) {
    l0 ^= text.charCodeAt(i);
    // h * 0x1b3 + (h << 40), mod 2^64: the FNV prime is 2^40 + 0x1b3.
    const t0 = l0 * 0x1b3;
    const t1 = l1 * 0x1b3 + (t0 >>> 16);
    const t2 = l2 * 0x1b3 + (t1 >>> 16) + ((l0 & 0xff) << 8);
    const t3 = l3 * 0x1b3 + (t2 >>> 16) + (l0 >>> 8) + ((l1 & 0xff) << 8);
    l0 = t0 & 0xffff;
    l1 = t1 & 0xffff;
    l2 = t2 & 0xffff;
    l3 = t3 & 0xffff;
  }
  return [l3, l2, l1, l0].map((l) => l.toString(16).padStart(4, '0')).join('');
}
