import { createHash } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { contentHash, sha256Hex, utf8Encode } from '../../../core/hash.js';
import { JsonFloat } from '../../../core/json.js';

describe('sha256Hex', () => {
  // FIPS 180-4 / NIST CSRC example vectors.
  test.each([
    ['', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
    ['abc', 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'],
    [
      'abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq',
      '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
    ],
    [
      'abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu',
      'cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1',
    ],
  ])('matches the published vector for %j', (input, digest) => {
    expect(sha256Hex(input)).toBe(digest);
  });

  test('matches the published vector for one million "a"', () => {
    expect(sha256Hex('a'.repeat(1_000_000))).toBe('cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0');
  });

  test('agrees with node:crypto on every length around the padding boundaries and on multi-byte text', () => {
    for (let length = 0; length < 200; length++) {
      const text = 'x'.repeat(length);
      expect(sha256Hex(text)).toBe(createHash('sha256').update(text).digest('hex'));
    }
    const unicode = 'é 中文 😀 \u0000';
    expect(sha256Hex(unicode)).toBe(createHash('sha256').update(unicode, 'utf8').digest('hex'));
  });

  test('encodes UTF-8 like TextEncoder, lone surrogates included', () => {
    for (const text of ['a', 'é', '中', '😀', '\ud800', 'x\udc00y'])
      expect(Array.from(utf8Encode(text))).toEqual(Array.from(new TextEncoder().encode(text)));
  });
});

describe('contentHash', () => {
  test('is stable across key order and changes with content', () => {
    expect(contentHash({ a: 1, b: [1, 2] })).toBe(contentHash({ b: [1, 2], a: 1 }));
    expect(contentHash({ a: 1 })).not.toBe(contentHash({ a: 2 }));
    expect(contentHash({ a: [1, 2] })).not.toBe(contentHash({ a: [2, 1] }));
  });

  test('hashes 1 and 1.0 differently', () => {
    expect(contentHash({ a: 1 })).not.toBe(contentHash({ a: new JsonFloat(1) }));
  });
});
