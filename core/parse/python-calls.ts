/**
 * BFCL's decoder for prompt-style output, `[f(a=1, b='x'), g()]`: `default_decode_ast_prompting` + `ast_parse` +
 * `resolve_ast_by_type` from `bfcl_eval/model_handler/utils.py`, quirks included, so that what BFCL can decode we
 * decode to the same values and what it rejects we reject.
 */
import { isJsonObject, JsonFloat, positionAt, setOwn, type JsonObject, type JsonValue } from '../json.js';
import { PyOpaque, pyStrip, PyTuple, pyTypeName, type PyDict, type PyValue } from '../python.js';
import { ELLIPSIS, parsePythonExpression, PySyntaxError, unparsePython, type BinaryOperator, type PyNode } from './python-ast.js';
import type { ParsedCall, ParseResult } from './types.js';

/** Raised while resolving a parsed node; becomes an `unsupported_value` parse error (BFCL: decoder_failed). */
class ResolveError {
  constructor(readonly message: string) {}
}

// Python's ast class names, for error messages that match BFCL's "Unsupported AST type: <class 'ast.X'>".
const AST_CLASS: Partial<Record<PyNode['k'], string>> = { JoinedStr: 'JoinedStr', Set: 'Set', BoolOp: 'BoolOp', Compare: 'Compare' };

/**
 * Decodes Python call syntax as BFCL does for prompting models: strip backticks, newlines and spaces, wrap in `[...]`
 * when missing, parse, then require every element to be a call. Keyword arguments become the arguments; positional
 * arguments are ignored, as in BFCL. Nested calls with keywords become `{name: {args}}`, without keywords their source
 * text; bare names become strings; arithmetic is evaluated. Never throws.
 */
export function parsePythonCalls(text: string): ParseResult {
  const stripped = pyStrip(text, '`\n ');
  const leading = text.indexOf(stripped);
  const open = stripped.startsWith('[') ? '' : '[';
  const close = stripped.endsWith(']') ? '' : ']';
  const wrapped = `${open}${stripped}${close}`;
  // ast_parse: `input_str.strip().strip("'")` before `ast.parse(..., mode="eval")`.
  const cleaned = pyStrip(pyStrip(wrapped), "'");
  const cleanedStart = wrapped.indexOf(cleaned);
  const toOriginal = (offset: number): number => Math.max(0, Math.min(text.length, offset + cleanedStart - open.length + Math.max(0, leading)));
  let body: PyNode;
  try {
    body = parsePythonExpression(cleaned);
  } catch (err) {
    if (!(err instanceof PySyntaxError)) throw err;
    const offset = toOriginal(err.offset);
    const { line, column } = positionAt(text, offset);
    return { ok: false, error: { kind: 'invalid_python', format: 'python', reason: `${err.message} (line ${line}, column ${column})`, offset, line, column } };
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
    if (err instanceof ResolveError) return { ok: false, error: { kind: 'unsupported_value', format: 'python', reason: err.message } };
    throw err;
  }
}

function invalidCall(reason: string): ParseResult {
  return { ok: false, error: { kind: 'invalid_call', format: 'python', reason } };
}

function describeNode(node: PyNode): string {
  return node.k === 'Constant' ? `a ${node.value === ELLIPSIS ? 'ellipsis' : pyTypeName(node.value)} constant` : `an ast.${node.k}`;
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
      node.keys.forEach((keyNode, i) => {
        if (keyNode === null) throw new ResolveError("Unsupported AST type: <class 'NoneType'>");
        const key = resolveValue(keyNode);
        if (typeof key !== 'string') throw new ResolveError(`dict key ${String(key)} is not a string (only string keys are supported)`);
        setOwn(out, key, resolveValue(node.values[i] as PyNode));
      });
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
      node.keys.forEach((keyNode, i) => {
        const key = keyNode === null ? undefined : evaluate(keyNode);
        if (typeof key !== 'string') throw new ResolveError('only string dict keys are supported in evaluated expressions');
        setOwn(out, key, evaluate(node.values[i] as PyNode));
      });
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
  if (typeof value === 'number') return Number.isInteger(value) ? { kind: 'int', value: BigInt(value) } : { kind: 'float', value };
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
    typeof value === 'string' ? value : Array.isArray(value) ? value : value instanceof PyTuple ? value.items : undefined;
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
        return { kind: 'int', value: (p % q !== 0n && (p < 0n) !== (q < 0n)) ? quotient - 1n : quotient };
      }
      case '%': {
        if (q === 0n) throw new ResolveError('integer division or modulo by zero');
        const r = p % q;
        return { kind: 'int', value: r !== 0n && (r < 0n) !== (q < 0n) ? r + q : r };
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
