import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { bfclAnswerFromRecord } from '../../../core/formats/bfcl.js';
import { JsonFloat } from '../../../core/json.js';
import { parsePythonCallList, parsePythonCalls, parsePythonCallsFull } from '../../../core/parse/python-calls.js';
import type { ParsedCall, ParseResult } from '../../../core/parse/types.js';
import { PyOpaque, pyRepr, PyTuple, type PyValue } from '../../../core/python.js';
import { readSmallJsonLines } from '../../../datasets/read-records.js';

// The fast path of parsePythonCalls (parsePythonCallList) must give exactly what the full Python-expression parser
// gives wherever it answers, and leave everything else to it. "Exactly" is checked with a rendering that tells apart
// what toEqual may not: int vs float, -0 vs 0, list vs tuple, key order, prototypes.

const DATA = fileURLToPath(new URL('../../../data/bfcl/', import.meta.url));
const CATEGORIES = ['simple_python', 'multiple', 'parallel', 'parallel_multiple'] as const;

function tagged(value: PyValue): string {
  if (value === null) return 'None';
  switch (typeof value) {
    case 'boolean':
      return value ? 'True' : 'False';
    case 'number':
      return Object.is(value, -0) ? 'int:-0' : `int:${value}`;
    case 'string':
      return `str:${JSON.stringify(value)}`;
    default:
      break;
  }
  if (value instanceof JsonFloat) return Object.is(value.value, -0) ? 'float:-0' : `float:${value.value}`;
  if (Array.isArray(value)) return `list[${value.map(tagged).join(', ')}]`;
  if (value instanceof PyTuple) return `tuple(${value.items.map(tagged).join(', ')})`;
  if (value instanceof PyOpaque) return `${value.typeName}:${value.repr}`;
  if (Object.getPrototypeOf(value) !== Object.prototype) return 'not-a-plain-object';
  return `dict{${Object.keys(value)
    .map((key) => `${JSON.stringify(key)}: ${tagged(value[key] as PyValue)}`)
    .join(', ')}}`;
}

function renderCalls(calls: readonly ParsedCall[]): string {
  return calls.map((call) => `${call.name}${tagged(call.arguments)}`).join('; ');
}

function render(result: ParseResult): string {
  return result.ok ? `ok ${result.format} ${renderCalls(result.calls)}` : `error ${JSON.stringify(result.error)}`;
}

/** The fast path's answer (which must exist) equals the full parser's, and parsePythonCalls gives that too. */
function expectFastHit(text: string): void {
  const full = parsePythonCallsFull(text);
  const fast = parsePythonCallList(text);
  if (fast === undefined) throw new Error(`fast path gave up on ${JSON.stringify(text)}`);
  expect(`ok python ${renderCalls(fast)}`, text).toBe(render(full));
  expect(fast).toStrictEqual(full.ok ? full.calls : undefined);
  expect(render(parsePythonCalls(text)), text).toBe(render(full));
}

/** The fast path leaves the text to the full parser, and the combined decoder gives the full parser's result. */
function expectFallback(text: string): void {
  expect(parsePythonCallList(text), text).toBeUndefined();
  expect(render(parsePythonCalls(text)), text).toBe(render(parsePythonCallsFull(text)));
}

const records = readSmallJsonLines;

/** How to lay out a call text: separators between calls and arguments, around `=`, inside the brackets. */
interface Layout {
  callSep: string;
  argSep: string;
  eq: string;
  open: string;
  close: string;
  callOpen: string;
  callClose: string;
  /** After the last argument, when there is one (`f(,)` is a syntax error). */
  trail: string;
}

const BENCH_LAYOUT: Layout = {
  callSep: ', ',
  argSep: ', ',
  eq: '=',
  open: '[',
  close: ']',
  callOpen: '(',
  callClose: ')',
  trail: '',
};

/**
 * Every possible answer of the BFCL data as Python call text, as bench/core.ts writes it (`name(k=pyRepr(v), …)`),
 * once per alternative index (the k-th acceptable value of each argument, the last one where there are fewer; `""`
 * leaves the argument out), so every acceptable value is decoded at least once.
 */
function bfclTexts(layout: Layout = BENCH_LAYOUT): string[] {
  const texts: string[] = [];
  for (const category of CATEGORIES) {
    for (const record of records(`${DATA}possible_answer/BFCL_v4_${category}.json`)) {
      const answer = bfclAnswerFromRecord(record);
      if (!answer.ok) throw new Error(answer.rejection.reason);
      const calls = answer.value.calls;
      const rounds = Math.max(
        1,
        ...calls.flatMap((call) => Object.values(call.arguments).map((alternatives) => alternatives.length)),
      );
      for (let k = 0; k < rounds; k++) {
        const rendered = calls.map((call) => {
          const args = Object.entries(call.arguments)
            .map(([param, alternatives]) => [param, alternatives[Math.min(k, alternatives.length - 1)]] as const)
            .filter(([, value]) => value !== '')
            .map(([param, value]) => `${param}${layout.eq}${pyRepr(value as PyValue)}`);
          return `${call.name}${layout.callOpen}${args.join(layout.argSep)}${args.length > 0 ? layout.trail : ''}${layout.callClose}`;
        });
        texts.push(`${layout.open}${rendered.join(layout.callSep)}${layout.close}`);
      }
    }
  }
  return texts;
}

describe('parsePythonCalls fast path (parsePythonCallList) vs the full parser', () => {
  test('every BFCL possible answer, as Python call text, takes the fast path and decodes identically', () => {
    const texts = bfclTexts();
    expect(texts.length).toBeGreaterThan(1000);
    for (const text of texts) expectFastHit(text);
  });

  test('the BFCL texts reformatted (no spaces, newlines, trailing commas, spaces before brackets) still agree', () => {
    const layouts: Layout[] = [
      { ...BENCH_LAYOUT, callSep: ',', argSep: ',' },
      { ...BENCH_LAYOUT, callSep: ',\n', argSep: ',\n  ', trail: ',', callClose: '\n)', close: ',\n]' },
      {
        callSep: ' ,\t',
        argSep: ' , ',
        eq: ' = ',
        open: '[ \t',
        close: ' \r\n]',
        callOpen: ' ( ',
        callClose: ' \f)',
        trail: ' ,',
      },
    ];
    for (const layout of layouts) for (const text of bfclTexts(layout)) expectFastHit(text);
    for (const text of bfclTexts()) {
      // Not bracketed: BFCL wraps it (and strips spaces, newlines and backticks at the ends) before parsing.
      const bare = ` \`${text.slice(1, -1)}\`\n`;
      expect(render(parsePythonCalls(bare)), bare).toBe(render(parsePythonCallsFull(bare)));
    }
  });

  test('tricky literals take the fast path and decode identically', () => {
    const values = [
      // strings: quotes, every escape form, unicode, lone surrogates, unknown escapes kept as written
      "'plain'",
      '"double"',
      "''",
      '""',
      '"it\'s"',
      '\'say "hi"\'',
      "'it\\'s'",
      '"q\\"q"',
      "'\\\\'",
      "'a\\\\b'",
      "'\\n\\t\\r\\a\\b\\f\\v\\0'",
      "'\\x41\\x7f\\xff'",
      "'\\u00e9\\u2603'",
      "'\\U0001F600'",
      "'\\101\\7\\777'",
      "'\\q\\d\\s'",
      "'tab\there'",
      "'é☃😀'",
      "'\ud800'",
      "'\\\nline continued'",
      "'#not a comment'",
      "'a, b) ] }'",
      // numbers: ints, floats, exponents, negatives, -0, big ints, overflow to inf
      '0',
      '7',
      '42',
      '-1',
      '-0',
      '-0.0',
      '5.0',
      '5.',
      '.5',
      '-.5',
      '0.5',
      '00.5',
      '01.5',
      '0e0',
      '1e3',
      '1E-3',
      '1e+3',
      '-2.5e-7',
      '1.e5',
      '123456789012345',
      '1234567890123456',
      '12345678901234567890',
      '9007199254740993',
      '1e309',
      '-1e309',
      '3.141592653589793238462643383279',
      '0.1',
      '1' + '0'.repeat(299),
      // constants and names
      'True',
      'False',
      'None',
      'x',
      'some_name',
      '_',
      'match',
      'print',
      // containers: empty, nested, trailing commas, tuples vs parenthesized values
      '[]',
      '[1]',
      '[1,]',
      '[1, 2.0, "x", None, True]',
      '[[1, [2, [3, []]]], {}]',
      '()',
      '(1,)',
      '(1, 2)',
      '(1, 2,)',
      '(1)',
      '((1))',
      '(-1)',
      '("a")',
      '((1,),)',
      "{'a': 1}",
      "{'a': 1,}",
      '{}',
      "{'a': {'b': [1, (2, 3)]}}",
      "{'a': 1, 'a': 2}",
      "{name: 'bare key'}",
      "{'__proto__': 1, 'constructor': 2}",
      "{'2': 'b', '1': 'a', 'z': 0}",
      ' [ 1 ,\n 2 , ] ',
      '(\t1\t,\f2\r\n)',
      "{ 'k' :\n[ ] }",
    ];
    for (const value of values) expectFastHit(`[f(a=${value})]`);
    expectFastHit(`[f(${values.map((value, i) => `p${i}=${value}`).join(', ')})]`);
    expectFastHit(`[f(${values.map((value, i) => `p${i} = ${value}`).join(',\n')},\n)]`);
    expectFastHit(`[f(a=[${values.join(', ')}])]`);
    expectFastHit(`[f(a=(${values.join(', ')}))]`);
    expectFastHit(`[f(a={${values.map((value, i) => `'k${i}': ${value}`).join(', ')}})]`);
  });

  test('call shapes take the fast path and decode identically', () => {
    for (const text of [
      '[]',
      '[ ]',
      '[f()]',
      '[f( )]',
      '[f(),]',
      '[ f ( a = 1 ) ]',
      '[math.hypot(x=4, y=5)]',
      '[a . b .c(x=1)]',
      '[a.b.c.d(x=1)]',
      '[f(a=1), g(b=2), h()]',
      '[f(a=1),\ng(b=2),\n]',
      '[f(a=1, a=2)]',
      '[f(__proto__=1)]',
      '[f(constructor=1, toString=2)]',
      '[_f(_=1)]',
      '[F1(X2=3)]',
      '[f(r=1, u=2, b=3, rb=4, f=5, fr=6)]',
    ]) {
      expectFastHit(text);
    }
  });

  test('everything else is left to the full parser, errors included', () => {
    for (const text of [
      // not the literal subset: arithmetic, unary +/~, spaced or doubled minus, calls, attributes, subscripts, names
      '[f(a=1+2)]',
      '[f(a=2**-1)]',
      '[f(a=+5)]',
      '[f(a=~5)]',
      '[f(a=- 5)]',
      '[f(a=--5)]',
      '[f(a=-(5))]',
      '[f(a=-True)]',
      '[f(a=-x)]',
      '[f(a=g(b=1))]',
      '[f(a=g())]',
      '[f(a=x.y)]',
      '[f(a=[1][0])]',
      "[f(a='a'.upper())]",
      '[f(a=not x)]',
      '[f(a=1 if x else 2)]',
      '[f(a=lambda: 1)]',
      '[f(a=[x for x in y])]',
      '[f(a=(x for x in y))]',
      '[f(a=...)]',
      '[f(a={1, 2})]',
      '[f(a={1: 2})]',
      '[f(a={None: 2})]',
      '[f(a={**d})]',
      "[f(a={'k' := 1})]",
      '[f(a=[*x])]',
      // string forms: prefixes, triple quotes, implicit concatenation, bad escapes, unterminated
      "[f(a=r'x\\n')]",
      "[f(a=u'x')]",
      "[f(a=b'x')]",
      "[f(a=f'{x}')]",
      "[f(a='''x''')]",
      '[f(a="""x""")]',
      "[f(a='a' 'b')]",
      "[f(a='a'\n'b')]",
      "[f(a='\\N{DASH}')]",
      "[f(a='\\x4')]",
      "[f(a='\\u12')]",
      "[f(a='\\U00110000')]",
      "[f(a='abc)]",
      "[f(a='a\nb')]",
      // number forms: underscores, prefixes, leading zeros, complex, bad exponents, too long
      '[f(a=1_000)]',
      '[f(a=0x1F)]',
      '[f(a=0o17)]',
      '[f(a=0b101)]',
      '[f(a=00)]',
      '[f(a=007)]',
      '[f(a=3j)]',
      '[f(a=1.5J)]',
      '[f(a=1e)]',
      '[f(a=1e+)]',
      '[f(a=1.5.3)]',
      '[f(a=1x)]',
      `[f(a=${'9'.repeat(500)})]`,
      // call forms: positional and starred arguments, keywords as names, non-ASCII names, chained calls
      '[f(1)]',
      '[f(1, a=2)]',
      '[f(*a)]',
      '[f(**k)]',
      '[f(True=1)]',
      '[f(lambda=1)]',
      '[True(a=1)]',
      '[a.None(x=1)]',
      '[fé(a=1)]',
      '[f(é=1)]',
      '[f(a=é)]',
      '[f(a=1)(b=2)]',
      '[f(a=1).g(b=2)]',
      '[f(a==1)]',
      '[f(a:=1)]',
      '[f(a=1 b=2)]',
      '[f(,)]',
      '[f(a=)]',
      // list forms: not calls, comprehensions, operators after the list, comments, continuations, odd whitespace
      '[1]',
      "['f(a=1)']",
      '[f]',
      '[[f(a=1)]]',
      '[f(a=1)] + [g()]',
      '[f(a=1)][0]',
      '[f(a=1)], [g()]',
      '[f(a=1) for x in y]',
      '[f(a=1) # comment\n]',
      '[f(a=\\\n1)]',
      '[f(a=1)\v]',
      '[,]',
      '[f(a=1),,]',
      '[f(a=1)',
      '[f(a=[1)]',
      '[f(a={)]',
      // deep nesting (the full parser's own limits apply)
      `[f(a=${'['.repeat(150)}${']'.repeat(150)})]`,
    ]) {
      expectFallback(text);
    }
  });

  test('random call texts (literals, near-literals and corruptions) decode identically with and without the fast path', () => {
    // A small deterministic PRNG (mulberry32), so failures reproduce.
    let seed = 20250601;
    const random = (): number => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = seed;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    const atoms = [
      "'a'",
      '"b"',
      "''",
      "'it\\'s'",
      "'\\n\\x41\\u00e9'",
      "'\\q'",
      "'\\N{DASH}'",
      "'é😀'",
      '0',
      '-0',
      '5',
      '-5',
      '5.0',
      '-0.0',
      '.5',
      '1e3',
      '-2.5e-7',
      '00',
      '07',
      '0x1F',
      '1_0',
      '1e',
      '12345678901234567',
      '3j',
      'True',
      'False',
      'None',
      'x',
      'lambda',
      '...',
      "r'r'",
      "u'u'",
      "b'b'",
      "f'{x}'",
      "'''t'''",
      "'a' 'b'",
      '+5',
      '~5',
      '- 5',
      '1+2',
      'x.y',
      'g(a=1)',
      'g()',
      '{1, 2}',
      '{**d}',
      '(1)',
      '()',
      '-(5)',
      'not x',
      '[x for x in y]',
    ];
    const space = (): string => pick(['', '', '', ' ', '  ', '\n', '\t', '\r\n', '\f']);
    const value = (depth: number): string => {
      const r = random();
      if (depth > 3 || r < 0.55) return pick(atoms);
      const items = Array.from({ length: Math.floor(random() * 4) }, () => value(depth + 1));
      const trailing = items.length > 0 && random() < 0.2 ? ',' : '';
      if (r < 0.7) return `[${space()}${items.join(`,${space()}`)}${trailing}${space()}]`;
      if (r < 0.85)
        return `(${space()}${items.join(`,${space()}`)}${items.length === 1 && random() < 0.7 ? ',' : trailing}${space()})`;
      const key = (): string => pick(["'k'", '"k2"', 'name', "'__proto__'", "'1'", "'k'", '1', 'None']);
      return `{${space()}${items.map((item) => `${key()}${space()}:${space()}${item}`).join(`,${space()}`)}${trailing}${space()}}`;
    };
    const call = (): string => {
      const args = Array.from({ length: Math.floor(random() * 4) }, () =>
        random() < 0.1
          ? value(0)
          : `${pick(['a', 'b', 'a', 'c_1', 'None', '__proto__', 'r'])}${space()}=${space()}${value(0)}`,
      );
      return `${pick(['f', 'math.hypot', 'a.b.c', 'a . b', 'True', 'fé'])}${space()}(${space()}${args.join(`,${space()}`)}${random() < 0.2 ? ',' : ''}${space()})`;
    };
    let hits = 0;
    for (let i = 0; i < 5000; i++) {
      const body = Array.from({ length: Math.floor(random() * 3) }, call).join(pick([', ', ',', ',\n']));
      let text = random() < 0.8 ? `[${body}]` : body;
      if (random() < 0.15) {
        const at = Math.floor(random() * (text.length + 1));
        const ch = pick(['(', ')', '[', ']', "'", '"', ',', '=', ' ', '\\', '-', '.', '0', 'e', '_', ':', '{', '}']);
        text = pick([
          text.slice(0, at) + text.slice(at + 1),
          text.slice(0, at) + ch + text.slice(at),
          text.slice(0, at) + ch + text.slice(at + 1),
        ]);
      }
      const fast = parsePythonCallList(text);
      if (fast !== undefined) {
        hits++;
        expectFastHit(text);
      } else {
        expect(render(parsePythonCalls(text)), text).toBe(render(parsePythonCallsFull(text)));
      }
    }
    // Both sides are exercised: a good share of the texts takes the fast path, the rest falls back.
    expect(hits).toBeGreaterThan(500);
    expect(hits).toBeLessThan(4500);
  });
});

describe('parsePythonCalls without error detail (BFCL irrelevance)', () => {
  // Whether text decodes must never change; only the message of a failure may be skipped.
  const texts = [
    'I cannot answer this with the functions I have.',
    'Sorry I cannot help',
    "  I   can't",
    '```\nI do not know\n```',
    "[get_weather(city='Paris')]",
    'get_weather(city="Paris") please',
    'x if y else z',
    'not x',
    'lambda x: x',
    'a and b',
    'x in y',
    'x is None',
    'await x',
    'f"x"',
    "f 'x'",
    'rb x',
    'print "hello"',
    'I, you',
    'I\ncannot',
    '[a b]',
    'a\tb',
    '[]',
    '',
    'Hello',
  ];
  test.each(texts)('%j decodes (or not) exactly as with the detail', (text) => {
    const quick = parsePythonCalls(text, { errorDetail: false });
    const full = parsePythonCallsFull(text);
    expect(quick.ok).toBe(full.ok);
    if (quick.ok && full.ok) expect(renderCalls(quick.calls)).toBe(renderCalls(full.calls));
  });

  test('prose fails without the parser; with the detail the message is the parser’s', () => {
    const quick = parsePythonCalls('I cannot answer this.', { errorDetail: false });
    const detailed = parsePythonCalls('I cannot answer this.');
    const full = parsePythonCallsFull('I cannot answer this.');
    if (quick.ok || detailed.ok || full.ok) throw new Error('prose decoded');
    expect(quick.error.reason).toMatch(/two names side by side/);
    expect(detailed.error.reason).toBe(full.error.reason);
    expect(full.error.reason).toMatch(/^invalid syntax/);
  });
});
