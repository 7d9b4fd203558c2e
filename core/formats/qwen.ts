/**
 * Qwen's chat-template text (Qwen2.5/Qwen3 with tools), which LoopTool bakes into its training records: the `# Tools`
 * system section, `<tool_call>` blocks, `<tool_response>` user turns and `<|im_start|>`/`<|im_end|>` framing. Rendering
 * and parsing are exact inverses for what this module renders.
 */
import { stringifyJson, type JsonValue } from '../json.js';
import type { FunctionDefinition } from '../schemas/function-def.js';
import { isSharedTool } from '../schemas/sample.js';
import type { ChatMessage } from '../schemas/messages.js';
import type { ToolCall } from '../schemas/tool-call.js';

/** Qwen's turn delimiters. */
export const IM_START = '<|im_start|>';
export const IM_END = '<|im_end|>';

/** The tool list slot left in a system prompt after its tools were lifted into `Sample.tools`. */
export const TOOLS_SLOT = '<tools>\n</tools>';

const TOOLS_INTRO =
  '# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n';
const TOOLS_OUTRO =
  '\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>';

/** JSON the way Qwen's template writes it (`tojson`: Python's `json.dumps` spacing, non-ASCII kept). */
export function qwenJson(value: unknown): string {
  return stringifyJson(value, { separators: 'python' });
}

/** Lines of shared tools (core/schemas/sample.ts shareTool: frozen), rendered once per tool. Weak, as the tools. */
const renderedLines = new WeakMap<FunctionDefinition, string>();

/** One tool's line: the tool in the OpenAI wrapper the template receives. */
function renderToolLine(tool: FunctionDefinition): string {
  let line = renderedLines.get(tool);
  if (line === undefined) {
    line = qwenJson({ type: 'function', function: tool });
    if (isSharedTool(tool)) renderedLines.set(tool, line);
  }
  return line;
}

/** One tool per line, in the OpenAI wrapper the template receives. */
export function renderToolLines(tools: readonly FunctionDefinition[]): string {
  return tools.map(renderToolLine).join('\n');
}

/**
 * Blocks already rendered, by tool list: a stage page shares one tool list among the samples of a toolset (and the
 * lists are never changed once read), so each is rendered once instead of once per sample. Weak: a page's lists go
 * with the page.
 */
const renderedBlocks = new WeakMap<readonly FunctionDefinition[], string>();

/** `<tools>…</tools>` filled with the tool lines. */
export function renderToolsBlock(tools: readonly FunctionDefinition[]): string {
  let block = renderedBlocks.get(tools);
  if (block === undefined) renderedBlocks.set(tools, (block = `<tools>\n${renderToolLines(tools)}\n</tools>`));
  return block;
}

/** The template's whole tools section (used when a system prompt has no slot of its own). */
export function renderToolsSection(tools: readonly FunctionDefinition[]): string {
  return `${TOOLS_INTRO}${renderToolsBlock(tools)}${TOOLS_OUTRO}`;
}

/** `<tool_call>\n{"name": …, "arguments": …}\n</tool_call>`. */
export function renderToolCallBlock(call: { name: string; arguments: JsonValue }): string {
  return `<tool_call>\n${qwenJson({ name: call.name, arguments: call.arguments })}\n</tool_call>`;
}

/** An assistant turn's text: its content, then one block per call, newline-separated as the template does. */
export function renderAssistantText(content: string | null, calls: readonly ToolCall[]): string {
  let out = content ?? '';
  calls.forEach((call, index) => {
    if (index > 0 || out) out += '\n';
    out += renderToolCallBlock(call);
  });
  return out;
}

/**
 * Renders messages (no system message) as template turns. Consecutive tool results share one user turn of
 * `<tool_response>` blocks, as the template renders them.
 */
export function renderTurns(messages: readonly ChatMessage[]): string {
  let out = '';
  messages.forEach((message, index) => {
    if (message.role === 'tool') {
      if (messages[index - 1]?.role !== 'tool') out += `${IM_START}user`;
      out += `\n<tool_response>\n${message.content}\n</tool_response>`;
      if (messages[index + 1]?.role !== 'tool') out += `${IM_END}\n`;
      return;
    }
    const text =
      message.role === 'assistant'
        ? renderAssistantText(
            message.content,
            (message.tool_calls ?? []).map((call) => ({
              name: call.function.name,
              arguments: call.function.arguments,
            })),
          )
        : message.content;
    out += `${IM_START}${message.role}\n${text}${IM_END}\n`;
  });
  return out;
}

export interface ParsedTurn {
  role: string;
  content: string;
}

/** Splits template text into turns; undefined with a reason when the framing is broken. */
export function parseTurns(text: string): { ok: true; turns: ParsedTurn[] } | { ok: false; reason: string } {
  const turns: ParsedTurn[] = [];
  let pos = 0;
  while (pos < text.length) {
    if (!text.startsWith(IM_START, pos)) return { ok: false, reason: `expected ${IM_START} at offset ${pos}` };
    const roleStart = pos + IM_START.length;
    const end = text.indexOf(IM_END, roleStart);
    if (end < 0) return { ok: false, reason: `turn at offset ${pos} has no ${IM_END}` };
    const body = text.slice(roleStart, end);
    const newline = body.indexOf('\n');
    // Tool-response turns put their first newline inside the content (`<|im_start|>user\n<tool_response>`).
    const role = newline < 0 ? body : body.slice(0, newline);
    const content = newline < 0 ? '' : body.slice(newline + 1);
    turns.push({ role, content });
    pos = end + IM_END.length;
    if (text[pos] === '\n') pos++;
  }
  return { ok: true, turns };
}

const TOOL_RESPONSE_OPEN = '<tool_response>\n';
const TOOL_RESPONSE_CLOSE = '\n</tool_response>';

/** The tool results in a user turn that consists only of `<tool_response>` blocks; undefined otherwise. */
export function parseToolResponses(content: string): string[] | undefined {
  if (!content.startsWith(TOOL_RESPONSE_OPEN)) return undefined;
  const out: string[] = [];
  let pos = 0;
  while (pos < content.length) {
    if (!content.startsWith(TOOL_RESPONSE_OPEN, pos)) return undefined;
    const start = pos + TOOL_RESPONSE_OPEN.length;
    const end = content.indexOf(TOOL_RESPONSE_CLOSE, start);
    if (end < 0) return undefined;
    out.push(content.slice(start, end));
    pos = end + TOOL_RESPONSE_CLOSE.length;
    if (pos < content.length) {
      if (content[pos] !== '\n') return undefined;
      pos++;
    }
  }
  return out;
}
