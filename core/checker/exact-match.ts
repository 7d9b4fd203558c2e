/**
 * LoopTool's ToolMatch reward (`grpotool/verl/utils/reward_score/toolace.py`): the predicted calls must equal the
 * expected calls as an order-insensitive multiset of {name, arguments}, with key order inside arguments irrelevant.
 * Without the official code's bugs: identical calls are counted, not collapsed (`[A, A, B]` ≠ `[A, B, B]`), and list
 * order inside arguments matters unless the parameter's schema says `uniqueItems: true` (then the list is a set).
 */
import { JsonFloat, type JsonValue } from '../json.js';
import { PyOpaque, PyTuple, type PyValue } from '../python.js';
import type { ParsedCall, ParseResult } from '../parse/types.js';
import { wireToolName, type FunctionDefinition, type ParameterSchema } from '../schemas/function-def.js';
import { isSharedTool, type Target } from '../schemas/sample.js';
import type { Verdict } from './bfcl-ast.js';

/** Error types of the exact-match checker (its own vocabulary; BFCL's strings belong to the BFCL checker). */
export const EXACT_ERROR = {
  parseError: 'exact_match:parse_error',
  expectedNoCall: 'exact_match:expected_no_call',
  expectedCall: 'exact_match:expected_call',
  wrongCount: 'exact_match:wrong_count',
  noMatch: 'exact_match:no_match',
} as const;
export type ExactErrorType = (typeof EXACT_ERROR)[keyof typeof EXACT_ERROR];

interface SchemaNode {
  unordered: boolean;
  items?: SchemaNode;
  properties?: Map<string, SchemaNode>;
}

function compileSchema(schema: ParameterSchema | undefined): SchemaNode | undefined {
  if (!schema) return undefined;
  const node: SchemaNode = { unordered: schema.uniqueItems === true };
  const items = compileSchema(schema.items);
  if (items) node.items = items;
  if (schema.properties)
    node.properties = new Map(Object.entries(schema.properties).map(([k, v]) => [k, compileSchema(v) as SchemaNode]));
  return node;
}

/** Compiled parameters of shared tools (core/schemas/sample.ts shareTool: frozen), once per tool. */
const compiledParams = new WeakMap<FunctionDefinition, Map<string, SchemaNode>>();

function compileParams(tool: FunctionDefinition): Map<string, SchemaNode> {
  let params = compiledParams.get(tool);
  if (params === undefined) {
    params = new Map<string, SchemaNode>();
    for (const [name, schema] of Object.entries(tool.parameters?.properties ?? {}))
      params.set(name, compileSchema(schema) as SchemaNode);
    if (isSharedTool(tool)) compiledParams.set(tool, params);
  }
  return params;
}

function compileTools(tools: readonly FunctionDefinition[]): Map<string, Map<string, SchemaNode>> {
  const out = new Map<string, Map<string, SchemaNode>>();
  for (const tool of tools) out.set(wireToolName(tool.name), compileParams(tool));
  return out;
}

/**
 * An equality key for exact comparison: strings exact, ints and floats equal by value (`5 == 5.0`, as in the official
 * Python code), booleans never equal to numbers (stricter than Python's `True == 1`: a boolean for a number is wrong),
 * lists ordered unless the schema marks them `uniqueItems`, dict keys unordered.
 */
function exactKey(value: PyValue, schema: SchemaNode | undefined): string {
  if (value === null) return 'N';
  switch (typeof value) {
    case 'boolean':
      return value ? 'T' : 'F';
    case 'number':
      return value === 0 ? '#0' : `#${String(value)}`;
    case 'string':
      return JSON.stringify(value);
    default:
      break;
  }
  if (value instanceof JsonFloat) return value.value === 0 ? '#0' : `#${String(value.value)}`;
  if (value instanceof PyOpaque) return `?${value.typeName}:${value.repr}`;
  if (Array.isArray(value) || value instanceof PyTuple) {
    const items = (Array.isArray(value) ? value : value.items).map((item) => exactKey(item, schema?.items));
    if (schema?.unordered) return `<${items.sort().join(',')}>`;
    return `[${items.join(',')}]`;
  }
  return argumentsKey(value, schema?.properties);
}

function argumentsKey(args: Record<string, PyValue>, properties: Map<string, SchemaNode> | undefined): string {
  const keys = Object.keys(args).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${exactKey(args[k] as PyValue, properties?.get(k))}`).join(',')}}`;
}

interface ExpectedAcceptable {
  name: string;
  params: Map<string, { keys: Set<string>; optional: boolean }>;
}

/** A target prepared for {@link checkExact}. */
export type CompiledExactTarget =
  | { kind: 'text' }
  | { kind: 'calls'; tools: Map<string, Map<string, SchemaNode>>; expectedKeys: Map<string, number>; count: number }
  | { kind: 'acceptable'; tools: Map<string, Map<string, SchemaNode>>; expected: ExpectedAcceptable[] };

function callKey(
  call: { name: string; arguments: Record<string, PyValue> },
  tools: Map<string, Map<string, SchemaNode>>,
): string {
  const name = wireToolName(call.name);
  return `${JSON.stringify(name)}${argumentsKey(call.arguments, tools.get(name))}`;
}

/**
 * Prepares a sample's target for exact matching against its tools' schemas. `acceptable` targets (BFCL possible
 * answers) match when each argument equals one of its acceptable values exactly, and an argument may be left out when
 * `""` is among them; each acceptable value is compared literally (the BFCL checker is the one that understands its
 * nested dict alternatives and string normalisation).
 */
export function compileExactTarget(input: {
  target: Target;
  tools: readonly FunctionDefinition[];
}): CompiledExactTarget {
  const { target } = input;
  if (target.kind === 'text') return { kind: 'text' };
  const tools = compileTools(input.tools);
  if (target.kind === 'calls') {
    const expectedKeys = new Map<string, number>();
    for (const call of target.calls) {
      const key = callKey(call, tools);
      expectedKeys.set(key, (expectedKeys.get(key) ?? 0) + 1);
    }
    return { kind: 'calls', tools, expectedKeys, count: target.calls.length };
  }
  const expected = target.calls.map((call) => {
    const name = wireToolName(call.name);
    const schema = tools.get(name);
    const params = new Map<string, { keys: Set<string>; optional: boolean }>();
    for (const [param, alternatives] of Object.entries(call.arguments)) {
      params.set(param, {
        keys: new Set(alternatives.map((alt: JsonValue) => exactKey(alt, schema?.get(param)))),
        optional: alternatives.includes(''),
      });
    }
    return { name, params };
  });
  return { kind: 'acceptable', tools, expected };
}

function acceptableMatches(
  want: ExpectedAcceptable,
  call: ParsedCall,
  schema: Map<string, SchemaNode> | undefined,
): boolean {
  if (wireToolName(call.name) !== want.name) return false;
  for (const [param, value] of Object.entries(call.arguments)) {
    const accepted = want.params.get(param);
    if (!accepted || !accepted.keys.has(exactKey(value, schema?.get(param)))) return false;
  }
  for (const [param, accepted] of want.params)
    if (!Object.hasOwn(call.arguments, param) && !accepted.optional) return false;
  return true;
}

// Kuhn's augmenting-path matching: a maximum assignment of model calls to expected calls. Call lists are short.
function maximumMatching(compatible: boolean[][], right: number): number[] {
  const owner = new Array<number>(right).fill(-1);
  const tryAssign = (left: number, seen: boolean[]): boolean => {
    for (let r = 0; r < right; r++) {
      if (!compatible[left]?.[r] || seen[r]) continue;
      seen[r] = true;
      if (owner[r] === -1 || tryAssign(owner[r] as number, seen)) {
        owner[r] = left;
        return true;
      }
    }
    return false;
  };
  for (let left = 0; left < compatible.length; left++) tryAssign(left, new Array<boolean>(right).fill(false));
  return owner;
}

/**
 * Compares parsed model output with a compiled target. A parse failure is a mismatch (`exact_match:parse_error`); a
 * text target passes only when the output has no calls at all.
 */
export function checkExact(target: CompiledExactTarget, parsed: ParseResult): Verdict {
  if (!parsed.ok)
    return { valid: false, errorType: EXACT_ERROR.parseError, error: `${parsed.error.kind}: ${parsed.error.reason}` };
  const calls = parsed.calls;
  if (target.kind === 'text') {
    return calls.length === 0
      ? { valid: true }
      : { valid: false, errorType: EXACT_ERROR.expectedNoCall, error: `expected no tool call, got ${calls.length}` };
  }
  if (calls.length === 0)
    return { valid: false, errorType: EXACT_ERROR.expectedCall, error: 'expected tool calls, got none' };
  const count = target.kind === 'calls' ? target.count : target.expected.length;
  if (calls.length !== count)
    return { valid: false, errorType: EXACT_ERROR.wrongCount, error: `expected ${count} calls, got ${calls.length}` };
  if (target.kind === 'calls') {
    const remaining = new Map(target.expectedKeys);
    for (const [index, call] of calls.entries()) {
      const key = callKey(call, target.tools);
      const left = remaining.get(key) ?? 0;
      if (left === 0)
        return {
          valid: false,
          errorType: EXACT_ERROR.noMatch,
          error: `call ${index} (${call.name}) matches no remaining expected call`,
        };
      remaining.set(key, left - 1);
    }
    return { valid: true };
  }
  const compatible = target.expected.map((want) =>
    calls.map((call) => acceptableMatches(want, call, target.tools.get(wireToolName(call.name)))),
  );
  const owner = maximumMatching(compatible, calls.length);
  const unmatched = owner.indexOf(-1);
  if (unmatched >= 0)
    return {
      valid: false,
      errorType: EXACT_ERROR.noMatch,
      error: `call ${unmatched} (${calls[unmatched]?.name}) matches no remaining expected call`,
    };
  return { valid: true };
}
