/**
 * Calls written as JSON: one call object, or an array of them, in any of the shapes tool-calling models and data sets
 * use. Arguments keep Python's int/float distinction (parsed with core/json.ts).
 */
import { isJsonObject, parseJson, positionAt, type JsonObject, type JsonValue } from '../json.js';
import type { ParsedCall, ParseError, ParseResult, OutputFormat } from './types.js';

type CallOrError = { ok: true; call: ParsedCall } | { ok: false; reason: string };

/**
 * Reads one call from a JSON value. Accepted shapes: `{name, arguments}` (Hermes, Qwen, xLAM; `parameters` is taken for
 * `arguments`), `{type: "function", function: {name, arguments}}` (OpenAI), and BFCL's decoded `{name: {args}}`.
 * `arguments` may be an object or a JSON string holding one (OpenAI's wire form). `hermesOnly` accepts just
 * `{name, arguments: {…}}`, the one shape BFCL's Qwen handler decodes.
 */
export function callFromJson(value: JsonValue, options: { hermesOnly?: boolean } = {}): CallOrError {
  if (!isJsonObject(value)) return { ok: false, reason: `a call must be a JSON object, got ${describe(value)}` };
  if (options.hermesOnly) {
    if (typeof value.name !== 'string') return { ok: false, reason: 'a call needs a string "name"' };
    if (!isJsonObject(value.arguments))
      return { ok: false, reason: `call ${JSON.stringify(value.name)} needs an "arguments" object` };
    return { ok: true, call: { name: value.name, arguments: value.arguments } };
  }
  if (typeof value.name === 'string') {
    const args = 'arguments' in value ? value.arguments : value.parameters;
    if (args === undefined) return { ok: false, reason: `call ${JSON.stringify(value.name)} has no "arguments"` };
    return argumentsOf(value.name, args);
  }
  const fn = value.function;
  if (isJsonObject(fn) && typeof fn.name === 'string') {
    if (fn.arguments === undefined) return { ok: false, reason: `call ${JSON.stringify(fn.name)} has no "arguments"` };
    return argumentsOf(fn.name, fn.arguments);
  }
  const keys = Object.keys(value);
  if (keys.length === 1) {
    const name = keys[0] as string;
    const args = value[name] as JsonValue;
    if (isJsonObject(args)) return { ok: true, call: { name, arguments: args } };
  }
  return { ok: false, reason: 'a call needs a "name" and "arguments" (or the {name: {arguments}} form)' };
}

function argumentsOf(name: string, args: JsonValue): CallOrError {
  if (name.length === 0) return { ok: false, reason: 'a call has an empty name' };
  if (typeof args === 'string') {
    const parsed = parseJson(args);
    if (!parsed.ok)
      return { ok: false, reason: `arguments of ${JSON.stringify(name)} are not valid JSON: ${parsed.error.message}` };
    if (!isJsonObject(parsed.value))
      return { ok: false, reason: `arguments of ${JSON.stringify(name)} must be a JSON object` };
    return { ok: true, call: { name, arguments: parsed.value } };
  }
  if (!isJsonObject(args))
    return { ok: false, reason: `arguments of ${JSON.stringify(name)} must be a JSON object, got ${describe(args)}` };
  return { ok: true, call: { name, arguments: args as JsonObject } };
}

function describe(value: JsonValue): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'a float' : `a ${typeof value}`;
}

/** Parses text holding one JSON call or a JSON array of calls. Never throws. */
export function parseJsonCalls(text: string, format: OutputFormat = 'json'): ParseResult {
  const parsed = parseJson(text.trim());
  const leading = text.length - text.trimStart().length;
  if (!parsed.ok) {
    const offset = parsed.error.offset + leading;
    const { line, column } = positionAt(text, offset);
    return {
      ok: false,
      error: {
        kind: 'invalid_json',
        format,
        reason: `${parsed.error.message} (line ${line}, column ${column})`,
        offset,
        line,
        column,
      },
    };
  }
  return callsFromJsonValue(parsed.value, format);
}

/** Reads calls from an already-parsed JSON value: an array of calls, or one call. */
export function callsFromJsonValue(value: JsonValue, format: OutputFormat): ParseResult {
  const items = Array.isArray(value) ? value : [value];
  const calls: ParsedCall[] = [];
  for (const [index, item] of items.entries()) {
    const read = callFromJson(item);
    if (!read.ok) {
      const error: ParseError = {
        kind: 'invalid_call',
        format,
        reason: Array.isArray(value) ? `call ${index}: ${read.reason}` : read.reason,
      };
      return { ok: false, error };
    }
    calls.push(read.call);
  }
  return { ok: true, format, calls };
}
