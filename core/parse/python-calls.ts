/**
 * BFCL's decoder for prompt-style output, `[f(a=1, b='x'), g()]`: `default_decode_ast_prompting` + `ast_parse` +
 * `resolve_ast_by_type` from `bfcl_eval/model_handler/utils.py`, quirks included, so that what BFCL can decode we
 * decode to the same values and what it rejects we reject.
 */
import { isJsonObject, JsonFloat, positionAt, setOwn, type JsonObject, type JsonValue } from '../json.js';
import { PyOpaque, pyStrip, PyTuple, pyTypeName, type PyDict, type PyValue } from '../python.js';
import {
  decodeEscape,
  ELLIPSIS,
  HARD_KEYWORDS,
  parsePythonExpression,
  PySyntaxError,
  unparsePython,
  type BinaryOperator,
  type PyNode,
} from './python-ast.js';
import type { ParsedCall, ParseResult } from './types.js';

/** Raised while resolving a parsed node; becomes an `unsupported_value` parse error (BFCL: decoder_failed). */
class ResolveError {
  constructor(readonly message: string) {}
}

// Python's ast class names, for error messages that match BFCL's "Unsupported AST type: <class 'ast.X'>".
const AST_CLASS: Partial<Record<PyNode['k'], string>> = {
  JoinedStr: 'JoinedStr',
  Set: 'Set',
  BoolOp: 'BoolOp',
  Compare: 'Compare',
};

/**
 * Decodes Python call syntax as BFCL does for prompting models: strip backticks, newlines and spaces, wrap in `[...]`
 * when missing, parse, then require every element to be a call. Keyword arguments become the arguments; positional
 * arguments are ignored, as in BFCL. Nested calls with keywords become `{name: {args}}`, without keywords their source
 * text; bare names become strings; arithmetic is evaluated. Never throws.
 *
 * The common shape, `[name(k=literal, …), …]` with literal values, is read directly by {@link parsePythonCallList};
 * anything else goes through the full expression parser ({@link parsePythonCallsFull}), with identical results.
 */
export function parsePythonCalls(text: string, options: PythonDecodeOptions = {}): ParseResult {
  return decodePythonCalls(text, true, options.errorDetail ?? true);
}

export interface PythonDecodeOptions {
  /**
   * False when the caller needs to know only whether decoding failed, not why (BFCL's irrelevance check, where a
   * failure is simply no call): text that is plainly prose then fails without the parser, whose syntax error (a throw
   * through every level of the grammar) costs more than the rest of scoring the prediction. Default true.
   */
  errorDetail?: boolean;
}

/**
 * `[name name`: two names side by side where a list starts, neither a keyword. No Python expression has that (a name
 * is followed by an operator, a bracket, a comma or a keyword; a string prefix is followed by its quote), and it is
 * how prose starts: "I cannot help with that", "Sorry I …".
 */
const TWO_NAMES = /^\[\s*([A-Za-z_][A-Za-z0-9_]*)[ \t]+([A-Za-z_][A-Za-z0-9_]*)/;

function startsWithTwoNames(cleaned: string): boolean {
  const match = TWO_NAMES.exec(cleaned);
  return match !== null && !HARD_KEYWORDS.has(match[1] as string) && !HARD_KEYWORDS.has(match[2] as string);
}

/** {@link parsePythonCalls} without the fast path: always the full expression parser (the reference; tests compare the two). */
export function parsePythonCallsFull(text: string): ParseResult {
  return decodePythonCalls(text, false);
}

function decodePythonCalls(text: string, fast: boolean, errorDetail = true): ParseResult {
  const n = text.length;
  let cleaned: string;
  // cleaned offset + shift = original offset (before clamping).
  let shift: number;
  if (n >= 2 && text.charCodeAt(0) === 0x5b && text.charCodeAt(n - 1) === 0x5d) {
    // `[...]`: none of the stripping below changes anything, and no wrapping is needed.
    cleaned = text;
    shift = 0;
  } else {
    const stripped = pyStrip(text, '`\n ');
    const leading = text.indexOf(stripped);
    const open = stripped.startsWith('[') ? '' : '[';
    const close = stripped.endsWith(']') ? '' : ']';
    const wrapped = `${open}${stripped}${close}`;
    // ast_parse: `input_str.strip().strip("'")` before `ast.parse(..., mode="eval")`.
    cleaned = pyStrip(pyStrip(wrapped), "'");
    shift = wrapped.indexOf(cleaned) - open.length + Math.max(0, leading);
  }
  if (fast) {
    const calls = parsePythonCallList(cleaned);
    if (calls !== undefined) return { ok: true, format: 'python', calls };
    if (!errorDetail && startsWithTwoNames(cleaned)) {
      const reason = 'invalid syntax: two names side by side (where not computed)';
      return { ok: false, error: { kind: 'invalid_python', format: 'python', reason, offset: 0, line: 1, column: 1 } };
    }
  }
  let body: PyNode;
  try {
    body = parsePythonExpression(cleaned);
  } catch (err) {
    if (!(err instanceof PySyntaxError)) throw err;
    const offset = Math.max(0, Math.min(text.length, err.offset + shift));
    const { line, column } = positionAt(text, offset);
    return {
      ok: false,
      error: {
        kind: 'invalid_python',
        format: 'python',
        reason: `${err.message} (line ${line}, column ${column})`,
        offset,
        line,
        column,
      },
    };
  }
  try {
    const calls: ParsedCall[] = [];
    if (body.k === 'Call') calls.push(resolveCall(body));
    else if (body.k === 'List' || body.k === 'Tuple' || body.k === 'Set') {
      for (const element of body.elts) {
        if (element.k !== 'Call') return invalidCall(`expected a function call, got ${describeNode(element)}`);
        calls.push(resolveCall(element));
      }
    } else {
      return invalidCall(`expected a list of function calls, got ${describeNode(body)}`);
    }
    return { ok: true, format: 'python', calls };
  } catch (err) {
    if (err instanceof ResolveError)
      return { ok: false, error: { kind: 'unsupported_value', format: 'python', reason: err.message } };
    throw err;
  }
}

function invalidCall(reason: string): ParseResult {
  return { ok: false, error: { kind: 'invalid_call', format: 'python', reason } };
}

function describeNode(node: PyNode): string {
  return node.k === 'Constant'
    ? `a ${node.value === ELLIPSIS ? 'ellipsis' : pyTypeName(node.value)} constant`
    : `an ast.${node.k}`;
}

/** resolve_ast_call: the dotted name from Attribute/Name nodes, the keyword arguments resolved. */
function resolveCall(node: Extract<PyNode, { k: 'Call' }>): ParsedCall {
  const parts: string[] = [];
  let func = node.func;
  while (func.k === 'Attribute') {
    parts.push(func.attr);
    func = func.value;
  }
  if (func.k === 'Name') parts.push(func.id);
  const args: PyDict = {};
  for (const keyword of node.keywords) {
    // Python stores `**mapping` under the key None; no parameter can be called that, and neither can "**".
    setOwn(args, keyword.arg ?? '**', resolveValue(keyword.value));
  }
  return { name: parts.reverse().join('.'), arguments: args };
}

/** resolve_ast_by_type. */
function resolveValue(node: PyNode): PyValue {
  switch (node.k) {
    case 'Constant':
      return node.value === ELLIPSIS ? '...' : node.value;
    case 'UnaryOp':
      // BFCL computes `-value.operand.value` whatever the operator: `+5` and `~5` decode as -5. Only a constant operand
      // has a `.value`; anything else raises in Python.
      if (node.operand.k !== 'Constant') throw new ResolveError(`'${node.operand.k}' object has no attribute 'value'`);
      return negateConstant(node.operand.value);
    case 'List':
      return node.elts.map(resolveValue);
    case 'Dict': {
      const out: PyDict = {};
      for (let i = 0; i < node.keys.length; i++) {
        const keyNode = node.keys[i] as PyNode | null;
        if (keyNode === null) throw new ResolveError("Unsupported AST type: <class 'NoneType'>");
        const key = resolveValue(keyNode);
        if (typeof key !== 'string')
          throw new ResolveError(`dict key ${String(key)} is not a string (only string keys are supported)`);
        setOwn(out, key, resolveValue(node.values[i] as PyNode));
      }
      return out;
    }
    case 'BinOp':
      return evaluate(node);
    case 'Name':
      return node.id;
    case 'Call': {
      if (node.keywords.length === 0) return unparsePython(node);
      const call = resolveCall(node);
      const out: PyDict = {};
      setOwn(out, call.name, call.arguments);
      return out;
    }
    case 'Tuple':
      return new PyTuple(node.elts.map(resolveValue));
    case 'Lambda':
      throw new ResolveError("'Lambda' object has no attribute 'body' that can be indexed");
    case 'Subscript':
      return `${unparsePython(node.value)}[${unparsePython(node.slice)}]`;
    default:
      throw new ResolveError(`Unsupported AST type: <class 'ast.${AST_CLASS[node.k] ?? node.k}'>`);
  }
}

function negateConstant(value: PyValue | typeof ELLIPSIS): PyValue {
  if (typeof value === 'boolean') return value ? -1 : 0;
  if (typeof value === 'number') return -value;
  if (value instanceof JsonFloat) return new JsonFloat(-value.value);
  const typeName = value === ELLIPSIS ? 'ellipsis' : pyTypeName(value);
  throw new ResolveError(`bad operand type for unary -: '${typeName}'`);
}

// Python's int arithmetic is exact; beyond this the result is only kept approximately (documented).
const MAX_EXPONENT_BITS = 4096n;
const MAX_SEQUENCE = 1_000_000;

/**
 * BFCL resolves a BinOp with `eval(ast.unparse(node))`. This evaluates the literal subset with Python semantics (int vs
 * float results, floor division and modulo signs, `**` with negative exponents, str/list/tuple concatenation and
 * repetition). Names, calls and comparisons inside arithmetic are rejected (documented deviation: Python could evaluate
 * `abs(-3) + 1`).
 */
function evaluate(node: PyNode): PyValue {
  switch (node.k) {
    case 'Constant':
      if (node.value === ELLIPSIS) throw new ResolveError("unsupported operand type(s): 'ellipsis'");
      return node.value;
    case 'List':
      return node.elts.map(evaluate);
    case 'Tuple':
      return new PyTuple(node.elts.map(evaluate));
    case 'Dict': {
      const out: PyDict = {};
      for (let i = 0; i < node.keys.length; i++) {
        const keyNode = node.keys[i] as PyNode | null;
        const key = keyNode === null ? undefined : evaluate(keyNode);
        if (typeof key !== 'string')
          throw new ResolveError('only string dict keys are supported in evaluated expressions');
        setOwn(out, key, evaluate(node.values[i] as PyNode));
      }
      return out;
    }
    case 'UnaryOp':
      return evaluateUnary(node.op, evaluate(node.operand));
    case 'BinOp':
      return evaluateBinary(node.op, evaluate(node.left), evaluate(node.right));
    case 'Name':
      throw new ResolveError(`name '${node.id}' is not defined`);
    default:
      throw new ResolveError(`cannot evaluate an ast.${node.k} inside an arithmetic expression`);
  }
}

type Num = { kind: 'int'; value: bigint } | { kind: 'float'; value: number };

function asNumber(value: PyValue): Num | undefined {
  if (typeof value === 'boolean') return { kind: 'int', value: value ? 1n : 0n };
  if (typeof value === 'number')
    return Number.isInteger(value) ? { kind: 'int', value: BigInt(value) } : { kind: 'float', value };
  if (value instanceof JsonFloat) return { kind: 'float', value: value.value };
  return undefined;
}

function fromNumber(n: Num): PyValue {
  return n.kind === 'int' ? Number(n.value) : new JsonFloat(n.value);
}

function toFloat(n: Num): number {
  return n.kind === 'int' ? Number(n.value) : n.value;
}

function isTruthy(value: PyValue): boolean {
  if (value === null) return false;
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number') return value !== 0;
  if (typeof value === 'string') return value.length > 0;
  if (value instanceof JsonFloat) return value.value !== 0;
  if (Array.isArray(value)) return value.length > 0;
  if (value instanceof PyTuple) return value.items.length > 0;
  if (value instanceof PyOpaque) return true;
  return Object.keys(value).length > 0;
}

function evaluateUnary(op: string, value: PyValue): PyValue {
  if (op === 'not') return !isTruthy(value);
  const n = asNumber(value);
  if (n === undefined) throw new ResolveError(`bad operand type for unary ${op}: '${pyTypeName(value)}'`);
  if (op === '+') return fromNumber(n);
  if (op === '-') return n.kind === 'int' ? Number(-n.value) : new JsonFloat(-n.value);
  if (n.kind === 'float') throw new ResolveError("bad operand type for unary ~: 'float'");
  return Number(~n.value);
}

function typeError(op: string, a: PyValue, b: PyValue): ResolveError {
  return new ResolveError(`unsupported operand type(s) for ${op}: '${pyTypeName(a)}' and '${pyTypeName(b)}'`);
}

function evaluateBinary(op: BinaryOperator, a: PyValue, b: PyValue): PyValue {
  const x = asNumber(a);
  const y = asNumber(b);
  if (x && y) {
    // bool & bool stays a bool in Python.
    if ((op === '&' || op === '|' || op === '^') && typeof a === 'boolean' && typeof b === 'boolean') {
      return op === '&' ? a && b : op === '|' ? a || b : a !== b;
    }
    return fromNumber(numericBinary(op, x, y, a, b));
  }
  const sequence = (value: PyValue): PyValue[] | string | undefined =>
    typeof value === 'string'
      ? value
      : Array.isArray(value)
        ? value
        : value instanceof PyTuple
          ? value.items
          : undefined;
  const sa = sequence(a);
  const sb = sequence(b);
  if (op === '+' && sa !== undefined && sb !== undefined && pyTypeName(a) === pyTypeName(b)) {
    if (typeof sa === 'string') return sa + (sb as string);
    const items = [...(sa as PyValue[]), ...(sb as PyValue[])];
    return a instanceof PyTuple ? new PyTuple(items) : items;
  }
  if (op === '*' && ((sa !== undefined && y?.kind === 'int') || (sb !== undefined && x?.kind === 'int'))) {
    const seq = (sa ?? sb) as PyValue[] | string;
    const count = Number(((sa !== undefined ? y : x) as Extract<Num, { kind: 'int' }>).value);
    const times = Math.max(0, count);
    if (seq.length * times > MAX_SEQUENCE) throw new ResolveError('repeated sequence too large to evaluate');
    if (typeof seq === 'string') return seq.repeat(times);
    const items = Array.from({ length: times }, () => seq).flat();
    return (sa !== undefined ? a : b) instanceof PyTuple ? new PyTuple(items) : items;
  }
  throw typeError(op, a, b);
}

function numericBinary(op: BinaryOperator, x: Num, y: Num, a: PyValue, b: PyValue): Num {
  if (x.kind === 'int' && y.kind === 'int') {
    const p = x.value;
    const q = y.value;
    switch (op) {
      case '+':
        return { kind: 'int', value: p + q };
      case '-':
        return { kind: 'int', value: p - q };
      case '*':
        return { kind: 'int', value: p * q };
      case '/':
        if (q === 0n) throw new ResolveError('division by zero');
        return { kind: 'float', value: Number(p) / Number(q) };
      case '//': {
        if (q === 0n) throw new ResolveError('integer division or modulo by zero');
        const quotient = p / q;
        return { kind: 'int', value: p % q !== 0n && p < 0n !== q < 0n ? quotient - 1n : quotient };
      }
      case '%': {
        if (q === 0n) throw new ResolveError('integer division or modulo by zero');
        const r = p % q;
        return { kind: 'int', value: r !== 0n && r < 0n !== q < 0n ? r + q : r };
      }
      case '**':
        if (q < 0n) {
          if (p === 0n) throw new ResolveError('0.0 cannot be raised to a negative power');
          return { kind: 'float', value: Number(p) ** Number(q) };
        }
        if (p !== 0n && p !== 1n && p !== -1n && q * BigInt(p.toString(2).length) > MAX_EXPONENT_BITS) {
          throw new ResolveError('power result too large to evaluate');
        }
        return { kind: 'int', value: p ** q };
      case '<<':
        if (q < 0n) throw new ResolveError('negative shift count');
        if (q > MAX_EXPONENT_BITS) throw new ResolveError('shift result too large to evaluate');
        return { kind: 'int', value: p << q };
      case '>>':
        if (q < 0n) throw new ResolveError('negative shift count');
        return { kind: 'int', value: p >> q };
      case '&':
        return { kind: 'int', value: p & q };
      case '|':
        return { kind: 'int', value: p | q };
      case '^':
        return { kind: 'int', value: p ^ q };
      case '@':
        throw typeError(op, a, b);
    }
  }
  const p = toFloat(x);
  const q = toFloat(y);
  switch (op) {
    case '+':
      return { kind: 'float', value: p + q };
    case '-':
      return { kind: 'float', value: p - q };
    case '*':
      return { kind: 'float', value: p * q };
    case '/':
      if (q === 0) throw new ResolveError('float division by zero');
      return { kind: 'float', value: p / q };
    case '//':
    case '%': {
      if (q === 0) throw new ResolveError(op === '%' ? 'float modulo' : 'float floor division by zero');
      const [div, mod] = pythonFloatDivmod(p, q);
      return { kind: 'float', value: op === '//' ? div : mod };
    }
    case '**':
      if (p === 0 && q < 0) throw new ResolveError('0.0 cannot be raised to a negative power');
      if (p < 0 && !Number.isInteger(q)) throw new ResolveError('complex results are not supported');
      return { kind: 'float', value: p ** q };
    default:
      throw typeError(op, a, b);
  }
}

// CPython's float_divmod.
function pythonFloatDivmod(vx: number, wx: number): [number, number] {
  let mod = vx % wx;
  let div = (vx - mod) / wx;
  if (mod !== 0) {
    if (wx < 0 !== mod < 0) {
      mod += wx;
      div -= 1;
    }
  } else {
    mod = wx < 0 ? -0 : 0;
  }
  let floordiv: number;
  if (div !== 0) {
    floordiv = Math.floor(div);
    if (div - floordiv > 0.5) floordiv += 1;
  } else {
    floordiv = vx / wx < 0 ? -0 : 0;
  }
  return [floordiv, mod];
}

/**
 * Converts a decoded value to the JSON value model: tuples become lists (as `json.dumps` writes them). Returns undefined
 * for values JSON cannot hold (complex, bytes), so callers can reject them with a reason.
 */
export function pyToJson(value: PyValue): JsonValue | undefined {
  if (value instanceof PyOpaque) return undefined;
  if (value instanceof PyTuple || Array.isArray(value)) {
    const items = value instanceof PyTuple ? value.items : value;
    const out: JsonValue[] = [];
    for (const item of items) {
      const converted = pyToJson(item);
      if (converted === undefined) return undefined;
      out.push(converted);
    }
    return out;
  }
  if (isJsonObject(value)) {
    const out: JsonObject = {};
    for (const [key, item] of Object.entries(value)) {
      const converted = pyToJson(item as PyValue);
      if (converted === undefined) return undefined;
      setOwn(out, key, converted);
    }
    return out;
  }
  return value as JsonValue;
}

// ---------------------------------------------------------------------------------------------------------------------
// Fast path: `[name(k=literal, …), …]` read straight into values, no tokens and no AST. It accepts only text for which
// the full parser's result is certain and equal (literal strings without prefixes, decimal ints and floats, a `-`
// directly before a number, True/False/None, bare names, lists/tuples/dicts of those, plain whitespace); on anything
// else, valid or not, it gives up and the full parser decides, so errors and rarer forms keep their exact behaviour.

/** Returned by the fast readers when the text is not the simple shape. */
const MISS: unique symbol = Symbol('miss');
type FastValue = PyValue | typeof MISS;

// Deeper nesting goes to the full parser, so that what it would do with very deep input (recursion limits) is kept.
const MAX_FAST_DEPTH = 100;
// The full tokenizer reads at most 400 characters of a number; longer ones are its business.
const MAX_FAST_NUMBER = 300;

// The reader's state: the text and the position. Module-level (no closures per call); nothing here re-enters.
let src = '';
let at = 0;

/**
 * The fast path alone: the calls of `[name(k=v, …), …]` (`cleaned` being the text after BFCL's stripping and wrapping)
 * when every value is a literal it reads, or undefined when the full parser must decide. Where it returns calls, they
 * equal the full parser's, value for value (int vs float, tuples, `-0`, key order).
 */
export function parsePythonCallList(cleaned: string): ParsedCall[] | undefined {
  src = cleaned;
  at = 0;
  try {
    return readCallList();
  } catch (err) {
    // decodeEscape rejects a bad escape; the full parser reports it.
    if (err instanceof PySyntaxError) return undefined;
    throw err;
  } finally {
    src = '';
  }
}

function skipSpace(): void {
  const s = src;
  const n = s.length;
  let i = at;
  while (i < n) {
    const c = s.charCodeAt(i);
    // The tokenizer's whitespace: space, \t, \n, \r, \f (line continuations and comments are left to the full parser).
    if (c === 0x20 || c === 0x0a || c === 0x09 || c === 0x0d || c === 0x0c) i++;
    else break;
  }
  at = i;
}

function isIdStartCode(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f;
}

function isIdContinueCode(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x5f;
}

/** An ASCII identifier at `at`, or undefined (none there, or one that goes on with non-ASCII characters). */
function readIdentifier(): string | undefined {
  const s = src;
  const start = at;
  if (!isIdStartCode(s.charCodeAt(start))) return undefined;
  let i = start + 1;
  let c = s.charCodeAt(i);
  while (isIdContinueCode(c)) c = s.charCodeAt(++i);
  if (c >= 0x80) return undefined;
  at = i;
  return s.slice(start, i);
}

function readCallList(): ParsedCall[] | undefined {
  skipSpace();
  if (src.charCodeAt(at) !== 0x5b /* [ */) return undefined;
  at++;
  skipSpace();
  const calls: ParsedCall[] = [];
  if (src.charCodeAt(at) === 0x5d /* ] */) {
    at++;
  } else {
    for (;;) {
      const call = readCall();
      if (call === undefined) return undefined;
      calls.push(call);
      skipSpace();
      const c = src.charCodeAt(at);
      if (c === 0x2c /* , */) {
        at++;
        skipSpace();
        if (src.charCodeAt(at) === 0x5d) {
          at++;
          break;
        }
      } else if (c === 0x5d) {
        at++;
        break;
      } else {
        return undefined;
      }
    }
  }
  skipSpace();
  return at === src.length ? calls : undefined;
}

/** `a.b.c(k=v, …)`: keyword arguments with literal values only. */
function readCall(): ParsedCall | undefined {
  let name = readIdentifier();
  if (name === undefined || HARD_KEYWORDS.has(name)) return undefined;
  skipSpace();
  while (src.charCodeAt(at) === 0x2e /* . */) {
    at++;
    skipSpace();
    const part = readIdentifier();
    if (part === undefined || HARD_KEYWORDS.has(part)) return undefined;
    name += `.${part}`;
    skipSpace();
  }
  if (src.charCodeAt(at) !== 0x28 /* ( */) return undefined;
  at++;
  skipSpace();
  const args: PyDict = {};
  if (src.charCodeAt(at) === 0x29 /* ) */) {
    at++;
    return { name, arguments: args };
  }
  for (;;) {
    const key = readIdentifier();
    // Positional arguments, `*a`, `**k` and keywords used as names are left to the full parser.
    if (key === undefined || HARD_KEYWORDS.has(key)) return undefined;
    skipSpace();
    if (src.charCodeAt(at) !== 0x3d /* = */ || src.charCodeAt(at + 1) === 0x3d) return undefined;
    at++;
    skipSpace();
    const value = readValue(0);
    if (value === MISS) return undefined;
    // A repeated keyword keeps the last value, as the full path does.
    setOwn(args, key, value);
    skipSpace();
    const c = src.charCodeAt(at);
    if (c === 0x2c) {
      at++;
      skipSpace();
      if (src.charCodeAt(at) === 0x29) {
        at++;
        break;
      }
    } else if (c === 0x29) {
      at++;
      break;
    } else {
      return undefined;
    }
  }
  return { name, arguments: args };
}

function isDigitCode(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/**
 * One literal value at `at` (whitespace before it already skipped). The caller checks what follows it: only `,` or the
 * closing bracket (or `:` after a dict key) can, so `1 + 2`, `x.y`, `f(…)`, `'a' 'b'` or `5j` all go to the full parser.
 */
function readValue(depth: number): FastValue {
  if (depth > MAX_FAST_DEPTH) return MISS;
  const c = src.charCodeAt(at);
  if (c === 0x27 || c === 0x22) return readString(c);
  if (isDigitCode(c) || (c === 0x2e && isDigitCode(src.charCodeAt(at + 1)))) return readNumber();
  if (c === 0x2d /* - */) {
    // BFCL's `-value.operand.value`: -5 is int -5 (and -0 is JavaScript's -0, as the full path gives), -2.5 a float.
    const next = src.charCodeAt(at + 1);
    if (!(isDigitCode(next) || (next === 0x2e && isDigitCode(src.charCodeAt(at + 2))))) return MISS;
    at++;
    const number = readNumber();
    if (number === MISS) return MISS;
    return number instanceof JsonFloat ? new JsonFloat(-number.value) : -(number as number);
  }
  if (c === 0x5b /* [ */) return readList(depth);
  if (c === 0x28 /* ( */) return readParenthesized(depth);
  if (c === 0x7b /* { */) return readDict(depth);
  const word = readIdentifier();
  if (word === undefined) return MISS;
  if (word === 'True') return true;
  if (word === 'False') return false;
  if (word === 'None') return null;
  if (HARD_KEYWORDS.has(word)) return MISS;
  // resolve_ast_by_type: a bare name is its own text. (A string prefix followed by a quote is caught by the caller.)
  return word;
}

/** A `'…'` or `"…"` string without prefix, not triple-quoted, on one line; escapes decoded as the full tokenizer does. */
function readString(quote: number): FastValue {
  const s = src;
  const n = s.length;
  const open = at;
  if (s.charCodeAt(open + 1) === quote && s.charCodeAt(open + 2) === quote) return MISS;
  let i = open + 1;
  let start = i;
  let value = '';
  for (;;) {
    if (i >= n) return MISS;
    const c = s.charCodeAt(i);
    if (c === quote) break;
    if (c === 0x0a || c === 0x0d) return MISS;
    if (c === 0x5c /* \ */) {
      if (i + 1 >= n) return MISS;
      const [decoded, consumed] = decodeEscape(s, i, false);
      value += s.slice(start, i) + decoded;
      i += consumed;
      start = i;
      continue;
    }
    i++;
  }
  at = i + 1;
  return start === open + 1 ? s.slice(start, i) : value + s.slice(start, i);
}

/** A decimal int (no leading zeros, no `_`) or float (`1.5`, `1.`, `.5`, `1e-3`); other forms go to the full parser. */
function readNumber(): FastValue {
  const s = src;
  const start = at;
  let i = start;
  while (isDigitCode(s.charCodeAt(i))) i++;
  let isFloat = false;
  if (s.charCodeAt(i) === 0x2e) {
    isFloat = true;
    i++;
    while (isDigitCode(s.charCodeAt(i))) i++;
  }
  const e = s.charCodeAt(i);
  if (e === 0x65 || e === 0x45) {
    let j = i + 1;
    const sign = s.charCodeAt(j);
    if (sign === 0x2b || sign === 0x2d) j++;
    if (!isDigitCode(s.charCodeAt(j))) return MISS;
    while (isDigitCode(s.charCodeAt(j))) j++;
    isFloat = true;
    i = j;
  }
  const length = i - start;
  if (length > MAX_FAST_NUMBER) return MISS;
  at = i;
  if (isFloat) return new JsonFloat(Number(s.slice(start, i)));
  // `0x1F`, `0o7`, `00`, `0_1` and `07` (an error) all start with a 0 and go on: the full parser's business.
  if (s.charCodeAt(start) === 0x30 && length > 1) return MISS;
  if (length <= 15) {
    let value = 0;
    for (let k = start; k < i; k++) value = value * 10 + (s.charCodeAt(k) - 0x30);
    return value;
  }
  return Number(BigInt(s.slice(start, i)));
}

function readList(depth: number): FastValue {
  at++;
  skipSpace();
  const items: PyValue[] = [];
  if (src.charCodeAt(at) === 0x5d) {
    at++;
    return items;
  }
  for (;;) {
    const item = readValue(depth + 1);
    if (item === MISS) return MISS;
    items.push(item);
    skipSpace();
    const c = src.charCodeAt(at);
    if (c === 0x2c) {
      at++;
      skipSpace();
      if (src.charCodeAt(at) === 0x5d) break;
    } else if (c === 0x5d) {
      break;
    } else {
      return MISS;
    }
  }
  at++;
  return items;
}

/** `()` and `(a, …)` are tuples; `(a)` is just `a`. */
function readParenthesized(depth: number): FastValue {
  at++;
  skipSpace();
  if (src.charCodeAt(at) === 0x29) {
    at++;
    return new PyTuple([]);
  }
  const first = readValue(depth + 1);
  if (first === MISS) return MISS;
  skipSpace();
  let c = src.charCodeAt(at);
  if (c === 0x29) {
    at++;
    return first;
  }
  const items: PyValue[] = [first];
  for (;;) {
    if (c !== 0x2c) return MISS;
    at++;
    skipSpace();
    if (src.charCodeAt(at) === 0x29) break;
    const item = readValue(depth + 1);
    if (item === MISS) return MISS;
    items.push(item);
    skipSpace();
    c = src.charCodeAt(at);
    if (c === 0x29) break;
  }
  at++;
  return new PyTuple(items);
}

/** `{k: v, …}` with keys that resolve to strings (string literals or bare names); anything else is the full parser's. */
function readDict(depth: number): FastValue {
  at++;
  skipSpace();
  const out: PyDict = {};
  if (src.charCodeAt(at) === 0x7d /* } */) {
    at++;
    return out;
  }
  for (;;) {
    const key = readValue(depth + 1);
    if (typeof key !== 'string') return MISS;
    skipSpace();
    // `:=` is one token (a walrus), not a dict colon.
    if (src.charCodeAt(at) !== 0x3a /* : */ || src.charCodeAt(at + 1) === 0x3d) return MISS;
    at++;
    skipSpace();
    const value = readValue(depth + 1);
    if (value === MISS) return MISS;
    setOwn(out, key, value);
    skipSpace();
    const c = src.charCodeAt(at);
    if (c === 0x2c) {
      at++;
      skipSpace();
      if (src.charCodeAt(at) === 0x7d) break;
    } else if (c === 0x7d) {
      break;
    } else {
      return MISS;
    }
  }
  at++;
  return out;
}
