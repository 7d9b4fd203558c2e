import { describe, expect, test } from 'vitest';
import { hash53, hashHex } from '../../../sim/random.js';

/** cyrb53 over UTF-16 code units, as written first: the reference every path of hash53 must match. */
function reference(text: string, seed = 0): number {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

describe('hash53', () => {
  test('long ASCII texts (hashed from bytes) and all others (from code units) hash as cyrb53 does', () => {
    const line = '{"role": "user", "content": "Book a table for 4 at 19:30.\\n"}';
    const texts = [
      '',
      'a',
      line,
      line.repeat(4).slice(0, 255),
      line.repeat(4).slice(0, 256),
      line.repeat(400),
      'x'.repeat(21_845),
      'x'.repeat(21_846),
      'x'.repeat(70_000),
      `${line.repeat(5)}é`,
      `é${line.repeat(5)}`,
      '日本語のテキスト'.repeat(40),
      '😀'.repeat(200),
      `${'a'.repeat(300)}\ud800${'b'.repeat(10)}`,
      `${'a'.repeat(300)}\u007f\u0080`,
    ];
    for (const text of texts)
      for (const seed of [0, 1, 2, 3]) expect(hash53(text, seed), `${text.length} chars`).toBe(reference(text, seed));
    expect(hashHex(line.repeat(10))).toBe(reference(line.repeat(10)).toString(16).padStart(14, '0'));
  });
});
