/**
 * Reads the calls out of a model's reply, whatever form they take: OpenAI `tool_calls` (what vLLM's hermes parser
 * returns), `<tool_call>{json}</tool_call>` blocks in the content (after removing `<think>…</think>`), BFCL's Python
 * call syntax, or a JSON array of calls. Malformed output is a typed {@link ParseError} with the reason, never a throw.
 */
import { parseJson, positionAt, type JsonValue } from '../json.js';
import { callFromJson, callsFromJsonValue, parseJsonCalls } from './json-calls.js';
import { parsePythonCalls } from './python-calls.js';
import type { ContentFormat, MalformedBlockPolicy, ParsedCall, ParseResult } from './types.js';

export { CONTENT_FORMATS, MALFORMED_BLOCK_POLICIES, type ContentFormat, type MalformedBlockPolicy } from './types.js';

const THINK_OPEN = '<think>';
const THINK_CLOSE = '</think>';
const CALL_OPEN = '<tool_call>';
const CALL_CLOSE = '</tool_call>';

/**
 * Splits reasoning from the answer. Qwen3's template opens `<think>` in the prompt, so a reply may hold only the
 * closing tag: everything before the last `</think>` is reasoning. An unclosed `<think>` (a generation cut off while
 * thinking) leaves no answer at all. Tool-call tags inside the reasoning are therefore never read as calls.
 */
export function stripThinking(text: string): { content: string; reasoning: string } {
  // Most replies have no tag at all: one scan for `<` settles it (the scorer strips every prediction).
  if (!text.includes('<')) return { content: text, reasoning: '' };
  const close = text.lastIndexOf(THINK_CLOSE);
  if (close >= 0) {
    const before = text.slice(0, close);
    const open = before.indexOf(THINK_OPEN);
    return {
      content: text.slice(close + THINK_CLOSE.length),
      reasoning: open >= 0 ? before.slice(open + THINK_OPEN.length) : before,
    };
  }
  const open = text.indexOf(THINK_OPEN);
  if (open >= 0) return { content: text.slice(0, open), reasoning: text.slice(open + THINK_OPEN.length) };
  return { content: text, reasoning: '' };
}

/**
 * Parses `<tool_call>…</tool_call>` blocks, each holding exactly `{"name": …, "arguments": {…}}`. Whitespace around
 * the JSON is free (Qwen writes newlines, some models do not). Text outside the blocks is ignored.
 */
export function parseToolCallBlocks(text: string, options: { onMalformed?: MalformedBlockPolicy } = {}): ParseResult {
  const skip = options.onMalformed === 'skip';
  const calls: ParsedCall[] = [];
  let cursor = 0;
  let index = 0;
  for (;;) {
    const open = text.indexOf(CALL_OPEN, cursor);
    if (open < 0) break;
    const bodyStart = open + CALL_OPEN.length;
    const close = text.indexOf(CALL_CLOSE, bodyStart);
    if (close < 0) {
      if (skip) break;
      const { line, column } = positionAt(text, open);
      return {
        ok: false,
        error: {
          kind: 'unclosed_tool_call',
          format: 'tool_call_blocks',
          reason: `<tool_call> ${index} is never closed (line ${line}, column ${column})`,
          offset: open,
          line,
          column,
        },
      };
    }
    const body = text.slice(bodyStart, close);
    cursor = close + CALL_CLOSE.length;
    const parsed = parseJson(body.trim());
    if (!parsed.ok) {
      if (skip) {
        index++;
        continue;
      }
      const offset = bodyStart + (body.length - body.trimStart().length) + parsed.error.offset;
      const { line, column } = positionAt(text, offset);
      return {
        ok: false,
        error: {
          kind: 'invalid_json',
          format: 'tool_call_blocks',
          reason: `<tool_call> ${index}: ${parsed.error.message} (line ${line}, column ${column})`,
          offset,
          line,
          column,
        },
      };
    }
    // Only the shape the Qwen/Hermes template defines: BFCL's Qwen handler indexes call["name"] and
    // call["arguments"].items(), and LoopTool's reward compares the arguments object itself.
    const read = callFromJson(parsed.value, { hermesOnly: true });
    if (!read.ok)
      return {
        ok: false,
        error: { kind: 'invalid_call', format: 'tool_call_blocks', reason: `<tool_call> ${index}: ${read.reason}` },
      };
    calls.push(read.call);
    index++;
  }
  return { ok: true, format: 'tool_call_blocks', calls };
}

/**
 * Reads OpenAI-style `tool_calls` (from a chat completion, or a predictions file): each `{function: {name, arguments}}`
 * with `arguments` a JSON string (parsed losslessly) or an object.
 */
export function parseOpenAiToolCalls(toolCalls: readonly JsonValue[]): ParseResult {
  const result = callsFromJsonValue(toolCalls as JsonValue[], 'openai_tool_calls');
  return result;
}

export interface ParseModelOutputOptions {
  format?: ContentFormat;
  onMalformedBlock?: MalformedBlockPolicy;
}

// A reply that starts like a call is a failed call when it does not parse, not a text answer.
const LOOKS_LIKE_JSON_ARRAY = /^\[\s*\{/;
const LOOKS_LIKE_PYTHON_CALL = /^\[?\s*[\p{L}_][\p{L}\p{N}_.]*\s*\(/u;

/**
 * Parses a model reply: an assistant message (`{content, tool_calls}`) or its text. `tool_calls`, when present and
 * non-empty, win. Otherwise the content, after {@link stripThinking}, is read in `auto` mode as: `<tool_call>` blocks
 * if the tag appears; JSON calls if it starts with `{` or `[{`; Python call syntax if it starts like a call
 * (`name(` or `[name(`); otherwise a text answer with no calls (format `text`).
 */
export function parseModelOutput(
  reply: string | { content?: string | null; tool_calls?: readonly JsonValue[] | null },
  options: ParseModelOutputOptions = {},
): ParseResult {
  const message = typeof reply === 'string' ? { content: reply, tool_calls: null } : reply;
  if (message.tool_calls && message.tool_calls.length > 0) return parseOpenAiToolCalls(message.tool_calls);
  const { content } = stripThinking(message.content ?? '');
  const format = options.format ?? 'auto';
  const blockOptions = { onMalformed: options.onMalformedBlock ?? 'error' };
  switch (format) {
    case 'tool_call_blocks':
      return parseToolCallBlocks(content, blockOptions);
    case 'python':
      return parsePythonCalls(content);
    case 'json':
      return parseJsonCalls(content);
    case 'auto':
      break;
  }
  if (content.includes(CALL_OPEN) || content.includes(CALL_CLOSE)) {
    if (!content.includes(CALL_OPEN)) {
      return {
        ok: false,
        error: {
          kind: 'invalid_call',
          format: 'tool_call_blocks',
          reason: '</tool_call> without an opening <tool_call>',
        },
      };
    }
    return parseToolCallBlocks(content, blockOptions);
  }
  const trimmed = content.trim();
  if (trimmed.startsWith('{') || LOOKS_LIKE_JSON_ARRAY.test(trimmed)) return parseJsonCalls(content);
  if (LOOKS_LIKE_PYTHON_CALL.test(trimmed)) return parsePythonCalls(content);
  return { ok: true, format: 'text', calls: [] };
}
