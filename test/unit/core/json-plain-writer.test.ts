import { describe, expect, test } from 'vitest';
import {
  canonicalJson,
  JsonFloat,
  parseJson,
  plainJson,
  stringifyJson,
  stringifyJsonFull,
} from '../../../core/json.js';

// stringifyJson and canonicalJson write plain values with plainJson and the rest with the general writer: both must
// write exactly what the general writer (stringifyJsonFull) writes.
const fullCanonicalJson = (value: unknown) => stringifyJsonFull(value, { sortKeys: true });
const fullStringifyJson = (value: unknown) => stringifyJsonFull(value);
// Python's `json.dumps` spacing (core/formats/qwen.ts writes tool calls with it), sorted and not.
const PYTHON = [{ separators: 'python' }, { separators: 'python', sortKeys: true }] as const;

/** A tuple as the Python-call parser makes them: written as an array by core/json.ts. */
class Tuple {
  constructor(readonly items: unknown[]) {}
  jsonArrayItems(): readonly unknown[] {
    return this.items;
  }
}

const protoKey = JSON.parse('{"__proto__": {"x": 1}, "a": 2}') as unknown;

const VALUES: unknown[] = [
  null,
  true,
  0,
  -0,
  42,
  -7,
  1.5,
  1e-7,
  123456789012345680000,
  1e21,
  -1e22,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  new JsonFloat(5),
  new JsonFloat(-0),
  new JsonFloat(1e21),
  new JsonFloat(Number.NaN),
  new JsonFloat(Number.NEGATIVE_INFINITY),
  '',
  'plain',
  'quote " backslash \\ newline \n tab \t nul \u0000 bell \u0007',
  'unicode é 日本 😀 lone \ud800 surrogate \udfff',
  [],
  {},
  [1, [2, [3, { b: 1, a: [new JsonFloat(2)] }]]],
  { b: 1, a: 2, c: { z: null, y: [true, false] } },
  { 10: 'ten', 9: 'nine', b: 'bee', B: 'Bee', é: 'e', '': 'empty' },
  { a: undefined, b: 1 },
  protoKey,
  Object.assign(Object.create(null) as object, { z: 1, a: 2 }),
  new Tuple([1, new JsonFloat(2), 'x']),
  { wrapped: new Tuple([{ b: 2, a: 1 }]) },
  new Date(0),
  { when: new Date(0) },
  new Map([[1, 2]]),
  parseJson('{"tools": [{"name": "f", "parameters": {"type": "dict", "properties": {"x": {"default": 5.0}}}}]}'),
];

describe('the plain JSON writer writes what the general writer writes', () => {
  test.each(VALUES.map((value, index) => [index, value]))('value %i', (_, value) => {
    expect(canonicalJson(value)).toBe(fullCanonicalJson(value));
    expect(stringifyJson(value)).toBe(fullStringifyJson(value));
    for (const options of PYTHON) expect(stringifyJson(value, options)).toBe(stringifyJsonFull(value, options));
  });

  test('values core/json.ts refuses are refused with the same error', () => {
    const sparse: unknown[] = [1];
    sparse[2] = 3;
    for (const value of [[1, undefined], { f: () => 1 }, [Symbol('s')], 10n, { deep: [undefined] }]) {
      expect(() => canonicalJson(value)).toThrow(
        (() => {
          try {
            fullCanonicalJson(value);
          } catch (err) {
            return (err as Error).message;
          }
          throw new Error('the general writer wrote it');
        })(),
      );
    }
    // A hole is skipped by core/json.ts's map and join (an empty item): the fast writer leaves it to it.
    expect(stringifyJson(sparse)).toBe(fullStringifyJson(sparse));
  });

  test('plainJson leaves non-finite numbers and huge integers to the general writer', () => {
    expect(plainJson({ a: Number.NaN }, { sortKeys: true })).toBeUndefined();
    expect(plainJson([new JsonFloat(Number.POSITIVE_INFINITY)], { sortKeys: false })).toBeUndefined();
    expect(plainJson(1e21, { sortKeys: false })).toBeUndefined();
    expect(plainJson({ b: [new JsonFloat(1)], a: 1 }, { sortKeys: true })).toBe('{"a":1,"b":[1.0]}');
    expect(plainJson({ b: [new JsonFloat(1), 'x'], a: 1 }, { sortKeys: false, separators: 'python' })).toBe(
      '{"b": [1.0, "x"], "a": 1}',
    );
  });

  test('random nested values agree', () => {
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const make = (depth: number): unknown => {
      const r = next();
      if (depth > 3 || r < 0.3) {
        const leaf = [null, true, 3, -0.25, new JsonFloat(7), 'sé"\\', 2 ** 60, Math.floor(next() * 1e6)];
        return leaf[Math.floor(next() * leaf.length)];
      }
      if (r < 0.6) return Array.from({ length: Math.floor(next() * 4) }, () => make(depth + 1));
      const out: Record<string, unknown> = {};
      for (let i = 0; i < 4; i++) out[['b', 'a', '1', 'Z', 'é', '10'][Math.floor(next() * 6)]!] = make(depth + 1);
      return out;
    };
    for (let i = 0; i < 500; i++) {
      const value = make(0);
      expect(canonicalJson(value)).toBe(fullCanonicalJson(value));
      expect(stringifyJson(value)).toBe(fullStringifyJson(value));
      for (const options of PYTHON) expect(stringifyJson(value, options)).toBe(stringifyJsonFull(value, options));
    }
  });
});
