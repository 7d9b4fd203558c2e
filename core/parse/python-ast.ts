/**
 * A parser for Python expressions (what `ast.parse(text, mode="eval")` accepts, minus `await`/`yield`) and the matching
 * `ast.unparse`. BFCL decodes prompt-style model output with Python's own parser and turns some sub-expressions back
 * into text with `ast.unparse`, so both must behave like CPython's for the checker to give the same verdicts.
 */
import { JsonFloat } from '../json.js';
import { PyOpaque, pyFloatRepr, pyRepr, pyStrRepr, type PyValue } from '../python.js';

/** Marks Python's `...` constant (BFCL resolves it to the string `"..."`). */
export const ELLIPSIS = Symbol('Ellipsis');

export type ConstantValue = PyValue | typeof ELLIPSIS;

export type PyNode =
  | { k: 'Constant'; value: ConstantValue; kind?: 'u' }
  | { k: 'JoinedStr'; source: string }
  | { k: 'Name'; id: string }
  | { k: 'Attribute'; value: PyNode; attr: string }
  | { k: 'Call'; func: PyNode; args: PyNode[]; keywords: PyKeyword[] }
  | { k: 'List' | 'Tuple' | 'Set'; elts: PyNode[] }
  | { k: 'Dict'; keys: (PyNode | null)[]; values: PyNode[] }
  | { k: 'UnaryOp'; op: UnaryOperator; operand: PyNode }
  | { k: 'BinOp'; op: BinaryOperator; left: PyNode; right: PyNode }
  | { k: 'BoolOp'; op: 'and' | 'or'; values: PyNode[] }
  | { k: 'Compare'; left: PyNode; ops: string[]; comparators: PyNode[] }
  | { k: 'IfExp'; test: PyNode; body: PyNode; orelse: PyNode }
  | { k: 'Lambda'; params: string; body: PyNode }
  | { k: 'NamedExpr'; target: PyNode; value: PyNode }
  | { k: 'Starred'; value: PyNode }
  | { k: 'Subscript'; value: PyNode; slice: PyNode }
  | { k: 'Slice'; lower: PyNode | null; upper: PyNode | null; step: PyNode | null }
  | { k: 'ListComp' | 'SetComp' | 'GeneratorExp'; elt: PyNode; generators: PyComprehension[] }
  | { k: 'DictComp'; key: PyNode; value: PyNode; generators: PyComprehension[] };

export interface PyKeyword {
  /** null for `**mapping`. */
  arg: string | null;
  value: PyNode;
}

export interface PyComprehension {
  target: PyNode;
  iter: PyNode;
  ifs: PyNode[];
  isAsync: boolean;
}

export type UnaryOperator = '-' | '+' | '~' | 'not';
export type BinaryOperator = '+' | '-' | '*' | '@' | '/' | '//' | '%' | '**' | '<<' | '>>' | '&' | '|' | '^';

// Binary operators by binding strength, loosest first (below comparisons, above unary operators).
const BINARY_LEVELS: readonly (readonly BinaryOperator[])[] = [
  ['|'],
  ['^'],
  ['&'],
  ['<<', '>>'],
  ['+', '-'],
  ['*', '/', '//', '%', '@'],
];

/** A syntax error at an offset of the parsed text. */
export class PySyntaxError {
  constructor(
    readonly message: string,
    readonly offset: number,
  ) {}
}

type Token =
  | { t: 'name'; v: string; pos: number }
  | { t: 'number'; v: PyValue; pos: number }
  | { t: 'string'; v: StringLiteral; pos: number }
  | { t: 'op'; v: string; pos: number }
  | { t: 'end'; pos: number };

interface StringLiteral {
  kind: 'str' | 'bytes' | 'f';
  value: string;
  unicodePrefix: boolean;
  source: string;
}

/** Python keywords that can never be names (`True`, `False`, `None` included). */
export const HARD_KEYWORDS: ReadonlySet<string> = new Set([
  'False',
  'None',
  'True',
  'and',
  'as',
  'assert',
  'async',
  'await',
  'break',
  'class',
  'continue',
  'def',
  'del',
  'elif',
  'else',
  'except',
  'finally',
  'for',
  'from',
  'global',
  'if',
  'import',
  'in',
  'is',
  'lambda',
  'nonlocal',
  'not',
  'or',
  'pass',
  'raise',
  'return',
  'try',
  'while',
  'with',
  'yield',
]);

// Longest first, so `**` wins over `*` and `//` over `/`.
const OPERATORS = [
  '**=',
  '//=',
  '>>=',
  '<<=',
  '...',
  '->',
  ':=',
  '**',
  '//',
  '<<',
  '>>',
  '<=',
  '>=',
  '==',
  '!=',
  '+=',
  '-=',
  '*=',
  '/=',
  '%=',
  '&=',
  '|=',
  '^=',
  '@=',
  '(',
  ')',
  '[',
  ']',
  '{',
  '}',
  ',',
  ':',
  '.',
  ';',
  '@',
  '=',
  '+',
  '-',
  '*',
  '/',
  '%',
  '&',
  '|',
  '^',
  '~',
  '<',
  '>',
];

const OPERATORS_BY_FIRST = new Map<string, string[]>();
const NO_OPERATORS: readonly string[] = [];
for (const op of OPERATORS)
  OPERATORS_BY_FIRST.set(op[0] as string, [...(OPERATORS_BY_FIRST.get(op[0] as string) ?? []), op]);

// ASCII first: model output is almost all ASCII, and a Unicode-property regex per character is the slow path.
function isAsciiIdContinue(code: number): boolean {
  return (
    (code >= 0x61 && code <= 0x7a) || (code >= 0x41 && code <= 0x5a) || (code >= 0x30 && code <= 0x39) || code === 0x5f
  );
}

function isIdStart(code: number, cp: string): boolean {
  if (code < 0x80) return (code >= 0x61 && code <= 0x7a) || (code >= 0x41 && code <= 0x5a) || code === 0x5f;
  return ID_START.test(cp);
}

// Python identifiers are XID_Start/XID_Continue; the handful of Other_ID_* code points are left out.
const ID_START = /[\p{L}\p{Nl}_]/u;
const ID_CONTINUE = /[\p{L}\p{Nl}\p{Mn}\p{Mc}\p{Nd}\p{Pc}_\u00b7\u0387\u1369-\u1371\u19da]/u;
const STRING_PREFIX = /^(?:[rRuUfFbB]|[fFrR][rRfF]|[bBrR][rRbB])$/;
const HEX_DIGITS = /^[0-9a-fA-F]+$/;
const SIMPLE_ESCAPES: Record<string, string> = {
  '\\': '\\',
  "'": "'",
  '"': '"',
  a: '\x07',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
};

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let pos = 0;
  const n = text.length;
  while (pos < n) {
    const ch = text[pos] as string;
    if (ch === ' ' || ch === '\t' || ch === '\f' || ch === '\n' || ch === '\r') {
      // The whole input sits inside brackets (BFCL wraps it in `[...]`), where newlines are plain whitespace.
      pos++;
      continue;
    }
    if (ch === '\\') {
      if (text[pos + 1] === '\n') {
        pos += 2;
        continue;
      }
      if (text[pos + 1] === '\r') {
        pos += text[pos + 2] === '\n' ? 3 : 2;
        continue;
      }
      throw new PySyntaxError('unexpected character after line continuation character', pos);
    }
    if (ch === '#') {
      while (pos < n && text[pos] !== '\n') pos++;
      continue;
    }
    const code = ch.codePointAt(0) as number;
    if ((code >= 0x30 && code <= 0x39) || (ch === '.' && /[0-9]/.test(text[pos + 1] ?? ''))) {
      const [token, end] = readNumber(text, pos);
      tokens.push(token);
      pos = end;
      continue;
    }
    if (ch === '"' || ch === "'") {
      const [literal, end] = readString(text, pos, '');
      tokens.push({ t: 'string', v: literal, pos });
      pos = end;
      continue;
    }
    const cp = String.fromCodePoint(code);
    if (isIdStart(code, cp)) {
      let end = pos + cp.length;
      while (end < n) {
        const nextCode = text.codePointAt(end) as number;
        if (isAsciiIdContinue(nextCode)) {
          end++;
          continue;
        }
        if (nextCode < 0x80) break;
        const next = String.fromCodePoint(nextCode);
        if (!ID_CONTINUE.test(next)) break;
        end += next.length;
      }
      const word = text.slice(pos, end);
      if (STRING_PREFIX.test(word) && (text[end] === '"' || text[end] === "'")) {
        const [literal, stringEnd] = readString(text, end, word);
        tokens.push({ t: 'string', v: literal, pos });
        pos = stringEnd;
        continue;
      }
      tokens.push({ t: 'name', v: word, pos });
      pos = end;
      continue;
    }
    let op: string | undefined;
    for (const candidate of OPERATORS_BY_FIRST.get(ch) ?? NO_OPERATORS) {
      if (text.startsWith(candidate, pos)) {
        op = candidate;
        break;
      }
    }
    if (op === undefined) throw new PySyntaxError(`invalid character ${pyStrRepr(cp)}`, pos);
    tokens.push({ t: 'op', v: op, pos });
    pos += op.length;
  }
  tokens.push({ t: 'end', pos: n });
  return tokens;
}

const DECIMAL_INT = /^(?:0(?:_?0)*|[1-9](?:_?[0-9])*)/;
const DIGIT_PART = /^[0-9](?:_?[0-9])*/;
const PREFIXED_INT = /^0(?:[xX](?:_?[0-9a-fA-F])+|[oO](?:_?[0-7])+|[bB](?:_?[01])+)/;
const EXPONENT = /^[eE][+-]?[0-9](?:_?[0-9])*/;

function readNumber(text: string, start: number): [Token, number] {
  const rest = text.slice(start, start + 400);
  const prefixed = PREFIXED_INT.exec(rest);
  if (prefixed) {
    const end = start + prefixed[0].length;
    assertNumberEnd(text, end);
    return [{ t: 'number', v: bigToNumber(BigInt(prefixed[0].replaceAll('_', '').toLowerCase())), pos: start }, end];
  }
  let len = 0;
  let isFloat = false;
  const intPart = DIGIT_PART.exec(rest);
  if (intPart) len = intPart[0].length;
  if (rest[len] === '.') {
    isFloat = true;
    len++;
    const frac = DIGIT_PART.exec(rest.slice(len));
    if (frac) len += frac[0].length;
  }
  const exp = EXPONENT.exec(rest.slice(len));
  if (exp) {
    isFloat = true;
    len += exp[0].length;
  }
  const lexeme = rest.slice(0, len);
  if (rest[len] === 'j' || rest[len] === 'J') {
    const end = start + len + 1;
    assertNumberEnd(text, end);
    const imag = Number(lexeme.replaceAll('_', ''));
    return [{ t: 'number', v: new PyOpaque('complex', `${formatImaginary(imag)}j`), pos: start }, end];
  }
  if (!isFloat) {
    const decimal = DECIMAL_INT.exec(rest);
    if (!decimal || decimal[0].length !== len) {
      throw new PySyntaxError(
        'leading zeros in decimal integer literals are not permitted; use an 0o prefix for octal integers',
        start,
      );
    }
  }
  const end = start + len;
  assertNumberEnd(text, end);
  const clean = lexeme.replaceAll('_', '');
  return [{ t: 'number', v: isFloat ? new JsonFloat(Number(clean)) : bigToNumber(BigInt(clean)), pos: start }, end];
}

function formatImaginary(x: number): string {
  const repr = pyFloatRepr(x);
  return repr.endsWith('.0') ? repr.slice(0, -2) : repr;
}

function assertNumberEnd(text: string, end: number): void {
  const next = text.codePointAt(end);
  if (next !== undefined && ID_CONTINUE.test(String.fromCodePoint(next)))
    throw new PySyntaxError('invalid decimal literal', end);
}

function bigToNumber(value: bigint): number {
  return Number(value);
}

function readString(text: string, quoteStart: number, prefix: string): [StringLiteral, number] {
  const lower = prefix.toLowerCase();
  const raw = lower.includes('r');
  const kind: StringLiteral['kind'] = lower.includes('b') ? 'bytes' : lower.includes('f') ? 'f' : 'str';
  const quote = text[quoteStart] as string;
  const triple = text.startsWith(quote.repeat(3), quoteStart);
  const delimiter = triple ? quote.repeat(3) : quote;
  let pos = quoteStart + delimiter.length;
  let value = '';
  for (;;) {
    if (pos >= text.length) throw new PySyntaxError('unterminated string literal', quoteStart);
    if (text.startsWith(delimiter, pos)) {
      pos += delimiter.length;
      break;
    }
    const ch = text[pos] as string;
    if (!triple && (ch === '\n' || ch === '\r')) throw new PySyntaxError('unterminated string literal', quoteStart);
    if (ch === '\\') {
      const next = text[pos + 1];
      if (next === undefined) throw new PySyntaxError('unterminated string literal', quoteStart);
      if (raw || kind === 'f') {
        // Raw strings keep the backslash; f-strings are never resolved by BFCL, only their extent matters.
        value += ch + next;
        pos += 2;
        continue;
      }
      const [decoded, consumed] = decodeEscape(text, pos, kind === 'bytes');
      value += decoded;
      pos += consumed;
      continue;
    }
    if (kind === 'bytes' && ch.charCodeAt(0) > 0x7f)
      throw new PySyntaxError('bytes can only contain ASCII literal characters', pos);
    value += ch;
    pos++;
  }
  return [{ kind, value, unicodePrefix: lower === 'u', source: text.slice(quoteStart - prefix.length, pos) }, pos];
}

/** Decodes the escape starting at the backslash at `pos`: the text and how many characters it took. Throws {@link PySyntaxError}. */
export function decodeEscape(text: string, pos: number, bytes: boolean): [string, number] {
  const next = text[pos + 1] as string;
  if (next === '\n') return ['', 2];
  if (next === '\r') return ['', text[pos + 2] === '\n' ? 3 : 2];
  const simple = SIMPLE_ESCAPES[next];
  if (simple !== undefined) return [simple, 2];
  if (next >= '0' && next <= '7') {
    const oct = /^[0-7]{1,3}/.exec(text.slice(pos + 1, pos + 4))?.[0] ?? next;
    return [String.fromCharCode(Number.parseInt(oct, 8) & (bytes ? 0xff : 0x1ff)), 1 + oct.length];
  }
  const hexLength = next === 'x' ? 2 : !bytes && next === 'u' ? 4 : !bytes && next === 'U' ? 8 : 0;
  if (hexLength > 0) {
    const hex = text.slice(pos + 2, pos + 2 + hexLength);
    if (hex.length !== hexLength || !HEX_DIGITS.test(hex)) throw new PySyntaxError(`truncated \\${next} escape`, pos);
    const cp = Number.parseInt(hex, 16);
    if (cp > 0x10ffff) throw new PySyntaxError('illegal Unicode character', pos);
    return [String.fromCodePoint(cp), 2 + hexLength];
  }
  if (next === 'N' && !bytes) throw new PySyntaxError('\\N{...} escapes are not supported by this decoder', pos);
  // Python keeps unknown escapes as written (with a warning).
  return [`\\${next}`, 2];
}

/** Parses one Python expression (eval mode). Throws {@link PySyntaxError}; callers turn it into a typed result. */
export function parsePythonExpression(text: string): PyNode {
  const parser = new ExpressionParser(tokenize(text));
  const node = parser.parseTopLevel();
  return node;
}

class ExpressionParser {
  private index = 0;

  constructor(private readonly tokens: Token[]) {}

  private get current(): Token {
    return this.tokens[this.index] as Token;
  }

  private peek(offset = 1): Token {
    return this.tokens[Math.min(this.index + offset, this.tokens.length - 1)] as Token;
  }

  private isOp(value: string, token = this.current): boolean {
    return token.t === 'op' && token.v === value;
  }

  private isKeyword(value: string, token = this.current): boolean {
    return token.t === 'name' && token.v === value;
  }

  private fail(message = 'invalid syntax', token = this.current): never {
    throw new PySyntaxError(message, token.pos);
  }

  private expectOp(value: string): void {
    if (!this.isOp(value))
      this.fail(this.current.t === 'end' ? `'${value}' was never closed or is missing` : 'invalid syntax');
    this.index++;
  }

  parseTopLevel(): PyNode {
    const node = this.parseTupleOrExpression(true);
    if (this.current.t !== 'end') this.fail();
    return node;
  }

  /** `a, b` at statement level or inside parentheses. */
  private parseTupleOrExpression(allowStar: boolean): PyNode {
    const first = this.parseStarOrNamed(allowStar);
    if (!this.isOp(',')) {
      if (first.k === 'Starred') this.fail("can't use starred expression here");
      return first;
    }
    const elts = [first];
    while (this.isOp(',')) {
      this.index++;
      if (this.atExpressionEnd()) break;
      elts.push(this.parseStarOrNamed(allowStar));
    }
    return { k: 'Tuple', elts };
  }

  private atExpressionEnd(): boolean {
    const token = this.current;
    return (
      token.t === 'end' ||
      (token.t === 'op' && [')', ']', '}', '=', ':'].includes(token.v)) ||
      this.isKeyword('for', token)
    );
  }

  private parseStarOrNamed(allowStar: boolean): PyNode {
    if (allowStar && this.isOp('*')) {
      this.index++;
      return { k: 'Starred', value: this.parseBitOr() };
    }
    return this.parseNamed();
  }

  private parseNamed(): PyNode {
    if (this.current.t === 'name' && this.isOp(':=', this.peek())) {
      const target: PyNode = { k: 'Name', id: this.current.v };
      this.index += 2;
      return { k: 'NamedExpr', target, value: this.parseTest() };
    }
    return this.parseTest();
  }

  private parseTest(): PyNode {
    if (this.isKeyword('lambda')) return this.parseLambda();
    const body = this.parseOr();
    if (this.isKeyword('if')) {
      this.index++;
      const test = this.parseOr();
      if (!this.isKeyword('else')) this.fail("expected 'else' after 'if' expression");
      this.index++;
      const orelse = this.parseTest();
      return { k: 'IfExp', test, body, orelse };
    }
    return body;
  }

  private parseTestNoCond(): PyNode {
    if (this.isKeyword('lambda')) return this.parseLambda();
    return this.parseOr();
  }

  private parseLambda(): PyNode {
    this.index++;
    const params: string[] = [];
    while (!this.isOp(':')) {
      const token = this.current;
      if (token.t === 'end') this.fail();
      params.push(token.t === 'name' || token.t === 'op' ? token.v : '?');
      this.index++;
    }
    this.index++;
    return { k: 'Lambda', params: params.join('').replaceAll(',', ', '), body: this.parseTest() };
  }

  private parseOr(): PyNode {
    const first = this.parseAnd();
    if (!this.isKeyword('or')) return first;
    const values = [first];
    while (this.isKeyword('or')) {
      this.index++;
      values.push(this.parseAnd());
    }
    return { k: 'BoolOp', op: 'or', values };
  }

  private parseAnd(): PyNode {
    const first = this.parseNot();
    if (!this.isKeyword('and')) return first;
    const values = [first];
    while (this.isKeyword('and')) {
      this.index++;
      values.push(this.parseNot());
    }
    return { k: 'BoolOp', op: 'and', values };
  }

  private parseNot(): PyNode {
    if (this.isKeyword('not')) {
      this.index++;
      return { k: 'UnaryOp', op: 'not', operand: this.parseNot() };
    }
    return this.parseComparison();
  }

  private parseComparison(): PyNode {
    const left = this.parseBitOr();
    const ops: string[] = [];
    const comparators: PyNode[] = [];
    for (;;) {
      const token = this.current;
      let op: string | undefined;
      if (token.t === 'op' && ['<', '>', '==', '>=', '<=', '!='].includes(token.v)) {
        op = token.v;
        this.index++;
      } else if (this.isKeyword('in')) {
        op = 'in';
        this.index++;
      } else if (this.isKeyword('not') && this.isKeyword('in', this.peek())) {
        op = 'not in';
        this.index += 2;
      } else if (this.isKeyword('is')) {
        this.index++;
        op = 'is';
        if (this.isKeyword('not')) {
          this.index++;
          op = 'is not';
        }
      }
      if (op === undefined) break;
      ops.push(op);
      comparators.push(this.parseBitOr());
    }
    return ops.length === 0 ? left : { k: 'Compare', left, ops, comparators };
  }

  /** `|`, then `^`, `&`, shifts, `+ -`, `* / // % @` (left-associative), then unary operators: level by level. */
  private parseBinary(level: number): PyNode {
    if (level === BINARY_LEVELS.length) return this.parseFactor();
    const operators = BINARY_LEVELS[level] as readonly string[];
    let left = this.parseBinary(level + 1);
    for (;;) {
      const token = this.current;
      if (token.t !== 'op' || !operators.includes(token.v)) return left;
      this.index++;
      left = { k: 'BinOp', op: token.v as BinaryOperator, left, right: this.parseBinary(level + 1) };
    }
  }

  // Methods, not arrow-function fields: those are rebuilt (and, under tsx/esbuild's keepNames, renamed) per parser.
  private parseBitOr(): PyNode {
    return this.parseBinary(0);
  }

  private parseFactor(): PyNode {
    const token = this.current;
    if (token.t === 'op' && (token.v === '-' || token.v === '+' || token.v === '~')) {
      this.index++;
      return { k: 'UnaryOp', op: token.v, operand: this.parseFactor() };
    }
    return this.parsePower();
  }

  private parsePower(): PyNode {
    if (this.isKeyword('await')) this.fail("'await' outside function");
    const base = this.parsePostfix();
    if (this.isOp('**')) {
      this.index++;
      return { k: 'BinOp', op: '**', left: base, right: this.parseFactor() };
    }
    return base;
  }

  private parsePostfix(): PyNode {
    let node = this.parseAtom();
    for (;;) {
      if (this.isOp('.')) {
        this.index++;
        const name = this.current;
        if (name.t !== 'name' || HARD_KEYWORDS.has(name.v)) this.fail();
        this.index++;
        node = { k: 'Attribute', value: node, attr: name.v };
      } else if (this.isOp('(')) {
        node = this.parseCall(node);
      } else if (this.isOp('[')) {
        this.index++;
        const slice = this.parseSlices();
        this.expectOp(']');
        node = { k: 'Subscript', value: node, slice };
      } else {
        return node;
      }
    }
  }

  private parseSlices(): PyNode {
    const first = this.parseSlice();
    if (!this.isOp(',')) return first;
    const elts = [first];
    while (this.isOp(',')) {
      this.index++;
      if (this.isOp(']')) break;
      elts.push(this.parseSlice());
    }
    return { k: 'Tuple', elts };
  }

  private parseSlice(): PyNode {
    let lower: PyNode | null = null;
    if (!this.isOp(':')) {
      const value = this.parseStarOrNamed(true);
      if (!this.isOp(':')) return value;
      lower = value;
    }
    this.index++;
    let upper: PyNode | null = null;
    let step: PyNode | null = null;
    if (!this.isOp(':') && !this.isOp(']') && !this.isOp(',')) upper = this.parseTest();
    if (this.isOp(':')) {
      this.index++;
      if (!this.isOp(']') && !this.isOp(',')) step = this.parseTest();
    }
    return { k: 'Slice', lower, upper, step };
  }

  private parseCall(func: PyNode): PyNode {
    this.index++;
    const args: PyNode[] = [];
    const keywords: PyKeyword[] = [];
    while (!this.isOp(')')) {
      if (this.current.t === 'end') this.fail("'(' was never closed");
      if (this.isOp('**')) {
        this.index++;
        keywords.push({ arg: null, value: this.parseTest() });
      } else if (this.isOp('*')) {
        this.index++;
        args.push({ k: 'Starred', value: this.parseTest() });
      } else if (this.current.t === 'name' && this.isOp('=', this.peek())) {
        const name = this.current.v;
        // A repeated keyword is a compile-time error in CPython, but ast.parse accepts it (and BFCL keeps the last).
        if (HARD_KEYWORDS.has(name)) this.fail('cannot assign to keyword');
        this.index += 2;
        keywords.push({ arg: name, value: this.parseTest() });
      } else {
        const start = this.current;
        let value = this.parseNamed();
        if (this.isKeyword('for') || this.isKeyword('async')) {
          value = { k: 'GeneratorExp', elt: value, generators: this.parseComprehensions() };
          if (args.length > 0 || keywords.length > 0 || !this.isOp(')'))
            this.fail('Generator expression must be parenthesized', start);
        }
        if (keywords.some((keyword) => keyword.arg === null))
          this.fail('positional argument follows keyword argument unpacking', start);
        if (keywords.length > 0) this.fail('positional argument follows keyword argument', start);
        args.push(value);
      }
      if (this.isOp(',')) this.index++;
      else if (!this.isOp(')')) this.fail();
    }
    this.index++;
    return { k: 'Call', func, args, keywords };
  }

  private parseComprehensions(): PyComprehension[] {
    const generators: PyComprehension[] = [];
    while (this.isKeyword('for') || (this.isKeyword('async') && this.isKeyword('for', this.peek()))) {
      const isAsync = this.isKeyword('async');
      this.index += isAsync ? 2 : 1;
      const target = this.parseTargetList();
      if (!this.isKeyword('in')) this.fail("expected 'in'");
      this.index++;
      const iter = this.parseOr();
      const ifs: PyNode[] = [];
      while (this.isKeyword('if')) {
        this.index++;
        ifs.push(this.parseTestNoCond());
      }
      generators.push({ target, iter, ifs, isAsync });
    }
    return generators;
  }

  private parseTargetList(): PyNode {
    const first = this.parseStarOrBitOr();
    if (!this.isOp(',')) return first;
    const elts = [first];
    while (this.isOp(',')) {
      this.index++;
      if (this.isKeyword('in')) break;
      elts.push(this.parseStarOrBitOr());
    }
    return { k: 'Tuple', elts };
  }

  private parseStarOrBitOr(): PyNode {
    if (this.isOp('*')) {
      this.index++;
      return { k: 'Starred', value: this.parseBitOr() };
    }
    return this.parseBitOr();
  }

  private parseAtom(): PyNode {
    const token = this.current;
    switch (token.t) {
      case 'number':
        this.index++;
        return { k: 'Constant', value: token.v };
      case 'string':
        return this.parseStrings();
      case 'name':
        this.index++;
        if (token.v === 'True') return { k: 'Constant', value: true };
        if (token.v === 'False') return { k: 'Constant', value: false };
        if (token.v === 'None') return { k: 'Constant', value: null };
        if (HARD_KEYWORDS.has(token.v)) this.fail('invalid syntax', token);
        return { k: 'Name', id: token.v };
      case 'op':
        break;
      default:
        this.fail('unexpected EOF while parsing');
    }
    switch (token.v) {
      case '...':
        this.index++;
        return { k: 'Constant', value: ELLIPSIS };
      case '(':
        return this.parseParenthesized();
      case '[':
        return this.parseListDisplay();
      case '{':
        return this.parseBraceDisplay();
      default:
        this.fail();
    }
  }

  private parseStrings(): PyNode {
    const parts: StringLiteral[] = [];
    while (this.current.t === 'string') {
      parts.push(this.current.v);
      this.index++;
    }
    const first = parts[0] as StringLiteral;
    const hasBytes = parts.some((part) => part.kind === 'bytes');
    if (hasBytes && !parts.every((part) => part.kind === 'bytes')) this.fail('cannot mix bytes and nonbytes literals');
    if (parts.some((part) => part.kind === 'f'))
      return { k: 'JoinedStr', source: parts.map((part) => part.source).join(' ') };
    const value = parts.map((part) => part.value).join('');
    if (hasBytes) return { k: 'Constant', value: new PyOpaque('bytes', `b${pyStrRepr(value)}`) };
    return first.unicodePrefix ? { k: 'Constant', value, kind: 'u' } : { k: 'Constant', value };
  }

  private parseParenthesized(): PyNode {
    this.index++;
    if (this.isOp(')')) {
      this.index++;
      return { k: 'Tuple', elts: [] };
    }
    if (this.isKeyword('yield')) this.fail("'yield' outside function");
    const first = this.parseStarOrNamed(true);
    if (this.isKeyword('for') || this.isKeyword('async')) {
      const node: PyNode = { k: 'GeneratorExp', elt: first, generators: this.parseComprehensions() };
      this.expectOp(')');
      return node;
    }
    if (this.isOp(')')) {
      this.index++;
      if (first.k === 'Starred') this.fail("can't use starred expression here");
      return first;
    }
    const elts = [first];
    while (this.isOp(',')) {
      this.index++;
      if (this.isOp(')')) break;
      elts.push(this.parseStarOrNamed(true));
    }
    this.expectOp(')');
    return { k: 'Tuple', elts };
  }

  private parseListDisplay(): PyNode {
    this.index++;
    if (this.isOp(']')) {
      this.index++;
      return { k: 'List', elts: [] };
    }
    const first = this.parseStarOrNamed(true);
    if (this.isKeyword('for') || this.isKeyword('async')) {
      const node: PyNode = { k: 'ListComp', elt: first, generators: this.parseComprehensions() };
      this.expectOp(']');
      return node;
    }
    const elts = [first];
    while (this.isOp(',')) {
      this.index++;
      if (this.isOp(']')) break;
      elts.push(this.parseStarOrNamed(true));
    }
    this.expectOp(']');
    return { k: 'List', elts };
  }

  private parseBraceDisplay(): PyNode {
    this.index++;
    if (this.isOp('}')) {
      this.index++;
      return { k: 'Dict', keys: [], values: [] };
    }
    if (this.isOp('**')) return this.parseDictRest(null);
    const first = this.parseStarOrNamed(true);
    if (this.isOp(':')) {
      this.index++;
      const value = this.parseTest();
      if (this.isKeyword('for') || this.isKeyword('async')) {
        const node: PyNode = { k: 'DictComp', key: first, value, generators: this.parseComprehensions() };
        this.expectOp('}');
        return node;
      }
      return this.parseDictRest({ key: first, value });
    }
    if (this.isKeyword('for') || this.isKeyword('async')) {
      const node: PyNode = { k: 'SetComp', elt: first, generators: this.parseComprehensions() };
      this.expectOp('}');
      return node;
    }
    const elts = [first];
    while (this.isOp(',')) {
      this.index++;
      if (this.isOp('}')) break;
      elts.push(this.parseStarOrNamed(true));
    }
    this.expectOp('}');
    return { k: 'Set', elts };
  }

  private parseDictRest(first: { key: PyNode; value: PyNode } | null): PyNode {
    const keys: (PyNode | null)[] = [];
    const values: PyNode[] = [];
    const readItem = (): void => {
      if (this.isOp('**')) {
        this.index++;
        keys.push(null);
        values.push(this.parseBitOr());
        return;
      }
      keys.push(this.parseTest());
      this.expectOp(':');
      values.push(this.parseTest());
    };
    if (first) {
      keys.push(first.key);
      values.push(first.value);
    } else {
      readItem();
    }
    while (this.isOp(',')) {
      this.index++;
      if (this.isOp('}')) break;
      readItem();
    }
    this.expectOp('}');
    return { k: 'Dict', keys, values };
  }
}

// CPython's ast._Precedence values; unparse adds parentheses when a child binds more loosely than its slot requires.
const P = {
  NAMED_EXPR: 1,
  TUPLE: 2,
  YIELD: 3,
  TEST: 4,
  OR: 5,
  AND: 6,
  NOT: 7,
  CMP: 8,
  EXPR: 9,
  BOR: 9,
  BXOR: 10,
  BAND: 11,
  SHIFT: 12,
  ARITH: 13,
  TERM: 14,
  FACTOR: 15,
  POWER: 16,
  AWAIT: 17,
  ATOM: 18,
} as const;

const BINOP_PRECEDENCE: Record<BinaryOperator, number> = {
  '+': P.ARITH,
  '-': P.ARITH,
  '*': P.TERM,
  '@': P.TERM,
  '/': P.TERM,
  '%': P.TERM,
  '//': P.TERM,
  '<<': P.SHIFT,
  '>>': P.SHIFT,
  '|': P.BOR,
  '^': P.BXOR,
  '&': P.BAND,
  '**': P.POWER,
};

/**
 * Python's `ast.unparse` for the nodes this parser builds: same spacing, same parentheses, constants written with
 * `repr` (`inf` as `1e309`). f-strings are written as their source text (CPython regenerates them; this is the one
 * place the text can differ).
 */
export function unparsePython(node: PyNode, precedence: number = P.TEST): string {
  const wrap = (needed: number, text: string): string => (precedence > needed ? `(${text})` : text);
  switch (node.k) {
    case 'Constant':
      return unparseConstant(node.value, node.kind);
    case 'JoinedStr':
      return node.source;
    case 'Name':
      return node.id;
    case 'Attribute': {
      const value = unparsePython(node.value, P.ATOM);
      const spacer =
        node.value.k === 'Constant' && typeof node.value.value === 'number' && Number.isInteger(node.value.value)
          ? ' '
          : '';
      return `${value}${spacer}.${node.attr}`;
    }
    case 'Call': {
      const parts = [
        ...node.args.map((arg) => unparsePython(arg)),
        ...node.keywords.map((kw) =>
          kw.arg === null ? `**${unparsePython(kw.value)}` : `${kw.arg}=${unparsePython(kw.value)}`,
        ),
      ];
      return `${unparsePython(node.func, P.ATOM)}(${parts.join(', ')})`;
    }
    case 'List':
      return `[${node.elts.map((elt) => unparsePython(elt)).join(', ')}]`;
    case 'Set':
      return `{${node.elts.map((elt) => unparsePython(elt)).join(', ')}}`;
    case 'Tuple': {
      const body =
        node.elts.length === 1
          ? `${unparsePython(node.elts[0] as PyNode)},`
          : node.elts.map((elt) => unparsePython(elt)).join(', ');
      return node.elts.length === 0 || precedence > P.TUPLE ? `(${body})` : body;
    }
    case 'Dict':
      return `{${node.keys
        .map((key, i) => {
          const value = node.values[i] as PyNode;
          return key === null ? `**${unparsePython(value, P.EXPR)}` : `${unparsePython(key)}: ${unparsePython(value)}`;
        })
        .join(', ')}}`;
    case 'UnaryOp': {
      const opPrecedence = node.op === 'not' ? P.NOT : P.FACTOR;
      const operator = node.op === 'not' ? 'not ' : node.op;
      return wrap(opPrecedence, `${operator}${unparsePython(node.operand, opPrecedence)}`);
    }
    case 'BinOp': {
      const opPrecedence = BINOP_PRECEDENCE[node.op];
      const rightAssoc = node.op === '**';
      const left = unparsePython(node.left, rightAssoc ? opPrecedence + 1 : opPrecedence);
      const right = unparsePython(node.right, rightAssoc ? opPrecedence : opPrecedence + 1);
      return wrap(opPrecedence, `${left} ${node.op} ${right}`);
    }
    case 'BoolOp': {
      let level: number = node.op === 'and' ? P.AND : P.OR;
      const start = level;
      const parts = node.values.map((value) => {
        level += 1;
        return unparsePython(value, level);
      });
      return wrap(start, parts.join(` ${node.op} `));
    }
    case 'Compare': {
      const parts = [unparsePython(node.left, P.CMP + 1)];
      node.ops.forEach((op, i) => parts.push(op, unparsePython(node.comparators[i] as PyNode, P.CMP + 1)));
      return wrap(P.CMP, parts.join(' '));
    }
    case 'IfExp':
      return wrap(
        P.TEST,
        `${unparsePython(node.body, P.TEST + 1)} if ${unparsePython(node.test, P.TEST + 1)} else ${unparsePython(node.orelse, P.TEST)}`,
      );
    case 'Lambda':
      return wrap(P.TEST, `lambda${node.params ? ` ${node.params}` : ''}: ${unparsePython(node.body, P.TEST)}`);
    case 'NamedExpr':
      return wrap(P.TUPLE, `${unparsePython(node.target, P.ATOM)} := ${unparsePython(node.value, P.ATOM)}`);
    case 'Starred':
      return `*${unparsePython(node.value, P.EXPR)}`;
    case 'Subscript': {
      const slice =
        node.slice.k === 'Tuple' && node.slice.elts.length > 0
          ? node.slice.elts.length === 1
            ? `${unparsePython(node.slice.elts[0] as PyNode)},`
            : node.slice.elts.map((elt) => unparsePython(elt)).join(', ')
          : unparsePython(node.slice);
      return `${unparsePython(node.value, P.ATOM)}[${slice}]`;
    }
    case 'Slice':
      return `${node.lower ? unparsePython(node.lower) : ''}:${node.upper ? unparsePython(node.upper) : ''}${node.step ? `:${unparsePython(node.step)}` : ''}`;
    case 'ListComp':
      return `[${unparsePython(node.elt)}${unparseComprehensions(node.generators)}]`;
    case 'SetComp':
      return `{${unparsePython(node.elt)}${unparseComprehensions(node.generators)}}`;
    case 'GeneratorExp':
      return `(${unparsePython(node.elt)}${unparseComprehensions(node.generators)})`;
    case 'DictComp':
      return `{${unparsePython(node.key)}: ${unparsePython(node.value)}${unparseComprehensions(node.generators)}}`;
  }
}

function unparseComprehensions(generators: PyComprehension[]): string {
  return generators
    .map(
      (gen) =>
        `${gen.isAsync ? ' async for ' : ' for '}${unparsePython(gen.target, P.TUPLE)} in ${unparsePython(gen.iter, P.TEST + 1)}${gen.ifs
          .map((cond) => ` if ${unparsePython(cond, P.TEST + 1)}`)
          .join('')}`,
    )
    .join('');
}

function unparseConstant(value: ConstantValue, kind: 'u' | undefined): string {
  if (value === ELLIPSIS) return '...';
  if (value instanceof JsonFloat)
    return pyFloatRepr(value.value).replace('inf', '1e309').replace('nan', '(1e309-1e309)');
  if (value instanceof PyOpaque) return value.repr.replace('inf', '1e309');
  return (kind === 'u' ? 'u' : '') + pyRepr(value);
}
