import { describe, expect, test } from 'vitest';
import { JsonFloat } from '../../../core/json.js';
import { parsePythonCalls } from '../../../core/parse/python-calls.js';
import { PyOpaque, pyRepr, PyTuple } from '../../../core/python.js';
import type { ParsedCall } from '../../../core/parse/types.js';

function calls(text: string): ParsedCall[] {
  const result = parsePythonCalls(text);
  if (!result.ok) throw new Error(`${result.error.kind}: ${result.error.reason}`);
  return result.calls;
}

function args(text: string): Record<string, unknown> {
  return (calls(text)[0] as ParsedCall).arguments;
}

function failure(text: string) {
  const result = parsePythonCalls(text);
  if (result.ok)
    throw new Error(`expected ${text} to fail, got ${pyRepr(result.calls.map((c) => ({ [c.name]: c.arguments })))}`);
  return result.error;
}

describe('parsePythonCalls (BFCL default_decode_ast_prompting)', () => {
  test('decodes a list of calls with dotted names and keyword arguments', () => {
    expect(calls("[math.hypot(x=4, y=5), get_weather(city='Paris')]")).toEqual([
      { name: 'math.hypot', arguments: { x: 4, y: 5 } },
      { name: 'get_weather', arguments: { city: 'Paris' } },
    ]);
  });

  test('wraps a bare call in brackets and strips spaces, newlines and backticks at the ends', () => {
    expect(calls(' f(a=1)\n')).toEqual([{ name: 'f', arguments: { a: 1 } }]);
    expect(calls('`f(a=1)`')).toEqual([{ name: 'f', arguments: { a: 1 } }]);
  });

  test('fails on a ```python fence, exactly as BFCL does (the language tag is left inside the brackets)', () => {
    expect(failure('```python\n[f(a=1)]\n```').kind).toBe('invalid_python');
  });

  test('keeps 5 an int and 5.0 a float, and reads every Python number form', () => {
    expect(args('[f(a=5, b=5.0, c=1e3, d=.5, e=1_000, g=0x1F, h=0o17, i=0b101)]')).toEqual({
      a: 5,
      b: new JsonFloat(5),
      c: new JsonFloat(1000),
      d: new JsonFloat(0.5),
      e: 1000,
      g: 31,
      h: 15,
      i: 5,
    });
  });

  test('decodes -x, +x and ~x of a constant as -x, as BFCL resolves every unary operator', () => {
    expect(args('[f(a=-5, b=+5, c=~5, d=-2.5, e=-True)]')).toEqual({
      a: -5,
      b: -5,
      c: -5,
      d: new JsonFloat(-2.5),
      e: -1,
    });
  });

  test('fails on a unary operator applied to anything but a constant', () => {
    expect(failure('[f(a=-(-5))]').kind).toBe('unsupported_value');
    expect(failure('[f(a=-x)]').kind).toBe('unsupported_value');
  });

  test('evaluates arithmetic with Python semantics (int vs float results, floor division, modulo sign)', () => {
    expect(
      args("[f(a=1+2, b=7/2, c=7//2, d=-7//2, e=-7%3, g=2**10, h=2**-1, i='a'+'b', j=[1]*2, k=True+True)]"),
    ).toEqual({
      a: 3,
      b: new JsonFloat(3.5),
      c: 3,
      d: -4,
      e: 2,
      g: 1024,
      h: new JsonFloat(0.5),
      i: 'ab',
      j: [1, 1],
      k: 2,
    });
    expect(failure('[f(a=1/0)]').reason).toContain('division by zero');
    expect(failure('[f(a=x+1)]').reason).toContain("name 'x' is not defined");
  });

  test('turns names into strings, keyword calls into dicts and other calls and subscripts into their source text', () => {
    expect(args("[f(a=x, b=g(c=1), c=math.sqrt(2), d=data['sales'], e=data[1:2], h=sum(x for x in y))]")).toEqual({
      a: 'x',
      b: { g: { c: 1 } },
      c: 'math.sqrt(2)',
      d: "data['sales']",
      e: 'data[1:2]',
      h: 'sum((x for x in y))',
    });
  });

  test('keeps tuples as tuples, and complex and bytes as opaque values', () => {
    const value = args("[f(a=(1, 2), b=(), c=1j, d=b'x')]");
    expect(value.a).toEqual(new PyTuple([1, 2]));
    expect(value.b).toEqual(new PyTuple([]));
    expect(value.c).toEqual(new PyOpaque('complex', '1j'));
    expect(value.d).toEqual(new PyOpaque('bytes', "b'x'"));
  });

  test('decodes string literals: quotes, escapes, raw, triple-quoted, implicit concatenation', () => {
    expect(args("[f(a=\"it's\", b='\\n\\x41\\u00e9', c=r'\\d', d='''t''', e='a' 'b', g=...)]")).toEqual({
      a: "it's",
      b: '\nAé',
      c: '\\d',
      d: 't',
      e: 'ab',
      g: '...',
    });
  });

  test('ignores positional arguments and keeps the last of a repeated keyword, as ast.parse does', () => {
    expect(calls('[f(1, 2, a=3, a=4)]')).toEqual([{ name: 'f', arguments: { a: 4 } }]);
  });

  test('decodes an empty string and [] to no calls', () => {
    expect(calls('')).toEqual([]);
    expect(calls('[]')).toEqual([]);
  });

  test('rejects prose, non-call elements, sets, lambdas and comprehensions with a typed reason, never a throw', () => {
    expect(failure('I cannot help with that.').kind).toBe('invalid_python');
    expect(failure('None').kind).toBe('invalid_call');
    expect(failure('[f(a=1), 5]').kind).toBe('invalid_call');
    expect(failure('[f(a={1, 2})]').reason).toBe("Unsupported AST type: <class 'ast.Set'>");
    expect(failure('[f(a=lambda x: x)]').kind).toBe('unsupported_value');
    expect(failure('[f(a=[x for x in y])]').reason).toBe("Unsupported AST type: <class 'ast.ListComp'>");
  });

  test('locates syntax errors in the original text', () => {
    const error = failure('[f(a=1)\n g(b=2)]');
    expect(error).toMatchObject({ kind: 'invalid_python', line: 2, column: 2 });
  });
});
