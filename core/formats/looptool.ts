/**
 * LoopTool-23k records, `{instruction, input, output}`: `instruction` is the system prompt with a Qwen `<tools>` block
 * (one JSON tool per line), `input` the history pre-rendered with Qwen chat-template tokens (outermost
 * `<|im_start|>user\n` and trailing `<|im_end|>\n` removed), `output` the label (`<tool_call>` blocks or text). Tools
 * are lifted out of the system prompt into `Sample.tools`, leaving an empty `<tools>` slot so that writing the sample
 * back puts them where they were.
 */
import { isJsonObject, parseJson, type JsonValue } from '../json.js';
import { parseToolCallBlocks } from '../parse/model-output.js';
import { pyToJson } from '../parse/python-calls.js';
import type { ParsedCall } from '../parse/types.js';
import type { FunctionDefinition } from '../schemas/function-def.js';
import type { ChatMessage } from '../schemas/messages.js';
import type { ToolCall } from '../schemas/tool-call.js';
import { isSharedToolList, Sample, type Target } from '../schemas/sample.js';
import { toolsFromJson } from './openai-chat.js';
import {
  IM_END,
  IM_START,
  parseToolResponses,
  parseTurns,
  renderAssistantText,
  renderToolsBlock,
  renderToolsSection,
  renderTurns,
  TOOLS_SLOT,
} from './qwen.js';
import { accept, parseWith, reject, type Converted } from './rejection.js';

/** The three strings of a LoopTool record. */
export interface LoopToolRecord {
  instruction: string;
  input: string;
  output: string;
}

// The block itself opens with a newline; the template's prose mentions "<tools></tools>" without one.
const TOOLS_OPEN = '<tools>\n';
const TOOLS_CLOSE = '</tools>';

/** Lifts the tools out of a system prompt's `<tools>` block, leaving the empty slot (no block: no tools). */
export function toolsFromInstruction(instruction: string): Converted<{ tools: FunctionDefinition[]; system: string }> {
  const open = instruction.indexOf(TOOLS_OPEN);
  if (open < 0) return accept({ tools: [], system: instruction });
  const close = instruction.indexOf(TOOLS_CLOSE, open);
  if (close < 0) return reject('instruction', '<tools> is never closed');
  const lines = instruction
    .slice(open + TOOLS_OPEN.length, close)
    .split('\n')
    .filter((line) => line.trim() !== '');
  const items: JsonValue[] = [];
  for (const [index, line] of lines.entries()) {
    const parsed = parseJson(line);
    if (!parsed.ok) return reject(`instruction.tools[${index}]`, `is not valid JSON: ${parsed.error.message}`);
    items.push(parsed.value);
  }
  const tools = toolsFromJson(items, 'instruction.tools');
  if (!tools.ok) return tools;
  return accept({
    tools: tools.value,
    system: instruction.slice(0, open) + TOOLS_SLOT + instruction.slice(close + TOOLS_CLOSE.length),
  });
}

// `<tool_call>` blocks are JSON, so their arguments are JSON objects already; the check keeps the types honest.
function jsonCall(call: ParsedCall): ToolCall {
  const args = pyToJson(call.arguments);
  if (!isJsonObject(args)) throw new TypeError('tool_call arguments decoded from JSON must be a JSON object');
  return { name: call.name, arguments: args };
}

/** An assistant turn's text (content, then `<tool_call>` blocks) as a message with its tool calls. */
export function assistantFromText(text: string, field: string): Converted<ChatMessage> {
  const first = text.indexOf('<tool_call>');
  if (first < 0) return accept({ role: 'assistant', content: text });
  const blocks = parseToolCallBlocks(text.slice(first));
  if (!blocks.ok) return reject(field, blocks.error.reason);
  let content: string | null = text.slice(0, first);
  if (content.endsWith('\n')) content = content.slice(0, -1);
  if (content === '') content = null;
  return accept({
    role: 'assistant',
    content,
    tool_calls: blocks.calls.map((call) => ({ type: 'function', function: jsonCall(call) })),
  });
}

/**
 * Reads a label text (a record's `output`, a training export's `ground_truth`) into a target: `<tool_call>` blocks are
 * calls, anything else a text answer. The reward server reads labels with it, so training and import agree.
 */
export function targetFromOutput(output: string): Converted<Target> {
  if (!output.includes('<tool_call>')) return accept(output ? { kind: 'text', text: output } : { kind: 'text' });
  const blocks = parseToolCallBlocks(output);
  if (!blocks.ok) return reject('output', blocks.error.reason);
  if (blocks.calls.length === 0) return reject('output', 'has <tool_call> tags but no call');
  return accept({ kind: 'calls', calls: blocks.calls.map(jsonCall) });
}

/** Reads one LoopTool record into a sample (history turns become OpenAI-style messages). */
export function loopToolToSample(record: JsonValue): Converted<Sample> {
  if (!isJsonObject(record)) return reject('', 'a record must be a JSON object');
  for (const field of ['instruction', 'input', 'output'] as const) {
    if (typeof record[field] !== 'string') return reject(field, 'must be a string');
  }
  const { instruction, input, output } = record as unknown as LoopToolRecord;
  const lifted = toolsFromInstruction(instruction);
  if (!lifted.ok) return lifted;
  const turns = parseTurns(`${IM_START}user\n${input}${IM_END}\n`);
  if (!turns.ok) return reject('input', turns.reason);
  const messages: ChatMessage[] = [];
  if (lifted.value.system !== '') messages.push({ role: 'system', content: lifted.value.system });
  for (const [index, turn] of turns.turns.entries()) {
    const field = `input.turns[${index}]`;
    if (turn.role === 'user') {
      const responses = parseToolResponses(turn.content);
      if (responses) for (const content of responses) messages.push({ role: 'tool', content });
      else messages.push({ role: 'user', content: turn.content });
    } else if (turn.role === 'assistant') {
      const message = assistantFromText(turn.content, field);
      if (!message.ok) return message;
      messages.push(message.value);
    } else if (turn.role === 'system') {
      messages.push({ role: 'system', content: turn.content });
    } else {
      return reject(field, `unknown role ${JSON.stringify(turn.role)}`);
    }
  }
  const target = targetFromOutput(output);
  if (!target.ok) return target;
  return parseWith(Sample, { tools: lifted.value.tools, messages, target: target.value });
}

/** The system prompt with the tools in place: filling the slot, or appending the template's tools section. */
export function renderInstruction(sample: Sample): string {
  const first = sample.messages[0];
  const system = first?.role === 'system' ? first.content : '';
  if (!isSharedToolList(sample.tools)) return instructionWith(system, sample.tools);
  let bySystem = renderedInstructions.get(sample.tools);
  if (!bySystem) renderedInstructions.set(sample.tools, (bySystem = new Map()));
  let instruction = bySystem.get(system);
  if (instruction === undefined) {
    instruction = instructionWith(system, sample.tools);
    if (bySystem.size < MAX_SYSTEMS_PER_TOOL_LIST) bySystem.set(system, instruction);
  }
  return instruction;
}

/**
 * Instructions of shared tool lists (frozen: core/schemas/sample.ts shareToolList) by system text, each rendered once:
 * the samples of a toolset (an export's, a probe's) mostly share their system text too, and then share one string, the
 * longest of their prompt (a parquet writer finds it repeated by identity, not by reading it).
 */
const renderedInstructions = new WeakMap<readonly FunctionDefinition[], Map<string, string>>();
/** Distinct system texts kept per tool list; past them an instruction is rendered each time. */
const MAX_SYSTEMS_PER_TOOL_LIST = 16;

function instructionWith(system: string, tools: readonly FunctionDefinition[]): string {
  // A function, so a `$&` or `$$` in a tool description is copied, not read as a replacement pattern.
  if (system.includes(TOOLS_SLOT)) return system.replace(TOOLS_SLOT, () => renderToolsBlock(tools));
  if (tools.length === 0) return system;
  return system ? `${system}\n\n${renderToolsSection(tools)}` : renderToolsSection(tools);
}

/** The history as LoopTool stores it: template turns without the outermost `<|im_start|>user\n` and final `<|im_end|>\n`. */
export function renderInput(sample: Sample): Converted<string> {
  const history = sample.messages[0]?.role === 'system' ? sample.messages.slice(1) : sample.messages;
  if (history[0]?.role !== 'user')
    return reject('messages', 'LoopTool input must start with a user turn after the system prompt');
  const rendered = renderTurns(history);
  const prefix = `${IM_START}user\n`;
  const suffix = `${IM_END}\n`;
  return accept(rendered.slice(prefix.length, rendered.length - suffix.length));
}

/** The label text: `<tool_call>` blocks for calls, the text for a text target. */
export function renderOutput(target: Target): Converted<string> {
  if (target.kind === 'acceptable') return reject('target', 'an acceptable-values target has no single label text');
  if (target.kind === 'text') return accept(target.text ?? '');
  return accept(renderAssistantText(null, target.calls));
}

/** A sample as a LoopTool record; reading it back with {@link loopToolToSample} gives the same sample. */
export function sampleToLoopTool(sample: Sample): Converted<LoopToolRecord> {
  const input = renderInput(sample);
  if (!input.ok) return input;
  const output = renderOutput(sample.target);
  if (!output.ok) return output;
  return accept({ instruction: renderInstruction(sample), input: input.value, output: output.value });
}
