/**
 * Reward cases for the reward server's tests and benchmark: every BFCL fixture turned into training labels with right,
 * perturbed and wrong completions, and the hand-written cases the old Python reward got wrong (int/float, duplicate
 * calls, list order). {@link coreScore} is core/checker's verdict on a case, computed without the reward server.
 */
import { fileURLToPath } from 'node:url';
import { compileSampleChecker, type ModelReply } from '../../core/checker/index.js';
import { bfclAnswerFromRecord, bfclQuestionFromRecord, type BfclAnswer } from '../../core/formats/bfcl.js';
import { renderOutput, targetFromOutput } from '../../core/formats/looptool.js';
import { toolsFromJson } from '../../core/formats/openai-chat.js';
import { renderAssistantText } from '../../core/formats/qwen.js';
import { isJsonObject, JsonFloat, parseJson, stringifyJson, type JsonObject, type JsonValue } from '../../core/json.js';
import { pyRepr } from '../../core/python.js';
import type { FunctionDefinition, ParameterSchema } from '../../core/schemas/function-def.js';
import type { ToolCall } from '../../core/schemas/tool-call.js';
import { CHECKER_OF_REWARD, type RewardMode } from '../../core/vocabulary.js';
import { readSmallJsonLines } from '../../datasets/read-records.js';

/** One (completion, label) pair as a training export carries it: the label text and the tools as JSON text. */
export interface RewardCase {
  name: string;
  completion: string;
  ground_truth: string;
  tools: string;
  /**
   * The same reply as a TRL conversational completion whose assistant message carries `tool_calls`, as lossless JSON
   * text (a Python reader keeps `5.0` a float); absent when the reply is not a plain list of calls.
   */
  toolCallMessages?: string;
}

const BFCL_DIR = fileURLToPath(new URL('../../data/bfcl/', import.meta.url));
export const BFCL_CATEGORIES = ['simple_python', 'multiple', 'parallel', 'parallel_multiple', 'irrelevance'] as const;

function must<T>(result: { ok: true; value: T } | { ok: false; rejection: { field: string; reason: string } }): T {
  if (!result.ok) throw new Error(`${result.rejection.field}: ${result.rejection.reason}`);
  return result.value;
}

const isOmitted = (value: JsonValue | undefined) => value === '';

/** A possible answer's first acceptable value; dict arguments hold acceptable values per key, unwrapped the same way. */
function firstAcceptable(
  alternatives: readonly JsonValue[],
  schema: ParameterSchema | undefined,
): JsonValue | undefined {
  const value = alternatives.find((alternative) => !isOmitted(alternative));
  const unwrap = (dict: JsonValue): JsonValue => {
    if (!isJsonObject(dict)) return dict;
    const out: JsonObject = {};
    for (const [key, inner] of Object.entries(dict)) {
      const first = Array.isArray(inner) ? inner.find((item) => !isOmitted(item)) : inner;
      if (first !== undefined) out[key] = first;
    }
    return out;
  };
  const type = schema?.type;
  if ((type === 'dict' || type === 'object') && value !== undefined) return unwrap(value);
  if (Array.isArray(value) && (schema?.items?.type === 'dict' || schema?.items?.type === 'object'))
    return value.map(unwrap);
  return value;
}

/** A BFCL possible answer as plain calls: what a training label (first acceptable values) would say. */
function labelCalls(answer: BfclAnswer, tools: readonly FunctionDefinition[]): ToolCall[] {
  return answer.calls.map((call) => {
    const properties = tools.find((tool) => tool.name === call.name)?.parameters?.properties ?? {};
    const args: JsonObject = {};
    for (const [param, alternatives] of Object.entries(call.arguments)) {
      const value = firstAcceptable(alternatives, properties[param]);
      if (value !== undefined) args[param] = value;
    }
    return { name: call.name, arguments: args };
  });
}

const blocks = (calls: readonly ToolCall[]) => renderAssistantText(null, calls);

function pythonSyntax(calls: readonly ToolCall[]): string {
  const call = (c: ToolCall) =>
    `${c.name}(${Object.entries(c.arguments)
      .map(([k, v]) => `${k}=${pyRepr(v)}`)
      .join(', ')})`;
  return `[${calls.map(call).join(', ')}]`;
}

function toolCallMessages(calls: readonly ToolCall[]): string {
  return stringifyJson([
    {
      role: 'assistant',
      content: null,
      tool_calls: calls.map((call) => ({ type: 'function', function: { name: call.name, arguments: call.arguments } })),
    },
  ]);
}

/** The calls with the first argument `pick` chooses replaced by `change(value)`; undefined when none qualifies. */
function withArgument(
  calls: readonly ToolCall[],
  pick: (value: JsonValue) => boolean,
  change: (value: JsonValue) => JsonValue,
): ToolCall[] | undefined {
  for (const [index, call] of calls.entries()) {
    const param = Object.keys(call.arguments).find((key) => pick(call.arguments[key] as JsonValue));
    if (param === undefined) continue;
    const changed = { ...call, arguments: { ...call.arguments, [param]: change(call.arguments[param] as JsonValue) } };
    return calls.map((c, i) => (i === index ? changed : c));
  }
  return undefined;
}

/** Ints become floats and integral floats ints: `5` ↔ `5.0`. */
function flipNumber(value: JsonValue): JsonValue {
  if (value instanceof JsonFloat) return value.value;
  return new JsonFloat(value as number);
}
const isFlippable = (value: JsonValue) =>
  (typeof value === 'number' && Number.isInteger(value)) ||
  (value instanceof JsonFloat && Number.isInteger(value.value));

/** Completions for one label: right ones in several spellings, and wrong ones of every kind the checker tells apart. */
function completionsFor(
  calls: readonly ToolCall[],
  answer: BfclAnswer,
): { name: string; text: string; calls?: ToolCall[] }[] {
  const out: { name: string; text: string; calls?: ToolCall[] }[] = [
    { name: 'label', text: blocks(calls), calls: [...calls] },
    { name: 'think + label', text: `<think>The user wants ${calls[0]?.name}.</think>\n${blocks(calls)}` },
    { name: 'python syntax', text: pythonSyntax(calls) },
    { name: 'prose', text: 'I am not able to help with that.' },
    { name: 'broken block', text: '<tool_call>\n{"name": "oops", "arguments": {\n</tool_call>' },
  ];
  const first = calls[0] as ToolCall;
  const variants: [string, ToolCall[] | undefined][] = [
    ['reversed calls', calls.length > 1 ? [...calls].reverse() : undefined],
    ['duplicated call', [...calls, first]],
    ['wrong name', [{ ...first, name: `${first.name}_v2` }, ...calls.slice(1)]],
    [
      'missing argument',
      Object.keys(first.arguments).length > 0
        ? [{ ...first, arguments: Object.fromEntries(Object.entries(first.arguments).slice(1)) }, ...calls.slice(1)]
        : undefined,
    ],
    ['int/float flipped', withArgument(calls, isFlippable, flipNumber)],
    [
      'string upper-cased',
      withArgument(
        calls,
        (value) => typeof value === 'string' && value.toUpperCase() !== value,
        (value) => (value as string).toUpperCase(),
      ),
    ],
  ];
  // Another acceptable value of BFCL's: right for BFCL's own answer, not for a label that names only the first.
  const alternative = answer.calls[0]
    ? Object.entries(answer.calls[0].arguments).find(([, values]) => values.filter((v) => !isOmitted(v)).length > 1)
    : undefined;
  if (alternative) {
    const [param, values] = alternative;
    const second = values.filter((v) => !isOmitted(v))[1] as JsonValue;
    variants.push([
      'second acceptable value',
      [{ ...first, arguments: { ...first.arguments, [param]: second } }, ...calls.slice(1)],
    ]);
  }
  for (const [name, variant] of variants) if (variant) out.push({ name, text: blocks(variant), calls: variant });
  return out;
}

function toolsText(tools: readonly FunctionDefinition[], wrapped: boolean): string {
  return stringifyJson(wrapped ? tools.map((tool) => ({ type: 'function', function: tool })) : tools);
}

/**
 * Every BFCL fixture (data/bfcl: questions with possible answers, irrelevance questions) as reward cases: the label is
 * the possible answer's first acceptable values as `<tool_call>` blocks (a text label for irrelevance), the tools the
 * question's functions as JSON text (OpenAI wrappers for every other question, as exports write them).
 */
export function bfclRewardCases(): RewardCase[] {
  const cases: RewardCase[] = [];
  let questionIndex = 0;
  for (const category of BFCL_CATEGORIES) {
    const answers = new Map<string, BfclAnswer>();
    if (category !== 'irrelevance')
      for (const record of readSmallJsonLines(`${BFCL_DIR}possible_answer/BFCL_v4_${category}.json`)) {
        const answer = must(bfclAnswerFromRecord(record));
        answers.set(answer.id, answer);
      }
    for (const record of readSmallJsonLines(`${BFCL_DIR}BFCL_v4_${category}.json`)) {
      const question = must(bfclQuestionFromRecord(record));
      const tools = toolsText(question.functions, questionIndex++ % 2 === 0);
      const answer = answers.get(question.id);
      if (!answer) {
        const tool = question.functions[0] as FunctionDefinition;
        const call: ToolCall = { name: tool.name, arguments: {} };
        const label = 'None of the available functions can answer this.';
        for (const [name, completion] of [
          ['refusal', 'I cannot answer this with the tools I have.'],
          ['call anyway', blocks([call])],
          ['call inside <think> only', `<think>${blocks([call])}</think>No function fits.`],
        ] as const)
          cases.push({ name: `${question.id}: ${name}`, completion, ground_truth: label, tools });
        continue;
      }
      const calls = labelCalls(answer, question.functions);
      const groundTruth = must(renderOutput({ kind: 'calls', calls }));
      for (const completion of completionsFor(calls, answer))
        cases.push({
          name: `${question.id}: ${completion.name}`,
          completion: completion.text,
          ground_truth: groundTruth,
          tools,
          ...(completion.calls ? { toolCallMessages: toolCallMessages(completion.calls) } : {}),
        });
    }
  }
  return cases;
}

function tool(name: string, properties: Record<string, ParameterSchema>): FunctionDefinition {
  return { name, description: name, parameters: { type: 'dict', properties, required: Object.keys(properties) } };
}

function edgeCase(name: string, tools: FunctionDefinition[], label: ToolCall[], reply: ToolCall[]): RewardCase {
  return {
    name,
    completion: blocks(reply),
    ground_truth: blocks(label),
    tools: stringifyJson(tools),
    toolCallMessages: toolCallMessages(reply),
  };
}

/**
 * What the old Python reward got wrong or never saw, by name: `5` against `5.0` both ways for each numeric parameter
 * type, duplicate calls (`[A, A, B]` against `[A, B, B]`), list order with and without `uniqueItems`, and a boolean
 * for a number.
 */
export function edgeRewardCases(): RewardCase[] {
  const cases: RewardCase[] = [];
  const int = 5;
  const float = new JsonFloat(5);
  for (const type of ['integer', 'float', 'number'] as const) {
    const tools = [tool('set_level', { level: { type } })];
    const call = (level: JsonValue): ToolCall => ({ name: 'set_level', arguments: { level } });
    cases.push(edgeCase(`${type}: label 5, reply 5.0`, tools, [call(int)], [call(float)]));
    cases.push(edgeCase(`${type}: label 5.0, reply 5`, tools, [call(float)], [call(int)]));
    cases.push(edgeCase(`${type}: label 5, reply 5`, tools, [call(int)], [call(int)]));
    cases.push(edgeCase(`${type}: label 5.0, reply 5.0`, tools, [call(float)], [call(float)]));
    cases.push(edgeCase(`${type}: label 5, reply true`, tools, [call(int)], [call(true)]));
  }
  const pair = [tool('get_weather', { city: { type: 'string' } })];
  const weather = (city: string): ToolCall => ({ name: 'get_weather', arguments: { city } });
  const [a, b] = [weather('Paris'), weather('Rome')];
  cases.push(edgeCase('duplicates: label [A, A, B], reply [A, B, B]', pair, [a, a, b], [a, b, b]));
  cases.push(edgeCase('duplicates: label [A, B, B], reply [A, A, B]', pair, [a, b, b], [a, a, b]));
  cases.push(edgeCase('duplicates: label [A, A, B], reply [B, A, A]', pair, [a, a, b], [b, a, a]));
  cases.push(edgeCase('duplicates: label [A, B], reply [A, B, B]', pair, [a, b], [a, b, b]));
  cases.push(edgeCase('duplicates: label [A, A], reply [A]', pair, [a, a], [a]));
  for (const uniqueItems of [false, true]) {
    const tools = [tool('tag', { tags: { type: 'array', items: { type: 'string' }, uniqueItems } })];
    const tag = (tags: string[]): ToolCall => ({ name: 'tag', arguments: { tags } });
    const schema = uniqueItems ? 'uniqueItems' : 'ordered list';
    cases.push(edgeCase(`${schema}: label [x, y], reply [y, x]`, tools, [tag(['x', 'y'])], [tag(['y', 'x'])]));
    cases.push(edgeCase(`${schema}: label [x, y], reply [x, y]`, tools, [tag(['x', 'y'])], [tag(['x', 'y'])]));
    cases.push(edgeCase(`${schema}: label [x, y], reply [x]`, tools, [tag(['x', 'y'])], [tag(['x'])]));
  }
  return cases;
}

/** A reply as the TRL form carries it: an assistant message with `tool_calls`, read losslessly. */
export function toolCallReply(messages: string): ModelReply {
  const parsed = parseJson(messages);
  if (!parsed.ok || !Array.isArray(parsed.value) || !isJsonObject(parsed.value[0]))
    throw new Error(`not a message list: ${messages}`);
  const message = parsed.value[0];
  return { content: null, tool_calls: message.tool_calls as JsonValue[] };
}

/**
 * core/checker's verdict on a case, straight from core: the label read as training labels are read, the tools as
 * exports write them, the reply checked in the mode's checker. 0 when the label or tools do not read.
 */
export function coreScore(input: { reply: ModelReply; ground_truth: string; tools: string }, mode: RewardMode): number {
  const target = targetFromOutput(input.ground_truth);
  const tools = toolsFromJson(input.tools);
  if (!target.ok || !tools.ok) return 0;
  const compiled = compileSampleChecker({
    sample: { tools: tools.value, messages: [], target: target.value },
    config: { mode: CHECKER_OF_REWARD[mode] },
  });
  return compiled.ok && compiled.checker.check(input.reply).valid ? 1 : 0;
}
