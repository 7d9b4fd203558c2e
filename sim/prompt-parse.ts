/**
 * Reads the judge, generator and validator prompts (activities/llm/prompts/*.md) back into data: the parts sit between
 * XML-style tags, so the sim finds them by tag and never depends on the prose around them. Reads the policy's
 * plain-text chat (core/formats/policy-prompt.ts) back into tools and messages.
 */
import { isJsonObject, parseJson } from '../core/json.js';
import { messageFromJson, toolsFromJson } from '../core/formats/openai-chat.js';
import { messagesFromPolicyPrompt } from '../core/formats/policy-prompt.js';
import type { FunctionDefinition } from '../core/schemas/function-def.js';
import type { ChatMessage } from '../core/schemas/messages.js';
import type { ToolCall } from '../core/schemas/tool-call.js';
import { BoundedCache } from './random.js';
import type { Response } from './truth.js';

/** The text between `<tag>` and the next `</tag>`, trimmed; undefined when the tag is absent. */
export function tagContent(text: string, tag: string): string | undefined {
  const open = `<${tag}>`;
  const start = text.indexOf(open);
  if (start < 0) return undefined;
  const end = text.indexOf(`</${tag}>`, start + open.length);
  if (end < 0) return undefined;
  return text.slice(start + open.length, end).trim();
}

/**
 * Parsed tool blocks by their exact text (a hash of it could collide, and hashing cost as much as the lookup saves).
 * Every policy request carries its block, and a seed set of 100,000 samples has about 29,000 distinct tool lists
 * (parsing and validating one costs about 100 µs): sized to hold them all.
 */
const toolCache = new BoundedCache<string, FunctionDefinition[] | null>(32_768);

/**
 * Parsed tools by the exact text of their line. Lists are drawn from far fewer tools than there are lists, so a list
 * seen for the first time is mostly made of lines seen before, and a line is parsed and validated (zod, about 30 µs
 * a tool) once. Each tool is checked on its own in `toolsFromJson`, so a list read line by line is the list read whole;
 * lists share the parsed tools, which nothing changes.
 */
const toolLineCache = new BoundedCache<string, FunctionDefinition | null>(32_768);

/**
 * The lines of the `<tools>` block: the tag on a line of its own, as the judge prompts and the policy's system prompt
 * (core/formats/policy-prompt.ts) write it. Qwen's tools section mentions "<tools></tools>" in its prose first, so the
 * first bare `<tools>` is not always the block.
 */
function toolsBlock(system: string): string | undefined {
  const start = system.indexOf('<tools>\n');
  if (start < 0) return tagContent(system, 'tools');
  const end = system.indexOf('</tools>', start);
  return end < 0 ? undefined : system.slice(start + '<tools>\n'.length, end).trim();
}

/**
 * The tools of a `<tools>` block: one OpenAI tool JSON (or bare definition) a line. Cached by content (the same list
 * recurs).
 */
export function parsePromptTools(system: string): FunctionDefinition[] | undefined {
  const block = toolsBlock(system);
  if (block === undefined) return undefined;
  const key = block;
  const cached = toolCache.get(key);
  if (cached !== undefined) return cached ?? undefined;
  const tools: FunctionDefinition[] = [];
  for (const line of block.split('\n')) {
    if (line.trim() === '') continue;
    let tool = toolLineCache.get(line);
    if (tool === undefined) {
      const parsed = parseJson(line);
      const read = parsed.ok ? toolsFromJson([parsed.value]) : undefined;
      tool = toolLineCache.set(line, read?.ok ? read.value[0]! : null);
    }
    if (tool === null) return toolCache.set(key, null) ?? undefined;
    tools.push(tool);
  }
  toolCache.set(key, tools);
  return tools;
}

/** A conversation written as a JSON array of OpenAI chat messages (arguments as objects or strings). */
export function parsePromptConversation(text: string | undefined): ChatMessage[] | undefined {
  if (text === undefined) return undefined;
  const parsed = parseJson(text);
  if (!parsed.ok || !Array.isArray(parsed.value)) return undefined;
  const messages: ChatMessage[] = [];
  for (const [index, item] of parsed.value.entries()) {
    const message = messageFromJson(item, `conversation[${index}]`);
    if (!message.ok) return undefined;
    messages.push(message.value);
  }
  return messages;
}

/** A prompt response, `{"tool_calls": [{name, arguments}]}` or `{"content": text}`; undefined when it is neither. */
export function parsePromptResponse(text: string | undefined): Response | undefined {
  if (text === undefined) return undefined;
  const parsed = parseJson(text);
  if (!parsed.ok || !isJsonObject(parsed.value)) return undefined;
  const value = parsed.value;
  if (Array.isArray(value.tool_calls)) {
    const calls: ToolCall[] = [];
    for (const call of value.tool_calls) {
      if (!isJsonObject(call)) return undefined;
      const fn = isJsonObject(call.function) ? call.function : call;
      const args =
        typeof fn.arguments === 'string' ? parseJson(fn.arguments) : { ok: true as const, value: fn.arguments };
      if (typeof fn.name !== 'string' || !args.ok || !isJsonObject(args.value)) return undefined;
      calls.push({ name: fn.name, arguments: args.value });
    }
    return calls.length > 0
      ? { kind: 'calls', calls }
      : { kind: 'text', text: typeof value.content === 'string' ? value.content : '' };
  }
  if (typeof value.content === 'string') return { kind: 'text', text: value.content };
  return undefined;
}

/** The system and last user message of a request (the two halves of every structured-output prompt). */
export function promptParts(messages: readonly { role: string; content: string }[]): { system: string; user: string } {
  const system = messages.find((m) => m.role === 'system')?.content ?? '';
  const user = [...messages].reverse().find((m) => m.role === 'user')?.content ?? '';
  return { system, user };
}

/**
 * What the student reads from a policy request without `tools` (core/formats/policy-prompt.ts): the tools of the
 * system prompt's `<tools>` block, and the history with its `<tool_call>` text read back into calls and its
 * `<tool_response>` turns into tool results, so it sees the conversation (turn count, earlier results) the sample has.
 * A history sent in OpenAI's wire form (tool messages, `tool_calls`) or one that does not read back is taken as sent.
 */
export function readPolicyPrompt(sent: readonly ChatMessage[]): {
  tools: FunctionDefinition[];
  messages: ChatMessage[];
} {
  const system = sent[0]?.role === 'system' ? sent[0].content : '';
  const tools = parsePromptTools(system) ?? [];
  const plain = sent.every((m) => m.role !== 'tool' && !(m.role === 'assistant' && m.tool_calls));
  if (!plain) return { tools, messages: [...sent] };
  const read = messagesFromPolicyPrompt(sent.map((m) => ({ role: m.role, content: m.content ?? '' })));
  return { tools, messages: read.ok ? read.value : [...sent] };
}
