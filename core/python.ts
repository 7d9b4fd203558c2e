/**
 * Python value semantics the checker needs: the extra value kinds a Python-syntax call can produce (tuples, and opaque
 * values such as complex numbers or bytes), Python's `type()` names, an equality key that mirrors `==`, `repr()` for
 * error messages, and `str.strip()`.
 */
import { isJsonObject, JsonFloat } from './json.js';

/** A Python tuple. BFCL's checker treats `(1, 2)` and `[1, 2]` differently (only `tuple` params convert), so it is kept. */
export class PyTuple {
  constructor(readonly items: PyValue[]) {}

  /** Written as a JSON array, as Python's `json.dumps` does. */
  jsonArrayItems(): readonly PyValue[] {
    return this.items;
  }
}

/**
 * A Python value with no JSON counterpart (complex, bytes). It never has the type a parameter expects and is equal only
 * to an identical opaque value; Python's `(1+0j) == 1` is the one equality this drops.
 */
export class PyOpaque {
  constructor(
    readonly typeName: string,
    readonly repr: string,
  ) {}

  toJSON(): string {
    return this.repr;
  }
}

export type PyValue = null | boolean | number | string | JsonFloat | PyTuple | PyOpaque | PyValue[] | PyDict;
export interface PyDict {
  [key: string]: PyValue;
}

export type PyTypeName = 'NoneType' | 'bool' | 'int' | 'float' | 'str' | 'list' | 'tuple' | 'dict' | (string & {});

/** Python's `type(value).__name__`. Booleans are `bool`, never `int`; tagged and fractional numbers are `float`. */
export function pyTypeName(value: PyValue): PyTypeName {
  if (value === null) return 'NoneType';
  switch (typeof value) {
    case 'boolean':
      return 'bool';
    case 'number':
      return Number.isInteger(value) ? 'int' : 'float';
    case 'string':
      return 'str';
    default:
      break;
  }
  if (value instanceof JsonFloat) return 'float';
  if (Array.isArray(value)) return 'list';
  if (value instanceof PyTuple) return 'tuple';
  if (value instanceof PyOpaque) return value.typeName;
  return 'dict';
}

/**
 * A string key such that `pyEqualityKey(a) === pyEqualityKey(b)` exactly when Python's `a == b` holds for the values
 * this project handles: `1 == 1.0 == True`, `0 == -0.0 == False`, lists equal element-wise, a list never equals a
 * tuple, dicts equal regardless of key order. (`NaN` equals itself here, as it does for Python's `in` on one object.)
 * Membership tests (`value in alternatives`) become set lookups with it.
 */
export function pyEqualityKey(value: PyValue): string {
  if (value === null) return 'N';
  switch (typeof value) {
    case 'boolean':
      return value ? '#1' : '#0';
    case 'number':
      return numberKey(value);
    case 'string':
      return JSON.stringify(value);
    default:
      break;
  }
  if (value instanceof JsonFloat) return numberKey(value.value);
  if (Array.isArray(value)) return `[${value.map(pyEqualityKey).join(',')}]`;
  if (value instanceof PyTuple) return `(${value.items.map(pyEqualityKey).join(',')})`;
  if (value instanceof PyOpaque) return `?${value.typeName}:${value.repr}`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${pyEqualityKey(value[k] as PyValue)}`).join(',')}}`;
}

function numberKey(x: number): string {
  return x === 0 ? '#0' : `#${String(x)}`;
}

/** Python's `a == b` (see {@link pyEqualityKey} for the exact semantics). */
export function pyEquals(a: PyValue, b: PyValue): boolean {
  return pyEqualityKey(a) === pyEqualityKey(b);
}

/** Python's `repr()` of a value, for error messages that read like BFCL's. */
export function pyRepr(value: PyValue): string {
  if (value === null) return 'None';
  switch (typeof value) {
    case 'boolean':
      return value ? 'True' : 'False';
    case 'number':
      return Number.isInteger(value) ? pyIntRepr(value) : pyFloatRepr(value);
    case 'string':
      return pyStrRepr(value);
    default:
      break;
  }
  if (value instanceof JsonFloat) return pyFloatRepr(value.value);
  if (Array.isArray(value)) return `[${value.map(pyRepr).join(', ')}]`;
  if (value instanceof PyTuple) {
    return value.items.length === 1
      ? `(${pyRepr(value.items[0] as PyValue)},)`
      : `(${value.items.map(pyRepr).join(', ')})`;
  }
  if (value instanceof PyOpaque) return value.repr;
  return `{${Object.entries(value)
    .map(([k, v]) => `${pyStrRepr(k)}: ${pyRepr(v)}`)
    .join(', ')}}`;
}

function pyIntRepr(n: number): string {
  return Math.abs(n) < 1e21 ? String(n) : BigInt(n).toString();
}

/**
 * Python's `repr(float)`: shortest round-trip digits, fixed notation when the decimal point falls within 16 digits
 * (`1e+16` and `1e-05` switch to exponent form), and always a `.0` or an exponent.
 */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (x === Number.POSITIVE_INFINITY) return 'inf';
  if (x === Number.NEGATIVE_INFINITY) return '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mantissa = '', exponentText = '0'] = Math.abs(x).toExponential().split('e');
  const digits = mantissa.replace('.', '');
  const exponent = Number(exponentText);
  const decimalPoint = exponent + 1;
  const sign = x < 0 ? '-' : '';
  if (decimalPoint > 16 || decimalPoint <= -4) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const e = `${exponent < 0 ? '-' : '+'}${String(Math.abs(exponent)).padStart(2, '0')}`;
    return `${sign}${m}e${e}`;
  }
  if (decimalPoint <= 0) return `${sign}0.${'0'.repeat(-decimalPoint)}${digits}`;
  if (decimalPoint >= digits.length) return `${sign}${digits}${'0'.repeat(decimalPoint - digits.length)}.0`;
  return `${sign}${digits.slice(0, decimalPoint)}.${digits.slice(decimalPoint)}`;
}

// str.isprintable() is false for these categories; the space character is the one printable separator.
const NON_PRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]/u;

/** Python's `repr(str)`: single quotes unless the text has a `'` and no `"`, with Python's escapes. */
export function pyStrRepr(s: string): string {
  // Printable ASCII without a backslash (names, most values in the checker's messages) needs no escape but the quote:
  // one pass over the code units instead of a regular expression per character.
  let single = false;
  let double = false;
  let plain = true;
  for (let i = 0; i < s.length; i++) {
    const code = s.charCodeAt(i);
    if (code < 0x20 || code > 0x7e || code === 0x5c) {
      plain = false;
      break;
    }
    if (code === 0x27) single = true;
    else if (code === 0x22) double = true;
  }
  if (plain && !single) return `'${s}'`;
  if (plain && !double) return `"${s}"`;
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    if (ch === quote || ch === '\\') out += `\\${ch}`;
    else if (ch === '\t') out += '\\t';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch !== ' ' && NON_PRINTABLE.test(ch)) {
      const cp = ch.codePointAt(0) ?? 0;
      if (cp < 0x100) out += `\\x${cp.toString(16).padStart(2, '0')}`;
      else if (cp < 0x10000) out += `\\u${cp.toString(16).padStart(4, '0')}`;
      else out += `\\U${cp.toString(16).padStart(8, '0')}`;
    } else out += ch;
  }
  return out + quote;
}

/**
 * Whether a UTF-16 code unit is a character Python's `str.isspace()` accepts, which is what a bare `str.strip()` removes:
 * \t \n \v \f \r, \x1c–\x1f, space, \x85, \xa0, U+1680, U+2000–U+200A, U+2028, U+2029, U+202F, U+205F, U+3000 (all in the
 * Basic Multilingual Plane).
 */
function isPyWhitespaceCode(code: number): boolean {
  if (code <= 0x20) return (code >= 0x09 && code <= 0x0d) || code >= 0x1c;
  return (
    code === 0x85 ||
    code === 0xa0 ||
    code === 0x1680 ||
    (code >= 0x2000 && code <= 0x200a) ||
    code === 0x2028 ||
    code === 0x2029 ||
    code === 0x202f ||
    code === 0x205f ||
    code === 0x3000
  );
}

const HAS_SURROGATE = /[\ud800-\udfff]/;

/** Whether `chars` holds the code unit `code`. */
function hasCode(chars: string, code: number): boolean {
  for (let k = 0; k < chars.length; k++) if (chars.charCodeAt(k) === code) return true;
  return false;
}

/**
 * Python's `s.strip(chars)`: with no `chars`, Python's own whitespace set (not JavaScript's `trim()` set). Works on
 * code units, comparing numbers (the scorer strips every prediction: no set or one-character string per call); with
 * `chars` outside the Basic Multilingual Plane, on code points, as Python does.
 */
export function pyStrip(s: string, chars?: string): string {
  let start = 0;
  let end = s.length;
  if (chars === undefined) {
    while (start < end && isPyWhitespaceCode(s.charCodeAt(start))) start++;
    while (end > start && isPyWhitespaceCode(s.charCodeAt(end - 1))) end--;
  } else if (!HAS_SURROGATE.test(chars)) {
    while (start < end && hasCode(chars, s.charCodeAt(start))) start++;
    while (end > start && hasCode(chars, s.charCodeAt(end - 1))) end--;
  } else {
    // Python strips code points: a surrogate pair is one character.
    const set = new Set(chars);
    const points = Array.from(s);
    let first = 0;
    let last = points.length;
    while (first < last && set.has(points[first] as string)) first++;
    while (last > first && set.has(points[last - 1] as string)) last--;
    return points.slice(first, last).join('');
  }
  return start === 0 && end === s.length ? s : s.slice(start, end);
}

/** A plain Python dict (not a list, tuple, float or opaque value). */
export function isPyDict(value: PyValue): value is PyDict {
  return isJsonObject(value);
}
