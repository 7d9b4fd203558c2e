/**
 * A port of BFCL's AST checker (`bfcl_eval/eval_checker/ast_eval/ast_checker.py`, Python language) that gives the same
 * verdict and the same `error_type` for every single-turn category. Each question is compiled once (function docs,
 * type mappings, standardized acceptable values as lookup sets) so a check is a few map and set lookups. The rules and
 * the few documented deviations are in ./README.md.
 */
import { isJsonObject, JsonFloat, type JsonValue } from '../json.js';
import { pyEqualityKey, pyRepr, PyTuple, pyTypeName, type PyDict, type PyTypeName, type PyValue } from '../python.js';
import type { ParsedCall } from '../parse/types.js';
import {
  wireToolName,
  type FunctionDefinition,
  type ParameterSchema,
  type ParamType,
} from '../schemas/function-def.js';
import type { AcceptableCall } from '../schemas/tool-call.js';
import type { BfclCheckKind } from './categories.js';

/** The `error_type` strings BFCL reports, verbatim. */
export const BFCL_ERROR = {
  decoderFailed: 'ast_decoder:decoder_failed',
  wrongOutputFormat: 'ast_decoder:decoder_wrong_output_format',
  simpleWrongCount: 'simple_function_checker:wrong_count',
  multipleWrongCount: 'multiple_function_checker:wrong_count',
  parallelWrongCount: 'parallel_function_checker_no_order:wrong_count',
  parallelNoMatch: 'parallel_function_checker_no_order:cannot_find_match',
  wrongFuncName: 'simple_function_checker:wrong_func_name',
  missingRequired: 'simple_function_checker:missing_required',
  unexpectedParam: 'simple_function_checker:unexpected_param',
  missingOptional: 'simple_function_checker:missing_optional',
  typeSimple: 'type_error:simple',
  typeNested: 'type_error:nested',
  valueString: 'value_error:string',
  valueList: 'value_error:list/tuple',
  valueDictKey: 'value_error:dict_key',
  valueDictValue: 'value_error:dict_value',
  valueListDictCount: 'value_error:list_dict_count',
  valueOthers: 'value_error:others',
  dictUnclear: 'dict_checker:unclear',
  listDictUnclear: 'list_dict_checker:unclear',
  irrelevanceDecoderSuccess: 'irrelevance_error:decoder_success',
  relevanceDecoderFailed: 'relevance_error:decoder_failed',
} as const;
export type BfclErrorType = (typeof BFCL_ERROR)[keyof typeof BFCL_ERROR];

/** One model call that failed against one expected call, as BFCL lists them under `cannot_find_match`. */
export interface SubError {
  modelIndex: number;
  errorType: string;
  error: string;
}

/** A checker's verdict: valid, or the first rule that failed (BFCL returns on the first failure). */
export interface Verdict {
  valid: boolean;
  errorType?: string;
  error?: string;
  subErrors?: SubError[];
}

const VALID: Verdict = Object.freeze({ valid: true }) as Verdict;

// PYTHON_TYPE_MAPPING, plus JSON Schema's `object`/`number`/`null` (see README: extensions).
const PYTHON_TYPE: Record<ParamType, PyTypeName> = {
  string: 'str',
  integer: 'int',
  float: 'float',
  number: 'float',
  boolean: 'bool',
  array: 'list',
  tuple: 'list',
  dict: 'dict',
  object: 'dict',
  any: 'str',
  null: 'NoneType',
};

interface CompiledParam {
  typeDescription: string;
  /** null: no single known type (missing, union): the type check is skipped (an extension; BFCL data always has one). */
  expected: PyTypeName | null;
  nested: PyTypeName | null;
  nestedDescription: string;
  convertIntToFloat: boolean;
  convertNestedIntToFloat: boolean;
  isTuple: boolean;
}

/** A function doc prepared for checking. */
export interface CompiledFunction {
  name: string;
  wireName: string;
  required: string[];
  params: Map<string, CompiledParam>;
}

interface CompiledDictAlternative {
  keys: Map<string, { keys: Set<string>; optional: boolean; values: PyValue[] }>;
}

interface CompiledAlternatives {
  raw: JsonValue[];
  /** `repr` of the acceptable values, made when a message first needs it: every wrong value's message has it. */
  rawRepr?: string;
  optional: boolean;
  possibleAnswerType: PyTypeName | null;
  /** Per alternative: its Python type, and for lists the type of its first non-"" element (for the nested check). */
  items: { isList: boolean; elements: JsonValue[]; elementType: PyTypeName | null }[];
  valueKeys: Set<string>;
  /**
   * The acceptable numbers (`True`/`False` as 1/0, floats by value): a number in it is `in` the alternatives, as its
   * `pyEqualityKey` would find, without making the key. A number not in it still takes the key path.
   */
  numbers: Set<number>;
  /** The acceptable strings as written: a string among them is accepted without being standardized. */
  strings: Set<string>;
  standardizedStrings: Set<string>;
  standardizedLists: Set<string>;
  dictAlternatives: (CompiledDictAlternative | null)[];
  listDictAlternatives: (CompiledDictAlternative[] | null)[];
}

/** One expected call (one possible-answer entry) prepared for checking. */
export interface CompiledExpectedCall {
  name: string;
  fn: CompiledFunction;
  args: Map<string, CompiledAlternatives>;
  /** The answer's parameters that are not optional, in its order: a call must give each (`args`' last check). */
  notOptional: string[];
}

/** A question prepared for checking: which checker, and the expected calls with their function docs. */
export interface CompiledBfclQuestion {
  kind: BfclCheckKind;
  expected: CompiledExpectedCall[];
}

export type CompileResult = { ok: true; question: CompiledBfclQuestion } | { ok: false; error: string };

function pyTypeOfJson(value: JsonValue): PyTypeName {
  return pyTypeName(value);
}

function firstNonOptionalType(values: readonly JsonValue[]): PyTypeName | null {
  for (const value of values) if (value !== '') return pyTypeOfJson(value);
  return null;
}

function singleType(schema: ParameterSchema | undefined): ParamType | undefined {
  const type = schema?.type;
  return typeof type === 'string' ? type : undefined;
}

function compileFunction(doc: FunctionDefinition): CompiledFunction {
  const params = new Map<string, CompiledParam>();
  for (const [name, schema] of Object.entries(doc.parameters?.properties ?? {})) {
    const type = singleType(schema);
    const expected = type === undefined ? null : PYTHON_TYPE[type];
    const nestedType = type === 'array' || type === 'tuple' ? singleType(schema.items) : undefined;
    params.set(name, {
      typeDescription: type ?? String(schema.type ?? 'unknown'),
      expected,
      nested: nestedType === undefined ? null : PYTHON_TYPE[nestedType],
      nestedDescription: nestedType === undefined ? '' : `<class '${PYTHON_TYPE[nestedType]}'>`,
      convertIntToFloat: type === 'float' || type === 'number',
      convertNestedIntToFloat: nestedType === 'number',
      isTuple: type === 'tuple',
    });
  }
  return { name: doc.name, wireName: wireToolName(doc.name), required: doc.parameters?.required ?? [], params };
}

/**
 * Python's `standardize_string`: drop spaces and `,./-_*^`, lowercase, and turn `'` into `"`, so that "April 1, 2024"
 * and "april12024" compare equal.
 */
export function standardizeString(s: string): string {
  return s.replace(STANDARDIZE_DROP, '').toLowerCase().replaceAll("'", '"');
}
const STANDARDIZE_DROP = /[ ,./\-_*^]/g;

/** Python's `x[0..len(x))` view of a value for `range(len(x))` loops; undefined where Python would raise. */
function indexable(value: PyValue): PyValue[] | undefined {
  if (Array.isArray(value)) return value;
  if (value instanceof PyTuple) return value.items;
  if (typeof value === 'string') return Array.from(value);
  if (isJsonObject(value) && Object.keys(value).length === 0) return [];
  return undefined;
}

function standardizedKey(value: PyValue): string {
  return typeof value === 'string' ? JSON.stringify(standardizeString(value)) : pyEqualityKey(value);
}

function standardizedListKey(items: readonly PyValue[]): string {
  return `[${items.map(standardizedKey).join(',')}]`;
}

function compileDictAlternative(alternative: JsonValue): CompiledDictAlternative | null {
  if (!isJsonObject(alternative)) return null;
  const keys = new Map<string, { keys: Set<string>; optional: boolean; values: PyValue[] }>();
  for (const [key, acceptable] of Object.entries(alternative)) {
    const values = indexable(acceptable) ?? [];
    keys.set(key, { keys: new Set(values.map(standardizedKey)), optional: values.some((v) => v === ''), values });
  }
  return { keys };
}

function compileAlternatives(raw: JsonValue[], param: CompiledParam | undefined): CompiledAlternatives {
  const items = raw.map((alternative) => {
    const isList = Array.isArray(alternative);
    const elements = isList ? alternative : [];
    return { isList, elements, elementType: isList ? firstNonOptionalType(elements) : null };
  });
  const standardizedLists = new Set<string>();
  for (const alternative of raw) {
    const view = indexable(alternative);
    if (view) standardizedLists.add(standardizedListKey(view));
  }
  const wantsDicts = param?.expected === 'dict' || (param?.expected === null && raw.some(isJsonObject));
  const wantsListDicts = param?.expected === 'list' && param.nested === 'dict';
  return {
    raw,
    optional: raw.some((v) => v === ''),
    possibleAnswerType: firstNonOptionalType(raw),
    items,
    valueKeys: new Set(raw.map(pyEqualityKey)),
    numbers: new Set(raw.flatMap(acceptableNumber)),
    strings: new Set(raw.filter((v): v is string => typeof v === 'string')),
    standardizedStrings: new Set(raw.filter((v): v is string => typeof v === 'string').map(standardizeString)),
    standardizedLists,
    dictAlternatives: wantsDicts ? raw.map((alt) => (alt === '' ? null : compileDictAlternative(alt))) : [],
    listDictAlternatives: wantsListDicts
      ? raw.map((alt) => (Array.isArray(alt) ? alt.map((d) => compileDictAlternative(d) ?? { keys: new Map() }) : null))
      : [],
  };
}

/** The number an acceptable value equals in Python (`True == 1`), as a list of none or one. */
function acceptableNumber(value: JsonValue): number[] {
  if (typeof value === 'number') return [value];
  if (typeof value === 'boolean') return [value ? 1 : 0];
  if (value instanceof JsonFloat) return [value.value];
  return [];
}

function findDescription(functions: readonly FunctionDefinition[], name: string): FunctionDefinition | undefined {
  // Exact name first (BFCL's find_description); then the wire form, so targets written as math_hypot find math.hypot.
  return functions.find((f) => f.name === name) ?? functions.find((f) => wireToolName(f.name) === wireToolName(name));
}

/**
 * Prepares a question for {@link checkBfcl}. For `simple` BFCL checks the first function doc against the first expected
 * call; for `multiple` and `parallel` it looks each expected call's doc up by name. Fails (with a reason) when an
 * expected call names a function the docs lack, where BFCL itself would crash.
 */
export function compileBfclQuestion(input: {
  kind: BfclCheckKind;
  functions: readonly FunctionDefinition[];
  possibleAnswer?: readonly AcceptableCall[];
}): CompileResult {
  const { kind, functions } = input;
  if (kind === 'irrelevance' || kind === 'relevance') return { ok: true, question: { kind, expected: [] } };
  const answer = input.possibleAnswer ?? [];
  if (answer.length === 0)
    return { ok: false, error: `a ${kind} question needs a possible answer with at least one call` };
  const compiled = new Map<FunctionDefinition, CompiledFunction>();
  const compileOnce = (doc: FunctionDefinition): CompiledFunction => {
    let fn = compiled.get(doc);
    if (!fn) compiled.set(doc, (fn = compileFunction(doc)));
    return fn;
  };
  const expected: CompiledExpectedCall[] = [];
  for (const [index, call] of answer.entries()) {
    const doc = kind === 'simple' ? functions[0] : findDescription(functions, call.name);
    if (!doc)
      return {
        ok: false,
        error: `expected call ${index} (${call.name}) names no function in the question's function docs`,
      };
    const fn = compileOnce(doc);
    const args = new Map<string, CompiledAlternatives>();
    for (const [param, alternatives] of Object.entries(call.arguments))
      args.set(param, compileAlternatives(alternatives, fn.params.get(param)));
    const notOptional = [...args].flatMap(([param, alternatives]) => (alternatives.optional ? [] : [param]));
    expected.push({ name: call.name, fn, args, notOptional });
  }
  return { ok: true, question: { kind, expected } };
}

/**
 * Checks decoded model calls against a compiled question with BFCL's semantics (dispatch, counts, greedy parallel
 * matching, then `simple_function_checker` per call). Decoding and the irrelevance/relevance rules live in
 * ./bfcl-decode.ts, which calls this for the AST categories.
 */
export function checkBfcl(question: CompiledBfclQuestion, calls: readonly ParsedCall[]): Verdict {
  const expected = question.expected;
  switch (question.kind) {
    case 'irrelevance':
      return calls.length === 0
        ? VALID
        : {
            valid: false,
            errorType: BFCL_ERROR.irrelevanceDecoderSuccess,
            error: 'Valid syntax. Successfully decode AST when it should not.',
          };
    case 'relevance':
      return calls.length > 0
        ? VALID
        : {
            valid: false,
            errorType: BFCL_ERROR.relevanceDecoderFailed,
            error: 'Invalid syntax. Failed to decode AST when it should have. None',
          };
    case 'simple':
      if (calls.length !== 1)
        return { valid: false, errorType: BFCL_ERROR.simpleWrongCount, error: 'Wrong number of functions.' };
      return simpleFunctionCheck(expected[0] as CompiledExpectedCall, calls[0] as ParsedCall);
    case 'multiple':
      if (calls.length !== expected.length)
        return { valid: false, errorType: BFCL_ERROR.multipleWrongCount, error: 'Wrong number of functions.' };
      return simpleFunctionCheck(expected[0] as CompiledExpectedCall, calls[0] as ParsedCall);
    case 'parallel':
      return parallelNoOrder(expected, calls);
  }
}

function parallelNoOrder(expected: readonly CompiledExpectedCall[], calls: readonly ParsedCall[]): Verdict {
  if (calls.length !== expected.length)
    return { valid: false, errorType: BFCL_ERROR.parallelWrongCount, error: 'Wrong number of functions.' };
  const matched = new Array<boolean>(calls.length).fill(false);
  // Greedy, as BFCL: each expected call in order takes the first unmatched model call that passes. Not an optimal
  // assignment, on purpose: an optimal one would accept outputs BFCL rejects.
  for (const [i, want] of expected.entries()) {
    const subErrors: SubError[] = [];
    let found = false;
    for (const [index, call] of calls.entries()) {
      if (matched[index]) continue;
      const verdict = simpleFunctionCheck(want, call);
      if (verdict.valid) {
        matched[index] = true;
        found = true;
        break;
      }
      subErrors.push({ modelIndex: index, errorType: verdict.errorType ?? '', error: verdict.error ?? '' });
    }
    if (!found) {
      const considered = calls.map((_, index) => index).filter((index) => !matched[index]);
      return {
        valid: false,
        errorType: BFCL_ERROR.parallelNoMatch,
        error: `Could not find a matching function among index [${considered.join(', ')}] of model output for index ${i} of possible answers.`,
        subErrors,
      };
    }
  }
  return VALID;
}

function rawRepr(alternatives: CompiledAlternatives): string {
  return (alternatives.rawRepr ??= pyRepr(alternatives.raw));
}

function fail(errorType: string, error: string): Verdict {
  return { valid: false, errorType, error };
}

/** `simple_function_checker`: name, required, per-parameter type and value, then missing optional markers. */
function simpleFunctionCheck(want: CompiledExpectedCall, call: ParsedCall): Verdict {
  const fn = want.fn;
  // The same name is the common case: no new string.
  if (call.name !== fn.name && wireToolName(call.name) !== fn.wireName)
    return fail(BFCL_ERROR.wrongFuncName, `Function name ${pyRepr(fn.name)} not found in model output.`);
  const modelParams = call.arguments;
  for (const param of fn.required) {
    if (!Object.hasOwn(modelParams, param))
      return fail(BFCL_ERROR.missingRequired, `Missing required parameter: ${pyRepr(param)}.`);
  }
  for (const param of Object.keys(modelParams)) {
    const details = fn.params.get(param);
    const alternatives = want.args.get(param);
    if (!details || !alternatives) return fail(BFCL_ERROR.unexpectedParam, `Unexpected parameter: ${pyRepr(param)}.`);
    const verdict = checkParam(param, modelParams[param] as PyValue, details, alternatives);
    if (!verdict.valid) return verdict;
  }
  for (const param of want.notOptional) {
    if (!Object.hasOwn(modelParams, param)) {
      return fail(
        BFCL_ERROR.missingOptional,
        `Optional parameter ${pyRepr(param)} not provided and not marked as optional.`,
      );
    }
  }
  return VALID;
}

function checkParam(param: string, raw: PyValue, details: CompiledParam, alternatives: CompiledAlternatives): Verdict {
  let value = raw;
  if (details.isTuple && value instanceof PyTuple) value = value.items;
  if (details.convertIntToFloat && typeof value === 'number' && Number.isInteger(value)) value = new JsonFloat(value);

  let isVariable = false;
  if (details.expected !== null) {
    const typeVerdict = typeCheck(param, value, details, alternatives);
    if (typeVerdict.verdict) return typeVerdict.verdict;
    isVariable = typeVerdict.isVariable;
  }

  if (!isVariable) {
    const expected =
      details.expected ??
      (typeof value === 'string' ? 'str' : Array.isArray(value) ? 'list' : isJsonObject(value) ? 'dict' : null);
    if (expected === 'dict') return dictCheck(value, alternatives.dictAlternatives);
    if (expected === 'list' && details.nested === 'dict') return listDictCheck(value as PyValue[], alternatives);
    if (expected === 'str') return stringCheck(param, value as string, alternatives);
    if (expected === 'list') return listCheck(param, value as PyValue[], alternatives);
  }
  if (typeof value === 'number' && alternatives.numbers.has(value)) return VALID;
  if (!alternatives.valueKeys.has(pyEqualityKey(value))) {
    return fail(
      BFCL_ERROR.valueOthers,
      `Invalid value for parameter ${pyRepr(param)}: ${pyRepr(value)}. Expected one of ${rawRepr(alternatives)}.`,
    );
  }
  return VALID;
}

/** `type_checker`, one nested level, exact Python types (`bool` is not `int`; no int→float inside lists). */
function typeCheck(
  param: string,
  value: PyValue,
  details: CompiledParam,
  alternatives: CompiledAlternatives,
): { verdict?: Verdict; isVariable: boolean } {
  const expected = details.expected as PyTypeName;
  const answerType = alternatives.possibleAnswerType;
  const isVariable = answerType !== null && answerType !== expected;
  const valueType = pyTypeName(value);
  let nestedFailure: Verdict | undefined;
  if (valueType === expected) {
    if (details.nested === null) return { isVariable };
    const items = value as PyValue[];
    for (const alternative of alternatives.items) {
      // A non-list alternative (the "" marker, a variable name) leaves the flag set: it passes trivially, as in BFCL.
      if (!alternative.isList || items.every((item) => nestedItemOk(item, details, alternative.elementType)))
        return { isVariable };
    }
    nestedFailure = fail(
      BFCL_ERROR.typeNested,
      `Nested type checking failed for parameter ${pyRepr(param)}. Expected outer type ${details.typeDescription} with inner type ${details.nestedDescription}. Parameter value: ${pyRepr(value)}.`,
    );
  }
  if (answerType !== null && valueType === answerType)
    return nestedFailure ? { verdict: nestedFailure, isVariable: true } : { isVariable: true };
  return {
    verdict: fail(
      BFCL_ERROR.typeSimple,
      `Incorrect type for parameter ${pyRepr(param)}. Expected type ${details.typeDescription}, got ${valueType}. Parameter value: ${pyRepr(value)}.`,
    ),
    isVariable,
  };
}

function nestedItemOk(item: PyValue, details: CompiledParam, elementType: PyTypeName | null): boolean {
  const itemType =
    details.convertNestedIntToFloat && typeof item === 'number' && Number.isInteger(item) ? 'float' : pyTypeName(item);
  return itemType === details.nested || (elementType !== null && itemType === elementType);
}

function stringCheck(param: string, value: string, alternatives: CompiledAlternatives): Verdict {
  if (alternatives.strings.has(value) || alternatives.standardizedStrings.has(standardizeString(value))) return VALID;
  return fail(
    BFCL_ERROR.valueString,
    `Invalid value for parameter ${pyRepr(param)}: ${pyRepr(value)}. Expected one of ${rawRepr(alternatives)}. Case insensitive.`,
  );
}

function listCheck(param: string, value: PyValue[], alternatives: CompiledAlternatives): Verdict {
  if (alternatives.standardizedLists.has(standardizedListKey(value))) return VALID;
  return fail(
    BFCL_ERROR.valueList,
    `Invalid value for parameter ${pyRepr(param)}: ${pyRepr(value)}. Expected one of ${rawRepr(alternatives)}.`,
  );
}

/** `dict_checker`: the first alternative that fully passes wins; otherwise the last alternative's failure is reported. */
function dictCheck(value: PyValue, alternatives: readonly (CompiledDictAlternative | null)[]): Verdict {
  let result: Verdict = fail(BFCL_ERROR.dictUnclear, '');
  if (!isJsonObject(value)) {
    // BFCL raises here (a list element that is not a dict reached dict_checker); reported as a nested type error.
    return fail(BFCL_ERROR.typeNested, `Expected a dict, got ${pyTypeName(value)}. Parameter value: ${pyRepr(value)}.`);
  }
  const model = value as PyDict;
  for (const alternative of alternatives) {
    if (alternative === null) continue;
    let error: Verdict | undefined;
    for (const [key, item] of Object.entries(model)) {
      const accepted = alternative.keys.get(key);
      if (!accepted) {
        error = fail(BFCL_ERROR.valueDictKey, `Unexpected dict key parameter: '${key}'.`);
        break;
      }
      if (!accepted.keys.has(standardizedKey(item))) {
        error = fail(
          BFCL_ERROR.valueDictValue,
          `Invalid value for parameter ${pyRepr(key)}: ${pyRepr(item)}. Expected one of ${pyRepr(accepted.values.map((v) => (typeof v === 'string' ? standardizeString(v) : v)))}.`,
        );
        break;
      }
    }
    // BFCL runs this loop even after a value failure, so a missing key overrides the error type.
    for (const [key, accepted] of alternative.keys) {
      if (!Object.hasOwn(model, key) && !accepted.optional) {
        error = fail(BFCL_ERROR.valueDictKey, `Missing dict key parameter: '${key}'.`);
        break;
      }
    }
    if (!error) return VALID;
    result = error;
  }
  return result;
}

/** `list_dict_checker`: same length as an alternative, and each dict passes `dict_checker` position by position. */
function listDictCheck(value: PyValue[], alternatives: CompiledAlternatives): Verdict {
  let result: Verdict = fail(BFCL_ERROR.listDictUnclear, '');
  alternatives.raw.forEach((alternative, index) => {
    if (result.valid) return;
    const compiled = alternatives.listDictAlternatives[index];
    const length = alternative === '' ? 0 : (indexable(alternative)?.length ?? -1);
    if (value.length !== length) {
      result = fail(BFCL_ERROR.valueListDictCount, 'Wrong number of dictionaries in the list.');
      return;
    }
    let ok = true;
    for (let i = 0; i < value.length; i++) {
      result = dictCheck(value[i] as PyValue, [compiled?.[i] ?? null]);
      if (!result.valid) {
        ok = false;
        break;
      }
    }
    if (ok) result = VALID;
  });
  return result;
}
