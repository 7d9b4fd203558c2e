import { isJsonFloat, isJsonInt, isJsonObject, JsonFloat, type JsonValue } from '../json.js';
import type { ChatMessage } from '../schemas/messages.js';
import {
  type FunctionDefinition,
  type ParamType,
  type ParameterSchema,
  wireToolName,
} from '../schemas/function-def.js';

/** One reason a call does not fit its tool schema. */
export interface CallViolation {
  /** `tool_calls[1].arguments.city` */
  field: string;
  rule:
    | 'unknown_function'
    | 'missing_required'
    | 'unknown_parameter'
    | 'wrong_type'
    | 'not_in_enum'
    /** A history turn out of place: a tool result with no call before it, a call left unanswered, … */
    | 'history_order';
  message: string;
}

function typeMatches(value: JsonValue, type: ParamType): boolean {
  switch (type) {
    case 'string':
      return typeof value === 'string';
    case 'integer':
      return isJsonInt(value);
    // JSON Schema's number admits integers; a float parameter given 5 is fine for a schema check (the BFCL checker,
    // not this rule tier, decides int/float strictness for scoring).
    case 'number':
    case 'float':
      return isJsonInt(value) || isJsonFloat(value);
    case 'boolean':
      return typeof value === 'boolean';
    case 'array':
    case 'tuple':
      return Array.isArray(value);
    case 'dict':
    case 'object':
      return isJsonObject(value);
    case 'null':
      return value === null;
    case 'any':
      return true;
  }
}

function checkValue(value: JsonValue, schema: ParameterSchema, field: string, out: CallViolation[]): void {
  const types = schema.type === undefined ? [] : Array.isArray(schema.type) ? schema.type : [schema.type];
  if (types.length > 0 && !types.some((type) => typeMatches(value, type))) {
    out.push({
      field,
      rule: 'wrong_type',
      message: `${field} should be ${types.join(' or ')}, got ${describe(value)}`,
    });
    return;
  }
  if (schema.enum && !schema.enum.some((allowed) => sameJson(allowed, value))) {
    out.push({ field, rule: 'not_in_enum', message: `${field} must be one of ${JSON.stringify(schema.enum)}` });
  }
  if (Array.isArray(value) && schema.items)
    value.forEach((item, i) => checkValue(item, schema.items!, `${field}[${i}]`, out));
}

function describe(value: JsonValue): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (value instanceof JsonFloat || isJsonFloat(value)) return 'float';
  if (isJsonInt(value)) return 'integer';
  return typeof value === 'object' ? 'object' : typeof value;
}

function sameJson(a: JsonValue, b: JsonValue): boolean {
  const num = (v: JsonValue) => (v instanceof JsonFloat ? v.value : v);
  return JSON.stringify(num(a)) === JSON.stringify(num(b));
}

/**
 * The rule tier of EDDE's two-tier validation (and of the official `filter_grpo_sample.py`): every called function
 * exists among the tools, every required parameter is present, no parameter outside the declared properties, and
 * values have the declared JSON types (and enum values). Returns every violation, empty when the calls are valid.
 * `path` is where the calls sit, for the violations' fields (`conversation[2].tool_calls` for a history turn's).
 */
export function validateCalls(
  calls: readonly { name: string; arguments: Record<string, JsonValue> }[],
  tools: readonly FunctionDefinition[],
  path = 'tool_calls',
): CallViolation[] {
  const byName = new Map(tools.map((tool) => [wireToolName(tool.name), tool]));
  const violations: CallViolation[] = [];
  calls.forEach((call, index) => {
    const base = `${path}[${index}]`;
    const tool = byName.get(wireToolName(call.name));
    if (!tool) {
      violations.push({
        field: `${base}.name`,
        rule: 'unknown_function',
        message: `${call.name} is not one of the offered tools`,
      });
      return;
    }
    const properties = tool.parameters?.properties ?? {};
    for (const required of tool.parameters?.required ?? []) {
      if (!(required in call.arguments)) {
        violations.push({
          field: `${base}.arguments.${required}`,
          rule: 'missing_required',
          message: `${call.name} requires ${required}`,
        });
      }
    }
    for (const [name, value] of Object.entries(call.arguments)) {
      const schema = properties[name];
      if (!schema) {
        violations.push({
          field: `${base}.arguments.${name}`,
          rule: 'unknown_parameter',
          message: `${call.name} has no parameter ${name}`,
        });
        continue;
      }
      checkValue(value, schema, `${base}.arguments.${name}`, violations);
    }
  });
  return violations;
}

/**
 * The rule tier over a conversation's history (LOOPTOOL-METHOD.md §2.1: earlier tool calls and their results are part
 * of a sample): every earlier call passes {@link validateCalls} like a label does, and the turns fit together. The
 * conversation opens with a user turn; an assistant turn has words or calls; each call turn is followed by its
 * results, one tool turn per call, each naming (when it carries an id) a call of that turn and none twice, and (when
 * it carries a name) that call's function; the last turn is the one to answer, a user turn or a tool result. Fields
 * name the turn (`conversation[2].tool_calls[0].arguments.city`), indexed over `messages` as given.
 */
export function validateConversation(
  messages: readonly ChatMessage[],
  tools: readonly FunctionDefinition[],
  path = 'conversation',
): CallViolation[] {
  const violations: CallViolation[] = [];
  const order = (index: number, message: string) =>
    violations.push({ field: `${path}[${index}]`, rule: 'history_order', message });
  const first = messages.findIndex((m) => m.role !== 'system');
  if (first >= 0 && messages[first]!.role !== 'user') order(first, `the conversation must open with a user turn`);
  for (let index = 0; index < messages.length; index++) {
    const message = messages[index]!;
    if (message.role === 'system' && index > 0) order(index, 'a system message belongs only at the start');
    if (message.role === 'tool') {
      order(index, 'a tool result must follow the assistant turn whose call it answers');
      continue;
    }
    if (message.role !== 'assistant') continue;
    const calls = message.tool_calls ?? [];
    if (calls.length === 0) {
      if (!message.content?.trim()) order(index, 'an assistant turn needs words or tool calls');
      continue;
    }
    violations.push(
      ...validateCalls(
        calls.map((c) => c.function),
        tools,
        `${path}[${index}].tool_calls`,
      ),
    );
    // The results this turn's calls got: the tool turns right after it.
    let end = index + 1;
    while (end < messages.length && messages[end]!.role === 'tool') end++;
    const results = messages.slice(index + 1, end) as Extract<ChatMessage, { role: 'tool' }>[];
    if (results.length !== calls.length)
      order(
        index,
        `${calls.length} tool call${calls.length === 1 ? '' : 's'} but ${results.length} tool result${results.length === 1 ? '' : 's'} after them; each call needs its result`,
      );
    const answered = new Set<string>();
    results.forEach((result, offset) => {
      const at = index + 1 + offset;
      let answers = calls[offset];
      if (result.tool_call_id !== undefined) {
        answers = calls.find((c) => c.id === result.tool_call_id);
        if (!answers) {
          order(at, `tool_call_id ${result.tool_call_id} names no call of conversation[${index}]`);
          return;
        }
        if (answered.has(result.tool_call_id)) {
          order(at, `call ${result.tool_call_id} already has its result`);
          return;
        }
        answered.add(result.tool_call_id);
      }
      if (result.name !== undefined && answers && wireToolName(result.name) !== wireToolName(answers.function.name))
        order(at, `the result is named ${result.name} but answers a call of ${answers.function.name}`);
    });
    index = end - 1;
  }
  const last = messages.at(-1);
  if (last && last.role !== 'user' && last.role !== 'tool')
    order(messages.length - 1, 'the conversation must end with the turn to answer: a user turn or a tool result');
  return violations;
}
