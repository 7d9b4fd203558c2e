import { describe, expect, test } from 'vitest';
import {
  compileBfclQuestion,
  decodeBfclResult,
  decodeBfclText,
  scoreBfcl,
  standardizeString,
  type BfclCheckKind,
  type Verdict,
} from '../../../core/checker/index.js';
import { parseJson, type JsonValue } from '../../../core/json.js';
import type { FunctionDefinition, ParameterSchema } from '../../../core/schemas/function-def.js';
import type { AcceptableCall } from '../../../core/schemas/tool-call.js';

function json(text: string): JsonValue {
  const result = parseJson(text);
  if (!result.ok) throw new Error(result.error.message);
  return result.value;
}

function doc(name: string, properties: Record<string, ParameterSchema>, required: string[] = []): FunctionDefinition {
  return { name, description: '', parameters: { type: 'dict', properties, required } };
}

/** Possible answers in BFCL's own JSON text, so floats are written as BFCL writes them. */
function answer(text: string): AcceptableCall[] {
  return (json(text) as Record<string, Record<string, JsonValue[]>>[]).map((entry) => {
    const name = Object.keys(entry)[0] as string;
    return { name, arguments: entry[name] as Record<string, JsonValue[]> };
  });
}

function check(input: {
  kind?: BfclCheckKind;
  functions: FunctionDefinition[];
  answer?: string;
  output: string | JsonValue;
}): Verdict {
  const compiled = compileBfclQuestion({
    kind: input.kind ?? 'simple',
    functions: input.functions,
    possibleAnswer: input.answer ? answer(input.answer) : undefined,
  });
  if (!compiled.ok) throw new Error(compiled.error);
  const decoded =
    typeof input.output === 'string' ? decodeBfclText(input.output, 'python') : decodeBfclResult(input.output);
  return scoreBfcl(compiled.question, decoded);
}

const area = doc(
  'calculate_triangle_area',
  { base: { type: 'integer' }, height: { type: 'integer' }, unit: { type: 'string' } },
  ['base', 'height'],
);
const AREA_ANSWER = '[{"calculate_triangle_area": {"base": [10], "height": [5], "unit": ["units", ""]}}]';
const areaCheck = (output: string | JsonValue): Verdict => check({ functions: [area], answer: AREA_ANSWER, output });

describe('C2 dispatch and decoding', () => {
  test('simple: exactly one call is checked; zero or two calls is simple_function_checker:wrong_count', () => {
    expect(areaCheck('[calculate_triangle_area(base=10, height=5)]')).toEqual({ valid: true });
    expect(
      areaCheck('[calculate_triangle_area(base=10, height=5), calculate_triangle_area(base=10, height=5)]'),
    ).toMatchObject({ errorType: 'simple_function_checker:wrong_count' });
    expect(areaCheck('[]')).toMatchObject({
      errorType: 'simple_function_checker:wrong_count',
      error: 'Wrong number of functions.',
    });
  });

  test('multiple: the count must match, and the first call is checked against the doc named by the answer', () => {
    const functions = [doc('a', { x: { type: 'integer' } }, ['x']), doc('b', { x: { type: 'integer' } }, ['x'])];
    const base = { kind: 'multiple' as const, functions, answer: '[{"b": {"x": [1]}}]' };
    expect(check({ ...base, output: '[b(x=1)]' })).toEqual({ valid: true });
    expect(check({ ...base, output: '[a(x=1)]' })).toMatchObject({
      errorType: 'simple_function_checker:wrong_func_name',
    });
    expect(check({ ...base, output: '[b(x=1), a(x=1)]' })).toMatchObject({
      errorType: 'multiple_function_checker:wrong_count',
    });
  });

  test('undecodable text or a result that is neither text nor a list is ast_decoder:decoder_failed; a list in the wrong shape is decoder_wrong_output_format', () => {
    expect(areaCheck('the area is 25')).toMatchObject({ valid: false, errorType: 'ast_decoder:decoder_failed' });
    expect(areaCheck(json('[{"calculate_triangle_area": {"base": 10}, "extra": {}}]'))).toMatchObject({
      errorType: 'ast_decoder:decoder_wrong_output_format',
    });
    expect(areaCheck(json('{"calculate_triangle_area": {"base": 10}}'))).toMatchObject({
      errorType: 'ast_decoder:decoder_failed',
    });
    expect(areaCheck(json('[{"calculate_triangle_area": 10}]'))).toMatchObject({
      errorType: 'ast_decoder:decoder_wrong_output_format',
    });
  });

  test("accepts BFCL's decoded form, FC result files' JSON-string arguments and OpenAI tool_calls", () => {
    expect(areaCheck(json('[{"calculate_triangle_area": {"base": 10, "height": 5}}]'))).toEqual({ valid: true });
    expect(areaCheck(json('[{"calculate_triangle_area": "{\\"base\\": 10, \\"height\\": 5}"}]'))).toEqual({
      valid: true,
    });
    expect(
      areaCheck(
        json(
          '[{"id": "c", "type": "function", "function": {"name": "calculate_triangle_area", "arguments": "{\\"base\\": 10, \\"height\\": 5}"}}]',
        ),
      ),
    ).toEqual({ valid: true });
  });
});

describe('C3 simple_function_checker', () => {
  test('C3.2 a different function name is wrong_func_name, with BFCL’s message', () => {
    expect(areaCheck('[triangle_area(base=10, height=5)]')).toEqual({
      valid: false,
      errorType: 'simple_function_checker:wrong_func_name',
      error: "Function name 'calculate_triangle_area' not found in model output.",
    });
  });

  test('C3.2 dotted names: math.hypot and math_hypot name the same tool (one rule, both sides)', () => {
    const hypot = doc('math.hypot', { x: { type: 'integer' }, y: { type: 'integer' } }, ['x', 'y']);
    const base = { functions: [hypot], answer: '[{"math.hypot": {"x": [4], "y": [5]}}]' };
    expect(check({ ...base, output: '[math.hypot(x=4, y=5)]' })).toEqual({ valid: true });
    expect(check({ ...base, output: '[math_hypot(x=4, y=5)]' })).toEqual({ valid: true });
    expect(check({ ...base, output: '[math.hypotenuse(x=4, y=5)]' })).toMatchObject({
      errorType: 'simple_function_checker:wrong_func_name',
    });
  });

  test('C3.3 every required parameter must be present', () => {
    expect(areaCheck('[calculate_triangle_area(base=10)]')).toEqual({
      valid: false,
      errorType: 'simple_function_checker:missing_required',
      error: "Missing required parameter: 'height'.",
    });
  });

  test('C3.4 a parameter must be in the doc and in the possible answer', () => {
    expect(areaCheck('[calculate_triangle_area(base=10, height=5, color="red")]')).toMatchObject({
      errorType: 'simple_function_checker:unexpected_param',
    });
    const withExtraDocParam = doc('f', { a: { type: 'integer' }, b: { type: 'integer' } }, ['a']);
    const base = { functions: [withExtraDocParam], answer: '[{"f": {"a": [1]}}]' };
    expect(check({ ...base, output: '[f(a=1)]' })).toEqual({ valid: true });
    expect(check({ ...base, output: '[f(a=1, b=2)]' })).toMatchObject({
      errorType: 'simple_function_checker:unexpected_param',
      error: "Unexpected parameter: 'b'.",
    });
  });

  test('C3.5 an int is accepted for a float parameter at top level and compares equal (5 == 5.0)', () => {
    const f = doc('f', { x: { type: 'float' } }, ['x']);
    expect(check({ functions: [f], answer: '[{"f": {"x": [5.0]}}]', output: '[f(x=5)]' })).toEqual({ valid: true });
    expect(check({ functions: [f], answer: '[{"f": {"x": [5.0]}}]', output: '[f(x=5.5)]' })).toMatchObject({
      errorType: 'value_error:others',
    });
  });

  test('C3.5 no int→float inside arrays: [1, 2] for an array of floats is type_error:nested', () => {
    const f = doc('f', { xs: { type: 'array', items: { type: 'float' } } }, ['xs']);
    const base = { functions: [f], answer: '[{"f": {"xs": [[1.0, 2.0]]}}]' };
    expect(check({ ...base, output: '[f(xs=[1.0, 2.0])]' })).toEqual({ valid: true });
    expect(check({ ...base, output: '[f(xs=[1, 2])]' })).toMatchObject({ errorType: 'type_error:nested' });
  });

  test('C3.5 an integer parameter rejects 5.0 and True; a boolean parameter rejects 1 (bool is not int)', () => {
    const f = doc('f', { n: { type: 'integer' }, flag: { type: 'boolean' } }, []);
    const base = { functions: [f], answer: '[{"f": {"n": [5, ""], "flag": [true, ""]}}]' };
    expect(check({ ...base, output: '[f(n=5, flag=True)]' })).toEqual({ valid: true });
    expect(check({ ...base, output: '[f(n=5.0)]' })).toMatchObject({
      errorType: 'type_error:simple',
      error: "Incorrect type for parameter 'n'. Expected type integer, got float. Parameter value: 5.0.",
    });
    expect(check({ ...base, output: '[f(n=True)]' })).toMatchObject({ errorType: 'type_error:simple' });
    expect(check({ ...base, output: '[f(flag=1)]' })).toMatchObject({ errorType: 'type_error:simple' });
  });

  test('C3.5 a tuple is converted for a tuple parameter only; an array parameter rejects it', () => {
    const f = doc(
      'f',
      { t: { type: 'tuple', items: { type: 'integer' } }, a: { type: 'array', items: { type: 'integer' } } },
      [],
    );
    const base = { functions: [f], answer: '[{"f": {"t": [[1, 2], ""], "a": [[1, 2], ""]}}]' };
    expect(check({ ...base, output: '[f(t=(1, 2))]' })).toEqual({ valid: true });
    expect(check({ ...base, output: '[f(a=(1, 2))]' })).toMatchObject({ errorType: 'type_error:simple' });
  });

  test("C3.5 'any' means str", () => {
    const f = doc('f', { v: { type: 'any' } }, ['v']);
    expect(check({ functions: [f], answer: '[{"f": {"v": ["x"]}}]', output: "[f(v='X')]" })).toEqual({ valid: true });
    expect(check({ functions: [f], answer: '[{"f": {"v": ["x"]}}]', output: '[f(v=1)]' })).toMatchObject({
      errorType: 'type_error:simple',
    });
  });

  test('C3.6 a variable (acceptable value of another type than the doc’s) is matched by that type and compared with ==', () => {
    const f = doc('f', { x: { type: 'array', items: { type: 'float' } } }, ['x']);
    const base = { functions: [f], answer: `[{"f": {"x": ["data['sales']"]}}]` };
    expect(check({ ...base, output: `[f(x=data['sales'])]` })).toEqual({ valid: true });
    expect(check({ ...base, output: `[f(x="data['Sales']")]` })).toMatchObject({ errorType: 'value_error:others' });
    expect(check({ ...base, output: '[f(x=5)]' })).toMatchObject({ errorType: 'type_error:simple' });
  });

  test('C3.6 a non-list alternative passes the nested check trivially (the "" marker)', () => {
    const f = doc('f', { xs: { type: 'array', items: { type: 'integer' } } }, []);
    // The nested type check passes because of the "" alternative; the value check then fails.
    expect(check({ functions: [f], answer: '[{"f": {"xs": [[1], ""]}}]', output: "[f(xs=['a'])]" })).toMatchObject({
      errorType: 'value_error:list/tuple',
    });
  });

  test('C3.7/C4 strings compare after standardize_string: case, spaces and ,./-_*^ ignored, quotes unified', () => {
    expect(standardizeString("April 1, 2024 'x'")).toBe('april12024"x"');
    const f = doc('f', { d: { type: 'string' } }, ['d']);
    const base = { functions: [f], answer: '[{"f": {"d": ["April 1, 2024"]}}]' };
    expect(check({ ...base, output: "[f(d='april12024')]" })).toEqual({ valid: true });
    expect(check({ ...base, output: "[f(d='APRIL 1 2024')]" })).toEqual({ valid: true });
    expect(check({ ...base, output: "[f(d='April 2, 2024')]" })).toEqual({
      valid: false,
      errorType: 'value_error:string',
      error: "Invalid value for parameter 'd': 'April 2, 2024'. Expected one of ['April 1, 2024']. Case insensitive.",
    });
  });

  test('C3.7/C4 lists compare whole and in order, string elements standardized', () => {
    const f = doc('f', { xs: { type: 'array', items: { type: 'string' } } }, ['xs']);
    const base = { functions: [f], answer: '[{"f": {"xs": [["New York", "Paris"]]}}]' };
    expect(check({ ...base, output: "[f(xs=['new york', 'PARIS'])]" })).toEqual({ valid: true });
    expect(check({ ...base, output: "[f(xs=['Paris', 'New York'])]" })).toMatchObject({
      errorType: 'value_error:list/tuple',
    });
    expect(check({ ...base, output: "[f(xs=['New York'])]" })).toMatchObject({ errorType: 'value_error:list/tuple' });
  });

  test('C3.7/C4 dicts: key order free, optional keys may be missing, extra or missing keys are dict_key, wrong values dict_value', () => {
    const f = doc('f', { d: { type: 'dict' } }, ['d']);
    const base = { functions: [f], answer: '[{"f": {"d": [{"min": [300], "max": [400], "note": ["x", ""]}]}}]' };
    expect(check({ ...base, output: '[f(d={"max": 400, "min": 300})]' })).toEqual({ valid: true });
    expect(check({ ...base, output: '[f(d={"min": 300, "max": 400, "other": 1})]' })).toMatchObject({
      errorType: 'value_error:dict_key',
      error: "Unexpected dict key parameter: 'other'.",
    });
    expect(check({ ...base, output: '[f(d={"min": 300})]' })).toMatchObject({
      errorType: 'value_error:dict_key',
      error: "Missing dict key parameter: 'max'.",
    });
    expect(check({ ...base, output: '[f(d={"min": 300, "max": 401})]' })).toMatchObject({
      errorType: 'value_error:dict_value',
    });
  });

  test('C4 a missing dict key overrides an earlier value failure in the same alternative, as in BFCL', () => {
    const f = doc('f', { d: { type: 'dict' } }, ['d']);
    expect(
      check({ functions: [f], answer: '[{"f": {"d": [{"a": [1], "b": [2]}]}}]', output: '[f(d={"a": 9})]' }),
    ).toMatchObject({ errorType: 'value_error:dict_key' });
  });

  test('C4 the first dict alternative that fully passes wins', () => {
    const f = doc('f', { d: { type: 'dict' } }, ['d']);
    const base = { functions: [f], answer: '[{"f": {"d": [{"a": [1]}, {"a": [2]}]}}]' };
    expect(check({ ...base, output: '[f(d={"a": 2})]' })).toEqual({ valid: true });
    expect(check({ ...base, output: '[f(d={"a": 3})]' })).toMatchObject({ errorType: 'value_error:dict_value' });
  });

  test('C4 a dict nested inside a dict parameter is compared with raw == (no string standardization)', () => {
    const f = doc('f', { d: { type: 'dict' } }, ['d']);
    const base = { functions: [f], answer: '[{"f": {"d": [{"loc": [{"city": "Paris", "zip": 75001}]}]}}]' };
    expect(check({ ...base, output: '[f(d={"loc": {"zip": 75001.0, "city": "Paris"}})]' })).toEqual({ valid: true });
    expect(check({ ...base, output: '[f(d={"loc": {"zip": 75001, "city": "paris"}})]' })).toMatchObject({
      errorType: 'value_error:dict_value',
    });
  });

  test('C4 lists of dicts: same length as an alternative, dicts checked position by position', () => {
    const f = doc('f', { rows: { type: 'array', items: { type: 'dict' } } }, ['rows']);
    const base = { functions: [f], answer: '[{"f": {"rows": [[{"k": ["a"]}, {"k": ["b"]}]]}}]' };
    expect(check({ ...base, output: '[f(rows=[{"k": "A"}, {"k": "b"}])]' })).toEqual({ valid: true });
    expect(check({ ...base, output: '[f(rows=[{"k": "b"}, {"k": "a"}])]' })).toMatchObject({
      errorType: 'value_error:dict_value',
    });
    expect(check({ ...base, output: '[f(rows=[{"k": "a"}])]' })).toMatchObject({
      errorType: 'value_error:list_dict_count',
    });
  });

  test('C3.7 numbers compare with == (1 == 1.0) and fail as value_error:others', () => {
    const f = doc('f', { x: { type: 'float' }, n: { type: 'integer' } }, []);
    const base = { functions: [f], answer: '[{"f": {"x": [0], "n": [3, 4]}}]' };
    expect(check({ ...base, output: '[f(x=0.0, n=4)]' })).toEqual({ valid: true });
    expect(check({ ...base, output: '[f(x=0.0, n=5)]' })).toEqual({
      valid: false,
      errorType: 'value_error:others',
      error: "Invalid value for parameter 'n': 5. Expected one of [3, 4].",
    });
  });

  test('C3.8 an expected parameter may be left out only when "" is among its acceptable values', () => {
    const f = doc('f', { a: { type: 'integer' }, b: { type: 'integer' } }, []);
    const base = { functions: [f], answer: '[{"f": {"a": [1], "b": [2, ""]}}]' };
    expect(check({ ...base, output: '[f(a=1)]' })).toEqual({ valid: true });
    expect(check({ ...base, output: '[f(b=2)]' })).toEqual({
      valid: false,
      errorType: 'simple_function_checker:missing_optional',
      error: "Optional parameter 'a' not provided and not marked as optional.",
    });
  });

  test('C4 the "" marker also matches a model "" (or " ") for a string and [] for a list', () => {
    const f = doc('f', { s: { type: 'string' }, xs: { type: 'array', items: { type: 'string' } } }, []);
    const base = { functions: [f], answer: '[{"f": {"s": ["x", ""], "xs": [["a"], ""]}}]' };
    expect(check({ ...base, output: "[f(s='', xs=[])]" })).toEqual({ valid: true });
    expect(check({ ...base, output: "[f(s=' ')]" })).toEqual({ valid: true });
    expect(check({ ...base, output: "[f(xs=['b'])]" })).toMatchObject({ errorType: 'value_error:list/tuple' });
  });

  test('C4 an empty list for a list with no "" alternative fails', () => {
    const f = doc('f', { xs: { type: 'array', items: { type: 'integer' } } }, ['xs']);
    expect(check({ functions: [f], answer: '[{"f": {"xs": [[1]]}}]', output: '[f(xs=[])]' })).toMatchObject({
      errorType: 'value_error:list/tuple',
    });
  });
});

describe('C5 parallel_function_checker_no_order', () => {
  const play = doc('spotify.play', { artist: { type: 'string' }, duration: { type: 'integer' } }, [
    'artist',
    'duration',
  ]);
  const base = {
    kind: 'parallel' as const,
    functions: [play],
    answer:
      '[{"spotify.play": {"artist": ["Taylor Swift"], "duration": [20]}}, {"spotify.play": {"artist": ["Maroon 5"], "duration": [15]}}]',
  };

  test('matches calls in any order', () => {
    expect(
      check({
        ...base,
        output: "[spotify.play(artist='Maroon 5', duration=15), spotify.play(artist='Taylor Swift', duration=20)]",
      }),
    ).toEqual({ valid: true });
  });

  test('a dropped call is wrong_count; a wrong call is cannot_find_match with the considered indices', () => {
    expect(check({ ...base, output: "[spotify.play(artist='Taylor Swift', duration=20)]" })).toMatchObject({
      errorType: 'parallel_function_checker_no_order:wrong_count',
    });
    const verdict = check({
      ...base,
      output: "[spotify.play(artist='Taylor Swift', duration=20), spotify.play(artist='Maroon 5', duration=16)]",
    });
    expect(verdict).toMatchObject({
      errorType: 'parallel_function_checker_no_order:cannot_find_match',
      error: 'Could not find a matching function among index [1] of model output for index 1 of possible answers.',
    });
    expect(verdict.subErrors).toEqual([
      { modelIndex: 1, errorType: 'value_error:others', error: expect.stringContaining("'duration': 16") },
    ]);
  });

  test('is greedy like BFCL: an expected call takes the first passing model call even when that blocks a full match', () => {
    const f = doc('f', { x: { type: 'integer' } }, ['x']);
    const greedy = { kind: 'parallel' as const, functions: [f], answer: '[{"f": {"x": [1, 2]}}, {"f": {"x": [1]}}]' };
    expect(check({ ...greedy, output: '[f(x=2), f(x=1)]' })).toEqual({ valid: true });
    // A perfect matching exists (x=2 → first, x=1 → second), but the first expected call consumes x=1 first.
    expect(check({ ...greedy, output: '[f(x=1), f(x=2)]' })).toMatchObject({
      errorType: 'parallel_function_checker_no_order:cannot_find_match',
    });
  });
});

describe('C6 relevance and irrelevance', () => {
  const fn = doc('get_weather', { city: { type: 'string' } }, ['city']);

  test('irrelevance passes when nothing decodes: prose, a decode failure, [] or an empty string', () => {
    for (const output of ['I cannot help with that.', '', '[]', 'None', '[get_weather(city='])
      expect(check({ kind: 'irrelevance', functions: [fn], output })).toEqual({ valid: true });
    expect(check({ kind: 'irrelevance', functions: [fn], output: json('[{}]') })).toEqual({ valid: true });
  });

  test('irrelevance fails with irrelevance_error:decoder_success when a call decodes', () => {
    expect(check({ kind: 'irrelevance', functions: [fn], output: '[get_weather(city="Paris")]' })).toEqual({
      valid: false,
      errorType: 'irrelevance_error:decoder_success',
      error: 'Valid syntax. Successfully decode AST when it should not.',
    });
  });

  test('relevance passes on any decoded call, arguments unchecked, and fails on prose', () => {
    expect(check({ kind: 'relevance', functions: [fn], output: '[get_weather(town=1)]' })).toEqual({ valid: true });
    expect(check({ kind: 'relevance', functions: [fn], output: 'no' })).toMatchObject({
      valid: false,
      errorType: 'relevance_error:decoder_failed',
    });
    expect(check({ kind: 'relevance', functions: [fn], output: '[]' })).toMatchObject({
      valid: false,
      errorType: 'relevance_error:decoder_failed',
    });
  });
});

describe('decoders', () => {
  const fn = doc('get_weather', { city: { type: 'string' } }, ['city']);
  const base = { functions: [fn], answer: '[{"get_weather": {"city": ["Paris"]}}]' };

  test("hermes skips malformed blocks like BFCL's Qwen handler; auto picks it when <tool_call> appears", () => {
    const text =
      '<think>hm</think><tool_call>\n{oops}\n</tool_call>\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "paris"}}\n</tool_call>';
    expect(check({ ...base, output: text.replace('<think>hm</think>', '') })).toMatchObject({
      valid: false,
      errorType: 'ast_decoder:decoder_failed',
    });
    const compiled = compileBfclQuestion({ kind: 'simple', functions: [fn], possibleAnswer: answer(base.answer) });
    if (!compiled.ok) throw new Error(compiled.error);
    expect(scoreBfcl(compiled.question, decodeBfclText(text, 'auto'))).toEqual({ valid: true });
    expect(
      scoreBfcl(compiled.question, decodeBfclText('[{"name": "get_weather", "arguments": {"city": "Paris"}}]', 'auto')),
    ).toEqual({ valid: true });
  });
});
