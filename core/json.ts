/**
 * Lossless JSON: a value model that keeps Python's int/float distinction, a parser that never throws, and a writer with
 * a canonical mode. `JSON.parse` turns `5.0` into `5`, but BFCL's checker (Python `json.loads`) rejects `5.0` for an
 * `integer` parameter, so every JSON that reaches the checker, a sample or a hash goes through here.
 */

/**
 * A Python float. Floats are tagged because a JavaScript number cannot say whether it was written `5` or `5.0`; plain
 * numbers are Python ints (non-integral plain numbers are treated as floats too, defensively). `toJSON` keeps a stray
 * `JSON.stringify` from throwing, but it drops the tag: write with {@link stringifyJson} to keep it.
 */
export class JsonFloat {
  constructor(readonly value: number) {}

  toJSON(): number {
    return this.value;
  }
}

export type JsonValue = null | boolean | number | string | JsonFloat | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

/** Where a parse failed: a 0-based offset into the text and the 1-based line and column a person would look at. */
export interface TextPosition {
  offset: number;
  line: number;
  column: number;
}

export interface JsonParseError extends TextPosition {
  message: string;
}

export type JsonParseResult = { ok: true; value: JsonValue } | { ok: false; error: JsonParseError };

/** True for a Python int: a plain integral number. */
export function isJsonInt(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value);
}

/** True for a Python float: a tagged float, or a plain number with a fraction (which can only be a float). */
export function isJsonFloat(value: unknown): value is JsonFloat | number {
  return value instanceof JsonFloat || (typeof value === 'number' && !Number.isInteger(value));
}

/** The numeric value of an int or a float, or undefined for anything else (booleans included: they are not numbers here). */
export function numericValue(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (value instanceof JsonFloat) return value.value;
  return undefined;
}

/** A plain object (not an array, not a tagged value). */
export function isJsonObject(value: unknown): value is JsonObject {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.getPrototypeOf(value) === Object.prototype
  );
}

/**
 * Sets `key` on a plain object without letting `__proto__` rewrite the prototype, which a naive `obj[key] = v` would do
 * for untrusted JSON.
 */
export function setOwn<T>(target: Record<string, T>, key: string, value: T): void {
  if (key === '__proto__')
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}

// What `JSON.parse` would read differently from Python: a float lexeme (it always has a digit right before its `.` or
// exponent: `5.0` would come back as the int 5) and the non-standard constants it refuses. Text without one, outside
// its strings, parses natively with the same result.
const NOT_NATIVE = /\d[.eE]|NaN|Infinity/;
// Every JSON string literal, for blanking them out: in valid JSON a `"` outside a string always opens one, so a scan
// from the start meets each literal whole (the unrolled form keeps the regexp linear on long strings).
const STRING_LITERAL = /"[^"\\]*(?:\\.[^"\\]*)*"/g;
const MAX_DEPTH = 1000;

/**
 * Parses JSON text into the lossless value model. Never throws: a syntax error comes back with its position. Accepts
 * what Python's `json.loads` accepts, including `NaN`, `Infinity` and `-Infinity` (as floats); duplicate keys keep the
 * last value, as in both Python and JavaScript. Integers beyond 2^53 lose precision (documented deviation from Python).
 */
export function parseJson(text: string): JsonParseResult {
  // Most text has `2.0` or `e.g.` only inside strings (descriptions, model output): the lexemes outside them decide.
  if (!NOT_NATIVE.test(text) || !NOT_NATIVE.test(text.replace(STRING_LITERAL, '""'))) {
    try {
      return { ok: true, value: JSON.parse(text) as JsonValue };
    } catch {
      // Fall through: the slow parser reports where the error is.
    }
  }
  const parser = new JsonParser(text);
  return parser.parseDocument();
}

class JsonSyntaxError {
  constructor(
    readonly message: string,
    readonly offset: number,
  ) {}
}

class JsonParser {
  private pos = 0;

  constructor(private readonly text: string) {}

  parseDocument(): JsonParseResult {
    try {
      this.skipWhitespace();
      const value = this.parseValue(0);
      this.skipWhitespace();
      if (this.pos < this.text.length) this.fail('unexpected data after the JSON value');
      return { ok: true, value };
    } catch (err) {
      if (err instanceof JsonSyntaxError)
        return { ok: false, error: { message: err.message, ...positionAt(this.text, err.offset) } };
      throw err;
    }
  }

  private fail(message: string, offset = this.pos): never {
    throw new JsonSyntaxError(message, offset);
  }

  private skipWhitespace(): void {
    const text = this.text;
    let pos = this.pos;
    while (pos < text.length) {
      const c = text.charCodeAt(pos);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) pos++;
      else break;
    }
    this.pos = pos;
  }

  private parseValue(depth: number): JsonValue {
    if (depth > MAX_DEPTH) this.fail('nesting too deep');
    const c = this.text.charCodeAt(this.pos);
    switch (c) {
      case 0x7b: // {
        return this.parseObject(depth);
      case 0x5b: // [
        return this.parseArray(depth);
      case 0x22: // "
        return this.parseString();
      case 0x74: // t
        return this.expectWord('true', true);
      case 0x66: // f
        return this.expectWord('false', false);
      case 0x6e: // n
        return this.expectWord('null', null);
      case 0x4e: // N
        return this.expectWord('NaN', new JsonFloat(Number.NaN));
      case 0x49: // I
        return this.expectWord('Infinity', new JsonFloat(Number.POSITIVE_INFINITY));
      default:
        if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.parseNumber();
        if (Number.isNaN(c)) this.fail('unexpected end of input');
        this.fail(`unexpected character ${JSON.stringify(this.text[this.pos])}`);
    }
  }

  private expectWord<T extends JsonValue>(word: string, value: T): T {
    if (!this.text.startsWith(word, this.pos)) this.fail(`unexpected character ${JSON.stringify(this.text[this.pos])}`);
    this.pos += word.length;
    return value;
  }

  private parseNumber(): JsonValue {
    const text = this.text;
    const start = this.pos;
    let pos = start;
    if (text.charCodeAt(pos) === 0x2d) {
      pos++;
      if (text.startsWith('Infinity', pos)) {
        this.pos = pos + 8;
        return new JsonFloat(Number.NEGATIVE_INFINITY);
      }
    }
    const intStart = pos;
    while (isDigit(text.charCodeAt(pos))) pos++;
    if (pos === intStart) this.fail('invalid number', start);
    if (text.charCodeAt(intStart) === 0x30 && pos - intStart > 1) this.fail('leading zeros are not allowed', start);
    let isFloat = false;
    if (text.charCodeAt(pos) === 0x2e) {
      isFloat = true;
      pos++;
      const fracStart = pos;
      while (isDigit(text.charCodeAt(pos))) pos++;
      if (pos === fracStart) this.fail('invalid number: digits expected after the decimal point', pos);
    }
    const e = text.charCodeAt(pos);
    if (e === 0x65 || e === 0x45) {
      isFloat = true;
      pos++;
      const sign = text.charCodeAt(pos);
      if (sign === 0x2b || sign === 0x2d) pos++;
      const expStart = pos;
      while (isDigit(text.charCodeAt(pos))) pos++;
      if (pos === expStart) this.fail('invalid number: digits expected in the exponent', pos);
    }
    this.pos = pos;
    const value = Number(text.slice(start, pos));
    return isFloat ? new JsonFloat(value) : value;
  }

  private parseString(): string {
    const text = this.text;
    const start = this.pos;
    let pos = start + 1;
    let chunkStart = pos;
    let out = '';
    for (;;) {
      if (pos >= text.length) this.fail('unterminated string', start);
      const c = text.charCodeAt(pos);
      if (c === 0x22) {
        out += text.slice(chunkStart, pos);
        this.pos = pos + 1;
        return out;
      }
      if (c < 0x20) this.fail('control character in string', pos);
      if (c === 0x5c) {
        out += text.slice(chunkStart, pos);
        const esc = text[pos + 1];
        switch (esc) {
          case '"':
            out += '"';
            break;
          case '\\':
            out += '\\';
            break;
          case '/':
            out += '/';
            break;
          case 'b':
            out += '\b';
            break;
          case 'f':
            out += '\f';
            break;
          case 'n':
            out += '\n';
            break;
          case 'r':
            out += '\r';
            break;
          case 't':
            out += '\t';
            break;
          case 'u': {
            const hex = text.slice(pos + 2, pos + 6);
            if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail('invalid \\u escape', pos);
            out += String.fromCharCode(Number.parseInt(hex, 16));
            pos += 4;
            break;
          }
          default:
            this.fail('invalid escape', pos);
        }
        pos += 2;
        chunkStart = pos;
        continue;
      }
      pos++;
    }
  }

  private parseArray(depth: number): JsonValue[] {
    this.pos++;
    const out: JsonValue[] = [];
    this.skipWhitespace();
    if (this.text.charCodeAt(this.pos) === 0x5d) {
      this.pos++;
      return out;
    }
    for (;;) {
      this.skipWhitespace();
      out.push(this.parseValue(depth + 1));
      this.skipWhitespace();
      const c = this.text.charCodeAt(this.pos);
      if (c === 0x2c) {
        this.pos++;
        continue;
      }
      if (c === 0x5d) {
        this.pos++;
        return out;
      }
      this.fail(Number.isNaN(c) ? 'unterminated array' : "expected ',' or ']'");
    }
  }

  private parseObject(depth: number): JsonObject {
    this.pos++;
    const out: JsonObject = {};
    this.skipWhitespace();
    if (this.text.charCodeAt(this.pos) === 0x7d) {
      this.pos++;
      return out;
    }
    for (;;) {
      this.skipWhitespace();
      if (this.text.charCodeAt(this.pos) !== 0x22)
        this.fail(Number.isNaN(this.text.charCodeAt(this.pos)) ? 'unterminated object' : 'expected a string key');
      const key = this.parseString();
      this.skipWhitespace();
      if (this.text.charCodeAt(this.pos) !== 0x3a) this.fail("expected ':'");
      this.pos++;
      this.skipWhitespace();
      setOwn(out, key, this.parseValue(depth + 1));
      this.skipWhitespace();
      const c = this.text.charCodeAt(this.pos);
      if (c === 0x2c) {
        this.pos++;
        continue;
      }
      if (c === 0x7d) {
        this.pos++;
        return out;
      }
      this.fail(Number.isNaN(c) ? 'unterminated object' : "expected ',' or '}'");
    }
  }
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

const isJsonWhitespace = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/**
 * The texts of a JSON array's elements, cut at the array's own commas without parsing them (strings and nesting are
 * stepped over), each without the JSON whitespace around it; undefined when the text is not one array. The elements
 * are not checked: each is JSON only if it parses. A reader of many arrays whose elements repeat (the tools of stored
 * toolsets: thousands of lists made of a few dozen tools) looks each element up by its text instead of parsing it.
 */
export function jsonArrayElementTexts(text: string): string[] | undefined {
  const end = text.length;
  let pos = 0;
  while (pos < end && isJsonWhitespace(text.charCodeAt(pos))) pos++;
  if (text.charCodeAt(pos) !== 0x5b) return undefined;
  const out: string[] = [];
  let depth = 0;
  let start = ++pos;
  const element = (stop: number): string => {
    let from = start;
    let to = stop;
    while (from < to && isJsonWhitespace(text.charCodeAt(from))) from++;
    while (to > from && isJsonWhitespace(text.charCodeAt(to - 1))) to--;
    return text.slice(from, to);
  };
  for (; pos < end; pos++) {
    const c = text.charCodeAt(pos);
    if (c === 0x22) {
      // A string: to its closing quote, stepping over escapes.
      for (pos++; pos < end; pos++) {
        const d = text.charCodeAt(pos);
        if (d === 0x5c) pos++;
        else if (d === 0x22) break;
      }
      if (pos >= end) return undefined;
    } else if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) {
      if (depth > 0) {
        depth--;
        continue;
      }
      if (c !== 0x5d) return undefined;
      const last = element(pos);
      // Only `[]` ends with nothing before its bracket; after a comma (`[1,]`) it is not an array.
      if (last !== '') out.push(last);
      else if (out.length > 0) return undefined;
      for (pos++; pos < end; pos++) if (!isJsonWhitespace(text.charCodeAt(pos))) return undefined;
      return out;
    } else if (c === 0x2c && depth === 0) {
      const item = element(pos);
      if (item === '') return undefined;
      out.push(item);
      start = pos + 1;
    }
  }
  return undefined;
}

/**
 * Where the value of the top-level member `key` of a JSON object's text lies, `[start, end)` without the whitespace
 * around it; undefined when the text is not one object, has no such member, names it twice, or has a top-level key
 * with an escape (which could spell `key`). Like {@link jsonArrayElementTexts}, nothing is parsed or checked: the text
 * is JSON only if it parses (the text after the member is not scanned when it cannot name the member again, so a
 * span may come back for a text that does not parse). An importer whose records repeat one tool list under many conversations looks the list up
 * by its text instead of parsing and keying it again (datasets/openai-import.ts).
 */
export function jsonMemberSpan(text: string, key: string): { start: number; end: number } | undefined {
  const end = text.length;
  let pos = 0;
  while (pos < end && isJsonWhitespace(text.charCodeAt(pos))) pos++;
  if (text.charCodeAt(pos) !== 0x7b) return undefined;
  /** Nesting below the object's own members (0: between them). */
  let depth = 0;
  /** At depth 0: the next string is a key (after `{` or `,`), not a value. */
  let atKey = true;
  /** The member just read is `key`; its value starts at `start` (-1 until the colon). */
  let inMember = false;
  let start = -1;
  let found: { start: number; end: number } | undefined;
  const quotedKey = `"${key}"`;
  const close = (stop: number): boolean => {
    if (!inMember) return true;
    let to = stop;
    while (to > start && isJsonWhitespace(text.charCodeAt(to - 1))) to--;
    if (start < 0 || to === start || found) return false;
    found = { start, end: to };
    inMember = false;
    return true;
  };
  for (pos++; pos < end; pos++) {
    const c = text.charCodeAt(pos);
    if (c === 0x22) {
      const open = pos;
      let escaped = false;
      for (pos++; pos < end; pos++) {
        const d = text.charCodeAt(pos);
        if (d === 0x5c) {
          escaped = true;
          pos++;
        } else if (d === 0x22) break;
      }
      if (pos >= end) return undefined;
      if (depth === 0 && atKey) {
        if (escaped) return undefined;
        atKey = false;
        if (pos - open - 1 === key.length && text.startsWith(key, open + 1)) {
          if (found) return undefined;
          inMember = true;
        }
      }
    } else if (c === 0x3a && depth === 0 && inMember && start < 0) {
      start = pos + 1;
      while (start < end && isJsonWhitespace(text.charCodeAt(start))) start++;
    } else if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) {
      if (depth > 0) {
        depth--;
        continue;
      }
      if (c !== 0x7d || !close(pos)) return undefined;
      for (pos++; pos < end; pos++) if (!isJsonWhitespace(text.charCodeAt(pos))) return undefined;
      return found;
    } else if (c === 0x2c && depth === 0) {
      if (!close(pos)) return undefined;
      // Found, and the rest names no key that could be `key` (spelled plainly or with a `\u` escape): the member
      // is not named again. The rest is left unscanned; a reader parses the text anyway.
      if (found && text.indexOf(quotedKey, pos) < 0 && text.indexOf('\\u', pos) < 0) return found;
      start = -1;
      atKey = true;
    }
  }
  return undefined;
}

/** Converts an offset into a 1-based line and column (columns count UTF-16 code units). */
export function positionAt(text: string, offset: number): TextPosition {
  let line = 1;
  let lineStart = 0;
  const end = Math.min(offset, text.length);
  for (let i = 0; i < end; i++) {
    if (text.charCodeAt(i) === 0x0a) {
      line++;
      lineStart = i + 1;
    }
  }
  return { offset, line, column: end - lineStart + 1 };
}

/** How {@link stringifyJson} separates items: compact (`,` `:`), or Python's `json.dumps` default (`, ` `: `). */
export type JsonSeparators = 'compact' | 'python';

export interface StringifyOptions {
  /** Sort object keys recursively by UTF-16 code units (RFC 8785 order). Defaults to false (insertion order). */
  sortKeys?: boolean;
  /** Defaults to `compact`. */
  separators?: JsonSeparators;
  /** Escape every non-ASCII character as `\uXXXX`, like Python's `ensure_ascii=True`. Defaults to false. */
  asciiOnly?: boolean;
}

/**
 * Writes a value as JSON text, keeping floats recognisable (`5.0`, never `5`). Accepts the JSON value model plus any
 * value with array or plain-object shape (undefined members are skipped, as `JSON.stringify` does); tuples written by
 * the Python-call parser come out as arrays, as Python's `json.dumps` writes them. Non-finite floats come out as
 * `NaN`/`Infinity`, as Python writes them.
 */
export function stringifyJson(value: unknown, options: StringifyOptions = {}): string {
  // Non-ASCII-escaped text of a plain value (every sample's JSON on import and export, Python-spaced tool calls in
  // prompts and labels) is written by one recursive pass with string concatenation; the general writer below defines
  // the output and writes the rest.
  if (!options.asciiOnly) {
    const plain = plainJson(value, { sortKeys: options.sortKeys ?? false, separators: options.separators });
    if (plain !== undefined) return plain;
  }
  return stringifyJsonFull(value, options);
}

/** {@link stringifyJson} without the plain fast path: the reference writer (tests compare the two). */
export function stringifyJsonFull(value: unknown, options: StringifyOptions = {}): string {
  const itemSep = options.separators === 'python' ? ', ' : ',';
  const keySep = options.separators === 'python' ? ': ' : ':';
  const sortKeys = options.sortKeys ?? false;
  const asciiOnly = options.asciiOnly ?? false;
  const str = (s: string): string => (asciiOnly ? asciiJsonString(s) : JSON.stringify(s));
  const write = (v: unknown): string => {
    if (v === null) return 'null';
    switch (typeof v) {
      case 'boolean':
        return v ? 'true' : 'false';
      case 'string':
        return str(v);
      case 'number':
        return Number.isInteger(v) ? formatInt(v) : formatFloat(v);
      case 'object':
        break;
      default:
        throw new TypeError(`cannot write ${typeof v} as JSON`);
    }
    if (v instanceof JsonFloat) return formatFloat(v.value);
    const asArray = arrayLike(v);
    if (asArray) return `[${asArray.map(write).join(itemSep)}]`;
    const record = v as Record<string, unknown>;
    const keys = Object.keys(record).filter((k) => record[k] !== undefined);
    if (sortKeys) keys.sort(compareCodeUnits);
    return `{${keys.map((k) => `${str(k)}${keySep}${write(record[k])}`).join(itemSep)}}`;
  };
  return write(value);
}

/** Thrown inside {@link writePlain} when a value is outside the plain subset; caught by its callers. */
const NOT_PLAIN: unique symbol = Symbol('not plain JSON');

function writePlain(value: unknown, sortKeys: boolean, python: boolean): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      // Integers below 1e21 print as digits (formatInt); other finite numbers are floats.
      if (Number.isInteger(value)) {
        if (Math.abs(value) < 1e21) return String(value);
        throw NOT_PLAIN;
      }
      if (Number.isFinite(value)) return formatFloat(value);
      throw NOT_PLAIN;
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      break;
    default:
      throw NOT_PLAIN;
  }
  if (value === null) return 'null';
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += python ? ', ' : ',';
      // A hole or undefined item reads as undefined and is thrown out to the general writer, which defines both.
      out += writePlain(value[i], sortKeys, python);
    }
    return `${out}]`;
  }
  if (value instanceof JsonFloat) {
    if (Number.isFinite(value.value)) return formatFloat(value.value);
    throw NOT_PLAIN;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) throw NOT_PLAIN;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record);
  if (sortKeys) {
    for (let i = 1; i < keys.length; i++) {
      if (compareCodeUnits(keys[i - 1]!, keys[i]!) > 0) {
        keys.sort(compareCodeUnits);
        break;
      }
    }
  }
  let out = '{';
  let first = true;
  for (const key of keys) {
    // The general writer writes an object with a `jsonArrayItems` method as an array (the Python-call parser's tuples).
    if (key === 'jsonArrayItems') throw NOT_PLAIN;
    const item = record[key];
    if (item === undefined) continue;
    if (!first) out += python ? ', ' : ',';
    first = false;
    out += JSON.stringify(key);
    out += python ? ': ' : ':';
    out += writePlain(item, sortKeys, python);
  }
  return `${out}}`;
}

/**
 * The JSON text of a plain, finite value (canonical when `sortKeys`, else in insertion order; compact, or with
 * Python's `, ` and `: ` when `separators` is `python`), or undefined when the value holds anything else (NaN or Infinity included), which the general writer ({@link stringifyJsonFull}) writes.
 */
export function plainJson(
  value: unknown,
  options: { sortKeys: boolean; separators?: JsonSeparators | undefined },
): string | undefined {
  try {
    return flatString(writePlain(value, options.sortKeys, options.separators === 'python'));
  } catch (err) {
    if (err === NOT_PLAIN) return undefined;
    throw err;
  }
}

/**
 * The same string, made flat. V8 keeps a string built piece by piece (`+=`, as {@link writePlain} builds its text)
 * as a tree of its pieces until something reads it, and reading a character copies the pieces into one string then.
 * A text that lives a while is better flat from the start: an import holds a page of samples' texts until the page
 * is written, and the garbage collector moved each as a tree of a hundred pieces (flat, an import's CPU per sample fell
 * by a fifth). The copy is made once either way, by whatever reads the text first.
 */
export function flatString(text: string): string {
  text.charCodeAt(0);
  return text;
}

/**
 * A text equal for two values exactly when they are equal JSON (floats apart from ints: `5.0` is not `5`), to key
 * caches by content; undefined when the value is not plain JSON. A value of only what `JSON.parse` gives (plain
 * objects and arrays, strings, finite numbers, booleans, null) is keyed by `JSON.stringify`, a few times faster than
 * {@link plainJson}; any other (one holding a JsonFloat) by plainJson's text, under another first letter, so the two
 * kinds of key never meet.
 */
export function contentKey(value: unknown): string | undefined {
  if (isJsonTree(value, false)) return `n${JSON.stringify(value)}`;
  const plain = plainJson(value, { sortKeys: false });
  return plain === undefined ? undefined : `p${plain}`;
}

/**
 * Whether a value is a tree of JSON values: plain objects and arrays, strings, finite numbers, booleans, null, and
 * (with `floats`) JsonFloat; at most 1,000 levels deep. Without `floats` it is what `JSON.parse` gives, which
 * `JSON.stringify` writes back exactly. (core/schemas/json-value.ts `isJsonValue` is this with floats.)
 */
export function isJsonTree(value: unknown, floats: boolean, depth = 0): boolean {
  if (depth > MAX_DEPTH) return false;
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      // JSON.stringify writes NaN and Infinity as null.
      return Number.isFinite(value);
    case 'object':
      break;
    default:
      return false;
  }
  if (value === null) return true;
  if (value instanceof JsonFloat) return floats;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!isJsonTree(value[i], floats, depth + 1)) return false;
    return true;
  }
  if (Object.getPrototypeOf(value) !== Object.prototype) return false;
  for (const key in value) if (!isJsonTree((value as Record<string, unknown>)[key], floats, depth + 1)) return false;
  return true;
}

// Values that are arrays in JSON but carry their own class (the Python-call parser's tuples) expose `items`.
function arrayLike(v: object): readonly unknown[] | undefined {
  if (Array.isArray(v)) return v;
  const items = (v as { jsonArrayItems?: () => readonly unknown[] }).jsonArrayItems;
  return typeof items === 'function' ? items.call(v) : undefined;
}

/**
 * Canonical JSON: keys sorted recursively (UTF-16 code-unit order), no whitespace, ints as integers and floats always
 * with a `.`/exponent. `1` and `1.0` therefore differ, on purpose: a Python consumer (BFCL's type check) tells them
 * apart, so they are different content.
 */
export function canonicalJson(value: unknown): string {
  return stringifyJson(value, { sortKeys: true });
}

/** Orders strings by UTF-16 code units (RFC 8785, JCS), the order canonical JSON sorts keys in. */
export function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function formatInt(n: number): string {
  // Past 1e21 String() switches to exponent form, which would read back as a float.
  return Math.abs(n) < 1e21 ? String(n) : BigInt(n).toString();
}

const FLOAT_MARK = /[.eE]/;

/** A float's JSON text: the shortest round-trip digits, with `.0` added when they would otherwise read as an int. */
export function formatFloat(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Number.POSITIVE_INFINITY) return 'Infinity';
  if (x === Number.NEGATIVE_INFINITY) return '-Infinity';
  if (Object.is(x, -0)) return '-0.0';
  const s = String(x);
  return FLOAT_MARK.test(s) ? s : `${s}.0`;
}

function asciiJsonString(s: string): string {
  const json = JSON.stringify(s);
  let out = '';
  let chunk = 0;
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (c > 0x7f) {
      out += json.slice(chunk, i) + `\\u${c.toString(16).padStart(4, '0')}`;
      chunk = i + 1;
    }
  }
  return out + json.slice(chunk);
}
