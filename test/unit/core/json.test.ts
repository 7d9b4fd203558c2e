import { describe, expect, test } from 'vitest';
import {
  canonicalJson,
  contentKey,
  formatFloat,
  isJsonFloat,
  isJsonInt,
  JsonFloat,
  jsonArrayElementTexts,
  jsonMemberSpan,
  parseJson,
  stringifyJson,
  type JsonValue,
} from '../../../core/json.js';

/** What `JSON.parse` makes of a text, or that it refuses it. */
function parsesTo(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    return { ok: false };
  }
}

/** Broken variants of each text: cut at the end and at the start, without its first `separator`, without its first quote. */
function brokenVariants(texts: readonly string[], separator: string): string[] {
  return texts.flatMap((text) => [
    text.slice(0, -1),
    text.slice(1),
    text.replace(separator, ''),
    text.replace('"', ''),
  ]);
}

function parsed(text: string): JsonValue {
  const result = parseJson(text);
  if (!result.ok) throw new Error(result.error.message);
  return result.value;
}

describe('parseJson', () => {
  test('keeps 5 an int and 5.0 a float, as Python json.loads does', () => {
    const value = parsed('{"a": 5, "b": 5.0, "c": 5e0, "d": -0.5, "e": [1, 1.0]}') as Record<string, JsonValue>;
    expect(isJsonInt(value.a)).toBe(true);
    expect(value.b).toEqual(new JsonFloat(5));
    expect(value.c).toEqual(new JsonFloat(5));
    expect(isJsonFloat(value.d)).toBe(true);
    expect(value.e).toEqual([1, new JsonFloat(1)]);
  });

  test('takes the native fast path for text without float lexemes and still returns the same model', () => {
    expect(parsed('{"a": [1, 2, "3.0"], "b": null, "c": true}')).toEqual({ a: [1, 2, '3.0'], b: null, c: true });
    expect(parsed('{"s": "1.5 inside a string", "n": 1.5}')).toEqual({
      s: '1.5 inside a string',
      n: new JsonFloat(1.5),
    });
  });

  test('float lexemes, NaN and Infinity inside strings leave the numbers outside them exact', () => {
    // Only the lexemes outside strings decide: these parse natively, and must come out as the lossless parser reads them.
    expect(parsed('{"v2.0": "e.g. 3.5e2 NaN Infinity", "n": 7, "m": [0, -3]}')).toEqual({
      'v2.0': 'e.g. 3.5e2 NaN Infinity',
      n: 7,
      m: [0, -3],
    });
    // An escaped quote does not end the string: the 1.0 after it is still inside, the 2.0 outside is a float.
    const value = parsed('{"a": "say \\"1.0\\" and \\\\", "b": 2.0, "c": "Infinity"}') as Record<string, JsonValue>;
    expect(value).toEqual({ a: 'say "1.0" and \\', b: new JsonFloat(2), c: 'Infinity' });
    expect(isJsonFloat(value.b)).toBe(true);
    expect((parsed('["x", NaN]') as JsonValue[])[1]).toBeInstanceOf(JsonFloat);
    // Broken text still gets the slow parser's located error.
    const broken = parseJson('{"a": "1.0", "b": 2');
    expect(broken.ok).toBe(false);
  });

  test("accepts Python's NaN and Infinity as floats", () => {
    const value = parsed('[NaN, Infinity, -Infinity]') as JsonFloat[];
    expect(value.map((v) => v instanceof JsonFloat)).toEqual([true, true, true]);
    expect(Number.isNaN(value[0]?.value)).toBe(true);
    expect(value[2]?.value).toBe(Number.NEGATIVE_INFINITY);
  });

  test('reports the line and column of a syntax error instead of throwing', () => {
    const result = parseJson('{\n  "a": 1.0,\n  "b": ]\n}');
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toMatchObject({ line: 3, column: 8 });
  });

  test('rejects what JSON rejects: leading zeros, trailing commas, control characters, trailing data', () => {
    for (const bad of ['01', '[1,]', '{"a":1,}', '"a\tb"', '1.', '.5', '1 2', '{"a" 1}', ''])
      expect(parseJson(bad).ok).toBe(false);
  });

  test('decodes escapes, including surrogate pairs', () => {
    expect(parsed('"\\u00e9\\ud83d\\ude00\\n\\"\\\\\\/"')).toBe('é😀\n"\\/');
  });

  test('stores a __proto__ key as data, never as the prototype', () => {
    const value = parsed('{"__proto__": {"polluted": 1.5}}') as Record<string, unknown>;
    expect(Object.keys(value)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
  });

  test('keeps the last of duplicate keys, as Python and JavaScript do', () => {
    expect(parsed('{"a": 1, "a": 2.0}')).toEqual({ a: new JsonFloat(2) });
  });
});

describe('stringifyJson and canonicalJson', () => {
  test('writes floats with a decimal point or exponent so they read back as floats', () => {
    expect(stringifyJson([new JsonFloat(5), new JsonFloat(-0), 5, 0.5, new JsonFloat(1e21), 1e21])).toBe(
      '[5.0,-0.0,5,0.5,1e+21,1000000000000000000000]',
    );
    expect(formatFloat(Number.NaN)).toBe('NaN');
  });

  test('round-trips any parsed value exactly', () => {
    const text = '{"b":[1,2.5,3.0,{"x":null}],"a":"é","c":true}';
    expect(stringifyJson(parsed(text))).toBe(text);
  });

  test('canonical form sorts keys recursively and is independent of key order', () => {
    const a = parsed('{"b": {"y": 1, "x": 2.0}, "a": [ {"d": 1, "c": 2} ]}');
    const b = parsed('{"a": [{"c": 2, "d": 1}], "b": {"x": 2.0, "y": 1}}');
    expect(canonicalJson(a)).toBe('{"a":[{"c":2,"d":1}],"b":{"x":2.0,"y":1}}');
    expect(canonicalJson(b)).toBe(canonicalJson(a));
  });

  test('canonical form tells 1 and 1.0 apart, because BFCL does', () => {
    expect(canonicalJson({ a: 1 })).not.toBe(canonicalJson({ a: new JsonFloat(1) }));
  });

  test('Python separators and ASCII escaping match json.dumps defaults', () => {
    expect(stringifyJson({ a: [1, 'é'] }, { separators: 'python', asciiOnly: true })).toBe('{"a": [1, "\\u00e9"]}');
  });

  test('skips undefined members, as JSON.stringify does', () => {
    expect(stringifyJson({ a: 1, b: undefined })).toBe('{"a":1}');
  });
});

describe('jsonArrayElementTexts', () => {
  // Texts made from pieces that stress the cutter (strings holding brackets, commas, quotes and escapes; nesting;
  // whitespace JSON allows and whitespace it does not), then cut one character at a time to make broken ones.
  const elements = [
    '1',
    '5.0',
    '"a,b"',
    '"]"',
    '"\\\\"',
    '"\\\\\\""',
    '"[{"',
    '{"k": [1, {"x": "}"}], "y": null}',
    '[]',
    '[[], [[]]]',
    '{}',
    'true',
    '"é 😀"',
  ];
  const spaces = ['', ' ', '\n\t', '\r', '\u00a0'];
  const texts: string[] = [
    '[]',
    '[ ]',
    ' [ ] ',
    '[,]',
    '[1,]',
    '[,1]',
    '[1,,2]',
    '{}',
    '',
    '[',
    '"[1]"',
    '[1]]',
    '[1] x',
  ];
  for (let i = 0; i < 400; i++) {
    const pick = <T>(list: readonly T[], n: number): T => list[(i * 7 + n * 13 + Math.floor(i / 5)) % list.length]!;
    const count = i % 5;
    const parts = Array.from(
      { length: count },
      (_, n) => `${pick(spaces, n)}${pick(elements, n + i)}${pick(spaces, n + 1)}`,
    );
    texts.push(`${pick(spaces, 3)}[${parts.join(',')}]${pick(spaces, 2)}`);
  }
  const broken = brokenVariants(texts, ',');

  test('an array is cut into its elements exactly; what is not an array never comes back as one', () => {
    let arrays = 0;
    for (const text of [...texts, ...broken]) {
      const whole = parsesTo(text);
      const cut = jsonArrayElementTexts(text);
      if (whole.ok && Array.isArray(whole.value)) {
        arrays++;
        // Every element's own text, without the whitespace around it, parses to the element.
        expect(cut, text).toBeDefined();
        expect(cut!.map((element) => JSON.parse(element) as unknown)).toEqual(whole.value);
        for (const element of cut!) expect(element).toBe(element.trim());
      } else if (cut !== undefined) {
        // Not an array, yet cut: then some element does not parse, so a reader never takes it for one.
        expect(
          cut.some((element) => !parsesTo(element).ok),
          text,
        ).toBe(true);
      }
    }
    expect(arrays).toBeGreaterThan(300);
  });
});

describe('jsonMemberSpan', () => {
  // Objects made of members that stress the scanner: the key nested, inside strings, escaped, repeated; values holding
  // brackets, quotes, escapes and colons; whitespace JSON allows. Then broken ones, cut and trimmed.
  const values = [
    '[1, 2]',
    '5.0',
    '"tools"',
    '"a\\"b"',
    '"\\\\"',
    '{"tools": [3]}',
    '[{"x": "}]"}, []]',
    'null',
    '{}',
    '"é 😀"',
    '-7',
  ];
  const keys = ['"tools"', '"messages"', '"tool"', '"toolsx"', '"to\\u006fls"', '"a:b"'];
  const spaces = ['', ' ', '\n\t '];
  const texts: string[] = [
    '{}',
    '{"tools": [1]}',
    '{"tools":[1],"tools":[2]}',
    ' {"tools" : {"a": 1} } ',
    '[{"tools": 1}]',
  ];
  for (let i = 0; i < 600; i++) {
    const pick = <T>(list: readonly T[], n: number): T => list[(i * 5 + n * 11 + Math.floor(i / 7)) % list.length]!;
    const count = 1 + (i % 4);
    const members = Array.from(
      { length: count },
      (_, n) =>
        `${pick(spaces, n)}${pick(keys, n + i)}${pick(spaces, n + 2)}:${pick(spaces, n + 1)}${pick(values, n * 3 + i)}`,
    );
    texts.push(`${pick(spaces, 4)}{${members.join(',')}${pick(spaces, 3)}}`);
  }
  const broken = brokenVariants(texts, ':');

  test("the span is the member's value exactly; a text it finds nothing in has no single plain `tools` member", () => {
    let found = 0;
    for (const text of [...texts, ...broken]) {
      const whole = parsesTo(text);
      const span = jsonMemberSpan(text, 'tools');
      const isObject =
        whole.ok && typeof whole.value === 'object' && whole.value !== null && !Array.isArray(whole.value);
      if (span === undefined) {
        // Found nothing in an object that has the member: then it is named twice or by a key with an escape.
        if (isObject && Object.hasOwn(whole.value as object, 'tools'))
          expect((text.match(/"tools"/g) ?? []).length > 1 || text.includes('\\u'), text).toBe(true);
        continue;
      }
      const valueText = text.slice(span.start, span.end);
      expect(valueText, text).toBe(valueText.trim());
      if (!isObject) {
        // Not an object, yet a span: then the text with the span replaced is not an object whose member reads null,
        // so a reader that checks that (datasets/openai-import.ts) never takes it for the member.
        const rest = parsesTo(`${text.slice(0, span.start)}null${text.slice(span.end)}`);
        const parts = parsesTo(valueText);
        expect(!rest.ok || !parts.ok || (rest.value as { tools?: unknown } | null)?.tools !== null, text).toBe(true);
        continue;
      }
      found++;
      expect(JSON.parse(valueText), text).toEqual((whole.value as { tools: unknown }).tools);
      expect(JSON.parse(`${text.slice(0, span.start)}null${text.slice(span.end)}`), text).toEqual({
        ...(whole.value as object),
        tools: null,
      });
    }
    expect(found).toBeGreaterThan(150);
  });
});

describe('contentKey', () => {
  test('equal keys exactly for equal JSON: ints apart from floats, parsed natively or losslessly', () => {
    const texts = [
      '[1, 2]',
      '[1.0, 2]',
      '[1.5, 2]',
      '{"a": 1, "b": [true, null, "x"]}',
      '{"a": 1.0, "b": [true, null, "x"]}',
      '{"a": "1.0", "b": [true, null, "x"]}',
      '{"b": [true, null, "x"], "a": 1}',
      '{"value": 1.5}',
      '{"__proto__": {"a": 1}}',
      '"[1.0, 2]"',
      '[NaN]',
      '[null]',
    ];
    const keys = texts.map((text) => contentKey(parsed(text)));
    // Two parses of one text give one key; different texts (different content or key order) different keys.
    expect(texts.map((text) => contentKey(parsed(text)))).toEqual(keys);
    expect(new Set(keys).size).toBe(texts.length);
    // A float written as a plain number (what JSON.parse gives for 1.5) and as a JsonFloat are keyed apart, never mixed
    // up with an object that has a `value` key.
    expect(contentKey([1.5])).not.toBe(contentKey([new JsonFloat(1.5)]));
    expect(contentKey({ value: 1.5 })).not.toBe(contentKey(new JsonFloat(1.5)));
    // Not plain JSON (NaN, a float too large, not JSON at all): no key, so a cache reads such a value each time.
    expect(contentKey(parsed('[NaN]'))).toBeUndefined();
    expect(contentKey(parsed('[1e400]'))).toBeUndefined();
    expect(contentKey([Number.NaN])).toBeUndefined();
    expect(contentKey([() => 1])).toBeUndefined();
  });
});
