/**
 * ShareGPT-style records, `{conversations: [{from, value}], system?, tools?}`, as ToolACE and LoopTool's dialogue
 * pipeline write them. Assistant turns that hold calls (ToolACE: Python-like syntax `[Get Rule Sets(limit=5)]`, names
 * with spaces allowed; LoopTool/xLAM: a JSON list of `{name, arguments}`) become `tool_calls`; tool results become tool messages. Tools come from `tools` (a list or a
 * JSON string) or, as in ToolACE, from the JSON list inside the system prompt.
 */
import { isJsonObject, parseJson, type JsonValue } from '../json.js';
import { parseJsonCalls } from '../parse/json-calls.js';
import { parsePythonCalls, pyToJson } from '../parse/python-calls.js';
import type { ParseResult } from '../parse/types.js';
import type { ChatMessage } from '../schemas/messages.js';
import type { Sample } from '../schemas/sample.js';
import { samplesFromConversation, toolsFromJson, type SplitMode } from './openai-chat.js';
import { accept, reject, type Converted } from './rejection.js';

const ROLES: Record<string, 'system' | 'user' | 'assistant' | 'tool'> = {
  system: 'system',
  human: 'user',
  user: 'user',
  gpt: 'assistant',
  assistant: 'assistant',
  tool: 'tool',
  function: 'tool',
  observation: 'tool',
};

const LOOKS_LIKE_JSON_CALLS = /^\s*(?:\[\s*\{|\{)/;
// A list whose first element is `name(`; ToolACE names may contain spaces ("Get Rule Sets").
const LOOKS_LIKE_CALL_LIST = /^\s*\[\s*[^[\](){}"'=,]+\(/;
const LOOKS_LIKE_PYTHON_CALL = /^\s*[\p{L}_][\p{L}\p{N}_.]*\s*\(/u;
const PLACEHOLDER = /^__tool_(\d+)__$/;

/**
 * ToolACE writes calls as `[Get Rule Sets(limit=5), …]`: names with spaces, which Python cannot parse. The names are
 * swapped for placeholders, the rest is decoded as BFCL decodes calls, and the names are put back. Undefined when the
 * text is not a list of `name(…)` elements.
 */
export function parseToolAceCalls(text: string): ParseResult | undefined {
  const trimmed = text.trim();
  if (!trimmed.startsWith('[') || !trimmed.endsWith(']')) return undefined;
  const names: string[] = [];
  let rewritten = '[';
  const end = trimmed.length - 1;
  let pos = 1;
  const skipSpace = (): void => {
    while (pos < end && /\s/.test(trimmed[pos] as string)) pos++;
  };
  skipSpace();
  while (pos < end) {
    const paren = trimmed.indexOf('(', pos);
    if (paren < 0) return undefined;
    const name = trimmed.slice(pos, paren).trim();
    if (name === '' || /[[\]{}"'=,]/.test(name)) return undefined;
    let depth = 0;
    let quote: string | null = null;
    let close = -1;
    for (let i = paren; i < end; i++) {
      const ch = trimmed[i] as string;
      if (quote) {
        if (ch === '\\') i++;
        else if (ch === quote) quote = null;
        continue;
      }
      if (ch === '"' || ch === "'") quote = ch;
      else if (ch === '(' || ch === '[' || ch === '{') depth++;
      else if (ch === ')' || ch === ']' || ch === '}') {
        depth--;
        if (depth === 0) {
          close = i;
          break;
        }
      }
    }
    if (close < 0) return undefined;
    rewritten += `${names.length > 0 ? ', ' : ''}__tool_${names.length}__${trimmed.slice(paren, close + 1)}`;
    names.push(name);
    pos = close + 1;
    skipSpace();
    if (pos < end) {
      if (trimmed[pos] !== ',') return undefined;
      pos++;
      skipSpace();
    }
  }
  const parsed = parsePythonCalls(`${rewritten}]`);
  if (!parsed.ok) return parsed;
  return {
    ...parsed,
    calls: parsed.calls.map((call) => ({
      ...call,
      name: names[Number(PLACEHOLDER.exec(call.name)?.[1] ?? -1)] ?? call.name,
    })),
  };
}

/** An assistant turn's calls, or undefined when the text is a plain answer. */
function callsFromAssistantText(text: string, field: string): Converted<ChatMessage | undefined> {
  let parsed: ParseResult;
  if (LOOKS_LIKE_JSON_CALLS.test(text)) parsed = parseJsonCalls(text);
  else if (LOOKS_LIKE_CALL_LIST.test(text)) parsed = parseToolAceCalls(text) ?? parsePythonCalls(text);
  else if (LOOKS_LIKE_PYTHON_CALL.test(text)) parsed = parsePythonCalls(text);
  else return accept(undefined);
  if (!parsed.ok) {
    // Text that merely starts like a call ("{note}" or "f(x) is…") stays text; a list of calls that fails is an error.
    return LOOKS_LIKE_CALL_LIST.test(text) || text.trimStart().startsWith('[{')
      ? reject(field, parsed.error.reason)
      : accept(undefined);
  }
  if (parsed.calls.length === 0) return accept(undefined);
  const toolCalls = [];
  for (const [index, call] of parsed.calls.entries()) {
    const args = pyToJson(call.arguments);
    if (args === undefined || !isJsonObject(args))
      return reject(`${field}[${index}]`, 'has an argument JSON cannot hold (complex or bytes)');
    toolCalls.push({ type: 'function' as const, function: { name: call.name, arguments: args } });
  }
  return accept({ role: 'assistant', content: null, tool_calls: toolCalls });
}

/** The first JSON array of objects inside a text (ToolACE's system prompt lists its tools that way). */
export function findJsonArray(text: string): JsonValue[] | undefined {
  for (let start = text.indexOf('['); start >= 0; start = text.indexOf('[', start + 1)) {
    let depth = 0;
    let inString = false;
    for (let i = start; i < text.length; i++) {
      const ch = text[i];
      if (inString) {
        if (ch === '\\') i++;
        else if (ch === '"') inString = false;
        continue;
      }
      if (ch === '"') inString = true;
      else if (ch === '[' || ch === '{') depth++;
      else if (ch === ']' || ch === '}') {
        depth--;
        if (depth === 0) {
          const parsed = parseJson(text.slice(start, i + 1));
          if (parsed.ok && Array.isArray(parsed.value) && parsed.value.length > 0 && parsed.value.every(isJsonObject))
            return parsed.value;
          break;
        }
      }
    }
  }
  return undefined;
}

/** Reads one ShareGPT record into samples (the last assistant turn, or each; see `SplitMode`). */
export function shareGptToSamples(record: JsonValue, options: { split?: SplitMode } = {}): Converted<Sample[]> {
  if (!isJsonObject(record)) return reject('', 'a record must be a JSON object');
  const conversations = record.conversations;
  if (!Array.isArray(conversations)) return reject('conversations', 'must be an array');
  const system = typeof record.system === 'string' ? record.system : undefined;
  const toolSource =
    record.tools !== undefined ? record.tools : system !== undefined ? (findJsonArray(system) ?? null) : null;
  const tools = toolsFromJson(toolSource, record.tools !== undefined ? 'tools' : 'system');
  if (!tools.ok) return tools;
  const messages: ChatMessage[] = [];
  if (system) messages.push({ role: 'system', content: system });
  for (const [index, turn] of conversations.entries()) {
    const field = `conversations[${index}]`;
    if (!isJsonObject(turn)) return reject(field, 'must be an object');
    const role = typeof turn.from === 'string' ? ROLES[turn.from.toLowerCase()] : undefined;
    if (!role) return reject(`${field}.from`, `unknown speaker ${JSON.stringify(turn.from)}`);
    const value = turn.value;
    const text = typeof value === 'string' ? value : value === undefined || value === null ? '' : undefined;
    if (text === undefined) return reject(`${field}.value`, 'must be a string');
    if (role === 'assistant') {
      const calls = callsFromAssistantText(text, `${field}.value`);
      if (!calls.ok) return calls;
      messages.push(calls.value ?? { role: 'assistant', content: text });
    } else {
      messages.push({ role, content: text });
    }
  }
  return samplesFromConversation({
    tools: tools.value,
    messages,
    split: options.split ?? 'last',
    field: 'conversations',
  });
}
