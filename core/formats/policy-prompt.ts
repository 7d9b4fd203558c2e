/**
 * The chat the policy sees for a sample, one rendering for every path that shows a sample to it: the training exports
 * (verl parquet `prompt`, TRL `prompt`), the probe and the evaluation. Plain-text messages in Qwen's tool-calling
 * convention (what LoopTool trains on): the system prompt with the tools in it, assistant turns with `<tool_call>`
 * blocks, tool results as a user turn of `<tool_response>` blocks. Servers get these messages and no OpenAI `tools`,
 * so no chat template adds a tool section of its own and the model sees in the probe what it was trained on.
 *
 * For a ChatML model the rendered text is byte for byte LoopTool's `[system: instruction, user: input]` form; the
 * reverse reading ({@link conversationFromPolicyPrompt}) gives back tools and messages that render to the same prompt.
 */
import type { FunctionDefinition } from '../schemas/function-def.js';
import type { ChatMessage } from '../schemas/messages.js';
import { Sample } from '../schemas/sample.js';
import { assistantFromText, renderInstruction, targetFromOutput, toolsFromInstruction } from './looptool.js';
import { parseToolResponses, renderAssistantText, renderToolsBlock, renderToolsSection, TOOLS_SLOT } from './qwen.js';
import { accept, parseWith, reject, type Converted } from './rejection.js';

/** One message of the policy's chat: plain text, tool calls and results written into it. */
export interface PolicyPromptMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/**
 * Renders a sample's conversation (not its target) as the policy's chat: the system prompt with the tools
 * ({@link renderInstruction}; omitted only when there is neither system text nor a tool), user turns as they are,
 * assistant turns as their text plus `<tool_call>` blocks, and each run of consecutive tool results as ONE user turn of
 * `<tool_response>` blocks joined by newlines, as Qwen's template renders them.
 */
export function policyPrompt(sample: Sample): PolicyPromptMessage[] {
  const out: PolicyPromptMessage[] = [];
  const instruction = renderInstruction(sample);
  if (instruction !== '') out.push({ role: 'system', content: instruction });
  const history = sample.messages[0]?.role === 'system' ? sample.messages.slice(1) : sample.messages;
  let toolResponses: string[] = [];
  for (const [index, message] of history.entries()) {
    if (message.role === 'tool') {
      toolResponses.push(`<tool_response>\n${message.content}\n</tool_response>`);
      if (history[index + 1]?.role !== 'tool') {
        out.push({ role: 'user', content: toolResponses.join('\n') });
        toolResponses = [];
      }
    } else if (message.role === 'assistant') {
      const calls = (message.tool_calls ?? []).map((call) => call.function);
      out.push({ role: 'assistant', content: renderAssistantText(message.content, calls) });
    } else {
      out.push({ role: message.role, content: message.content });
    }
  }
  return out;
}

/**
 * The sample with `system` as its system prompt when it has none of its own (the probe's optional system prompt). It
 * becomes part of the sample's system message before rendering, so the tools land after it exactly as they would in a
 * training export of the same sample.
 */
export function withSystemPrompt(sample: Sample, system: string): Sample {
  if (sample.messages[0]?.role === 'system') return sample;
  return { ...sample, messages: [{ role: 'system', content: system }, ...sample.messages] };
}

/**
 * Reads the history of a policy chat back into messages: `<tool_call>` blocks in assistant turns become tool calls, a
 * user turn of only `<tool_response>` blocks becomes tool messages, system turns stay as written (their tools are not
 * lifted; see {@link conversationFromPolicyPrompt}).
 */
export function messagesFromPolicyPrompt(
  prompt: readonly { role: string; content: string }[],
  field = 'prompt',
): Converted<ChatMessage[]> {
  const messages: ChatMessage[] = [];
  for (const [index, turn] of prompt.entries()) {
    const where = `${field}[${index}]`;
    if (typeof turn.content !== 'string') return reject(`${where}.content`, 'must be a string');
    if (turn.role === 'system') messages.push({ role: 'system', content: turn.content });
    else if (turn.role === 'user') {
      const responses = parseToolResponses(turn.content);
      if (responses) for (const content of responses) messages.push({ role: 'tool', content });
      else messages.push({ role: 'user', content: turn.content });
    } else if (turn.role === 'assistant') {
      const message = assistantFromText(turn.content, `${where}.content`);
      if (!message.ok) return message;
      messages.push(message.value);
    } else return reject(`${where}.role`, `must be system, user or assistant, not ${JSON.stringify(turn.role)}`);
  }
  return accept(messages);
}

/**
 * Reads a policy chat back into tools and messages. The tools come out of the system prompt's `<tools>` block; the
 * system prompt keeps an empty slot where they were, or loses the Qwen tools section that {@link renderInstruction}
 * appended (and disappears when that section was all of it). `policyPrompt` of the result is the chat read.
 */
export function conversationFromPolicyPrompt(
  prompt: readonly { role: string; content: string }[],
  field = 'prompt',
): Converted<{ tools: FunctionDefinition[]; messages: ChatMessage[] }> {
  const messages = messagesFromPolicyPrompt(prompt, field);
  if (!messages.ok) return messages;
  const first = messages.value[0];
  if (first?.role !== 'system') return accept({ tools: [], messages: messages.value });
  const lifted = toolsFromInstruction(first.content);
  // toolsFromInstruction names its fields from `instruction` (a LoopTool record's); here that is the system turn.
  if (!lifted.ok)
    return reject(lifted.rejection.field.replace(/^instruction/, `${field}[0].content`), lifted.rejection.reason);
  const { tools } = lifted.value;
  let system = lifted.value.system;
  if (tools.length > 0) {
    const section = renderToolsSection(tools).replace(renderToolsBlock(tools), TOOLS_SLOT);
    if (system === section) system = '';
    else if (system.endsWith(`\n\n${section}`)) system = system.slice(0, -section.length - 2);
  }
  const rest = messages.value.slice(1);
  return accept({ tools, messages: system === '' ? rest : [{ role: 'system', content: system }, ...rest] });
}

/**
 * A sample from a training export's prompt and label text (verl's `prompt` and `reward_model.ground_truth`, TRL's
 * `prompt` and `ground_truth`): the inverse of what the exports write.
 */
export function sampleFromPolicyPrompt(input: {
  prompt: readonly { role: string; content: string }[];
  label: string;
}): Converted<Sample> {
  const conversation = conversationFromPolicyPrompt(input.prompt);
  if (!conversation.ok) return conversation;
  const target = targetFromOutput(input.label);
  if (!target.ok) return reject('label', target.rejection.reason);
  return parseWith(Sample, { ...conversation.value, target: target.value });
}
