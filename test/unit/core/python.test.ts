import { describe, expect, test } from 'vitest';
import { JsonFloat } from '../../../core/json.js';
import { pyEquals, pyFloatRepr, pyRepr, pyStrip, PyTuple, pyTypeName } from '../../../core/python.js';

describe('Python value semantics', () => {
  test('type names follow type(): bool is not int, a tagged or fractional number is float', () => {
    expect(
      [true, 1, new JsonFloat(1), 1.5, 's', null, [1], new PyTuple([1]), { a: 1 }].map((v) => pyTypeName(v)),
    ).toEqual(['bool', 'int', 'float', 'float', 'str', 'NoneType', 'list', 'tuple', 'dict']);
  });

  test('equality follows ==: 1 == 1.0 == True, 0 == -0.0, a list never equals a tuple, dict order is irrelevant', () => {
    expect(pyEquals(1, new JsonFloat(1))).toBe(true);
    expect(pyEquals(true, 1)).toBe(true);
    expect(pyEquals(0, new JsonFloat(-0))).toBe(true);
    expect(pyEquals([1, 2], new PyTuple([1, 2]))).toBe(false);
    expect(pyEquals({ a: 1, b: [2] }, { b: [new JsonFloat(2)], a: true })).toBe(true);
    expect(pyEquals('1', 1)).toBe(false);
    expect(pyEquals([1, 2], [2, 1])).toBe(false);
  });

  // Python switches repr to exponent form when the decimal point falls outside -4 < exp <= 16.
  test.each([
    [5, '5.0'],
    [0.1, '0.1'],
    [1e16, '1e+16'],
    [1234567890123456, '1234567890123456.0'],
    [0.0001, '0.0001'],
    [0.00001, '1e-05'],
    [-2.5e-7, '-2.5e-07'],
    [1.5e300, '1.5e+300'],
    [Number.POSITIVE_INFINITY, 'inf'],
    [-0, '-0.0'],
    [123.456, '123.456'],
  ])('repr(float(%d)) is %s', (x, expected) => {
    expect(pyFloatRepr(x)).toBe(expected);
  });

  test('repr of containers and strings matches Python, quotes chosen as Python chooses them', () => {
    expect(pyRepr({ a: [1, new JsonFloat(2), 'x', null, true], b: new PyTuple([1]) })).toBe(
      "{'a': [1, 2.0, 'x', None, True], 'b': (1,)}",
    );
    expect(pyRepr("it's")).toBe('"it\'s"');
    expect(pyRepr('say "hi" it\'s')).toBe("'say \"hi\" it\\'s'");
    expect(pyRepr('tab\there\n\u0001é')).toBe("'tab\\there\\n\\x01é'");
  });

  test("strip() uses Python's whitespace set, strip(chars) the given characters", () => {
    expect(pyStrip('\u00a0\t x \u3000')).toBe('x');
    expect(pyStrip('\ufeffx')).toBe('\ufeffx');
    expect(pyStrip('``` [f()]\n```', '`\n ')).toBe('[f()]');
  });

  test('repr(str) of printable ASCII takes the quote Python takes and escapes only what Python escapes', () => {
    expect(pyRepr('plain name_1')).toBe("'plain name_1'");
    expect(pyRepr('')).toBe("''");
    expect(pyRepr("it's")).toBe('"it\'s"');
    expect(pyRepr('say "hi"')).toBe('\'say "hi"\'');
    expect(pyRepr(`both ' and "`)).toBe(`'both \\' and "'`);
    expect(pyRepr('back\\slash')).toBe("'back\\\\slash'");
    expect(pyRepr('~ !#$%&()*+,-./:;<=>?@[]^_`{|}')).toBe("'~ !#$%&()*+,-./:;<=>?@[]^_`{|}'");
    expect(pyRepr('del\x7f')).toBe("'del\\x7f'");
  });

  test('strip() removes exactly the code units Python 3.11 calls whitespace', () => {
    // `[chr(c) for c in range(0x10000) if chr(c).isspace()]` in CPython 3.11.
    const python = new Set([
      0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003,
      0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
    ]);
    const stripped: number[] = [];
    for (let code = 0; code < 0x10000; code++) {
      const one = String.fromCharCode(code);
      if (pyStrip(`${one}x${one}`) === 'x') stripped.push(code);
      else expect(pyStrip(`${one}x${one}`)).toBe(`${one}x${one}`);
    }
    expect(stripped).toEqual([...python]);
  });

  test('strip(chars) strips any of the characters at both ends, astral ones whole', () => {
    expect(pyStrip("''[f()]'", "'")).toBe('[f()]');
    expect(pyStrip('ab', 'ab')).toBe('');
    expect(pyStrip('xaybx', 'x')).toBe('ayb');
    expect(pyStrip('  x  ', '')).toBe('  x  ');
    const unchanged = 'same';
    expect(pyStrip(unchanged, 'q')).toBe(unchanged);
    // An astral character in `chars` strips that character, not a lone half of another.
    expect(pyStrip('😀x😀', '😀')).toBe('x');
    expect(pyStrip('\ud83dx', '😀')).toBe('\ud83dx');
  });
});
