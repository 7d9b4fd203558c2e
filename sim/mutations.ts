/**
 * Realistic mistakes: the ways a tool call goes wrong, used both to corrupt seed labels and to make the student's
 * wrong answers look like a real model's (a wrong value, a missing or extra argument, the wrong function, a dropped
 * parallel call, a call where none fits).
 */
import { canonicalJson, isJsonObject, JsonFloat, numericValue, type JsonObject, type JsonValue } from '../core/json.js';
import { wireToolName, type FunctionDefinition, type ParameterSchema } from '../core/schemas/function-def.js';
import type { ToolCall } from '../core/schemas/tool-call.js';
import type { Rng } from './random.js';
import { VOCAB } from './vocab.js';
import type { SimWorld } from './world.js';

/** Call-level mistakes (the reply still holds well-formed calls). */
export const CALL_ERROR_KINDS = [
  'wrong_value',
  'missing_argument',
  'extra_argument',
  'wrong_function',
  'dropped_call',
  'hallucinated_call',
] as const;
export type CallErrorKind = (typeof CALL_ERROR_KINDS)[number];

/** Every kind of wrong answer the student gives: call-level ones plus broken output and text instead of a call. */
export const ANSWER_ERROR_KINDS = [...CALL_ERROR_KINDS, 'malformed_json', 'text_instead_of_call'] as const;
export type AnswerErrorKind = (typeof ANSWER_ERROR_KINDS)[number];

/** What a mutation needs: the offered tools, a source of randomness, and the world (for values that look real). */
export interface MutationContext {
  tools: readonly FunctionDefinition[];
  rng: Rng;
  world: SimWorld;
  /** Prefer a parameter of this kind when choosing what to get wrong (the skill that failed). */
  preferType?: 'float' | 'boolean' | 'array' | 'object' | 'enum' | 'optional';
}

function toolFor(tools: readonly FunctionDefinition[], name: string): FunctionDefinition | undefined {
  const wire = wireToolName(name);
  return tools.find((t) => wireToolName(t.name) === wire);
}

function typeOf(schema: ParameterSchema | undefined): string | undefined {
  const type = schema?.type;
  return Array.isArray(type) ? type[0] : type;
}

function matchesPreference(
  schema: ParameterSchema | undefined,
  preferType: MutationContext['preferType'],
  required: boolean,
): boolean {
  switch (preferType) {
    case undefined:
      return true;
    case 'enum':
      return schema?.enum !== undefined;
    case 'optional':
      return !required;
    case 'float':
      return typeOf(schema) === 'number' || typeOf(schema) === 'float';
    case 'array':
      return typeOf(schema) === 'array' || typeOf(schema) === 'tuple';
    case 'object':
      return typeOf(schema) === 'object' || typeOf(schema) === 'dict';
    case 'boolean':
      return typeOf(schema) === 'boolean';
  }
}

const PLAUSIBLE_STRINGS: readonly string[] = [...VOCAB.city, ...VOCAB.product, ...VOCAB.artist];

function sameValue(a: JsonValue, b: JsonValue): boolean {
  const na = numericValue(a);
  const nb = numericValue(b);
  if (na !== undefined && nb !== undefined) return na === nb;
  return canonicalJson(a) === canonicalJson(b);
}

/** A value of the schema's type that differs from `current`, by a plausible slip rather than noise. */
export function perturbValue(current: JsonValue | undefined, schema: ParameterSchema | undefined, rng: Rng): JsonValue {
  if (schema?.enum && schema.enum.length > 1) {
    const others = schema.enum.filter((v) => current === undefined || !sameValue(v, current));
    if (others.length > 0) return rng.pick(others);
  }
  const type =
    typeOf(schema) ??
    (typeof current === 'number'
      ? 'integer'
      : current instanceof JsonFloat
        ? 'number'
        : typeof current === 'boolean'
          ? 'boolean'
          : 'string');
  switch (type) {
    case 'integer': {
      const n = typeof current === 'number' ? current : 1;
      return n + rng.pick([1, 2, -1, 10, n === 0 ? 3 : n]);
    }
    case 'number':
    case 'float': {
      const n = numericValue(current) ?? 1.5;
      const next = rng.pick([n * 10, n / 10, n + 1, n * 2, n + 0.5]);
      return new JsonFloat(Math.round((next === n ? n + 1 : next) * 100) / 100);
    }
    case 'boolean':
      return current === undefined ? rng.chance(0.5) : current !== true;
    case 'array':
    case 'tuple': {
      const list = Array.isArray(current) ? current : [];
      if (list.length > 1 && rng.chance(0.6)) return list.slice(0, -1);
      const item = perturbValue(list[0], schema?.items, rng);
      return [...list, item];
    }
    case 'object':
    case 'dict': {
      if (!isJsonObject(current)) return {};
      const keys = Object.keys(current);
      if (keys.length === 0) return { note: 'added' };
      const key = rng.pick(keys);
      return { ...current, [key]: perturbValue(current[key], schema?.properties?.[key], rng) };
    }
    default: {
      const text = typeof current === 'string' ? current : '';
      const words = text.split(' ');
      if (words.length > 1 && rng.chance(0.5)) return words[0] as string;
      let other: string = rng.pick(PLAUSIBLE_STRINGS);
      if (other === text) other = `${text} Central`;
      return other;
    }
  }
}

/** A fresh value for a parameter: from the world's vocabulary for its own tools, else by schema type. */
function freshValue(
  ctx: MutationContext,
  toolName: string,
  param: string,
  schema: ParameterSchema | undefined,
  current?: JsonValue,
): JsonValue {
  const spec = ctx.world.tool(toolName);
  if (spec) {
    for (let tries = 0; tries < 8; tries++) {
      const value = ctx.world.generateParam(spec, param, ctx.rng);
      if (value !== undefined && (current === undefined || !sameValue(value, current))) return value;
    }
  }
  return perturbValue(current, schema, ctx.rng);
}

function cloneCalls(calls: readonly ToolCall[]): ToolCall[] {
  return calls.map((c) => ({ name: c.name, arguments: { ...c.arguments } }));
}

/** A call of a tool with every required parameter filled (values that look real), for a call where none was due. */
export function inventCall(ctx: MutationContext, tool: FunctionDefinition, seed: JsonObject = {}): ToolCall {
  const properties = tool.parameters?.properties ?? {};
  const args: JsonObject = {};
  for (const name of tool.parameters?.required ?? []) {
    args[name] = name in seed ? (seed[name] as JsonValue) : freshValue(ctx, tool.name, name, properties[name]);
  }
  return { name: wireToolName(tool.name), arguments: args };
}

/**
 * The calls with one mistake of the given kind, or undefined when the kind does not apply (no second call to drop, no
 * other tool to confuse it with, no argument to lose).
 */
export function mutateCalls(
  kind: CallErrorKind,
  calls: readonly ToolCall[],
  ctx: MutationContext,
): ToolCall[] | undefined {
  const { rng } = ctx;
  const out = cloneCalls(calls);
  switch (kind) {
    case 'dropped_call': {
      if (out.length < 2) return undefined;
      out.splice(rng.int(0, out.length - 1), 1);
      return out;
    }
    case 'hallucinated_call': {
      if (ctx.tools.length === 0) return undefined;
      return [...out, inventCall(ctx, rng.pick(ctx.tools))];
    }
    case 'wrong_function': {
      if (out.length === 0) return undefined;
      const index = rng.int(0, out.length - 1);
      const call = out[index] as ToolCall;
      const others = ctx.tools.filter((t) => wireToolName(t.name) !== wireToolName(call.name));
      if (others.length === 0) return undefined;
      out[index] = inventCall(ctx, rng.pick(others), call.arguments);
      return out;
    }
    case 'wrong_value':
    case 'missing_argument':
    case 'extra_argument': {
      const order = rng.shuffle(out.map((_, i) => i));
      for (const index of order) {
        const call = out[index] as ToolCall;
        const tool = toolFor(ctx.tools, call.name);
        const properties = tool?.parameters?.properties ?? {};
        const required = new Set(tool?.parameters?.required ?? []);
        if (kind === 'extra_argument') {
          const unused = Object.keys(properties).filter((name) => !(name in call.arguments));
          if (unused.length === 0) continue;
          const name = rng.pick(unused);
          call.arguments = { ...call.arguments, [name]: freshValue(ctx, call.name, name, properties[name]) };
          return out;
        }
        const present = Object.keys(call.arguments);
        if (present.length === 0) continue;
        const preferred = present.filter((name) =>
          matchesPreference(properties[name], ctx.preferType, required.has(name)),
        );
        const name = rng.pick(preferred.length > 0 ? preferred : present);
        if (kind === 'missing_argument') {
          const args = { ...call.arguments };
          delete args[name];
          call.arguments = args;
        } else {
          call.arguments = {
            ...call.arguments,
            [name]: freshValue(ctx, call.name, name, properties[name], call.arguments[name]),
          };
        }
        return out;
      }
      return undefined;
    }
  }
}
