import { stringifyJson, type JsonValue } from '../../core/json.js';
import { toOpenAiTool, type FunctionDefinition } from '../../core/schemas/function-def.js';
import type { ChatMessage } from '../../core/schemas/messages.js';
import type { Sample, Target } from '../../core/schemas/sample.js';

/** Tools as an OpenAI-compatible server receives them (wire names, BFCL types mapped to JSON Schema). */
export function openAiTools(tools: readonly FunctionDefinition[]): ReturnType<typeof toOpenAiTool>[] {
  return tools.map(toOpenAiTool);
}

/**
 * A conversation in OpenAI's wire form, for a server that is sent `tools` and parses calls itself: tool-call arguments
 * as JSON text written losslessly (floats stay `5.0`), names in wire form. The probe and evaluation do not send this:
 * they send core/formats/policy-prompt's plain-text chat, the one training shows the policy.
 */
export function openAiMessages(messages: readonly ChatMessage[]): Record<string, unknown>[] {
  return messages.map((message) => {
    if (message.role !== 'assistant' || !message.tool_calls) return { ...message };
    return {
      ...message,
      tool_calls: message.tool_calls.map((call, index) => ({
        id: call.id ?? `call_${index}`,
        type: 'function',
        function: {
          name: toOpenAiTool({ name: call.function.name }).function.name,
          arguments: stringifyJson(call.function.arguments),
        },
      })),
    };
  });
}

/** One tool per line, the `<tools>` block of the judge, generator and validator prompts. */
export function promptTools(tools: readonly FunctionDefinition[]): string {
  return openAiTools(tools)
    .map((tool) => stringifyJson(tool, { separators: 'python' }))
    .join('\n');
}

/** The conversation as readable JSON for a prompt (arguments as objects). */
export function promptConversation(messages: readonly ChatMessage[]): string {
  return stringifyJson(messages, { separators: 'python' });
}

/** A response (calls or text) as the prompts show it: `{"tool_calls": [...]}` or `{"content": "..."}`. */
export function promptResponse(
  response: { calls: readonly { name: string; arguments: JsonValue }[] } | { text: string },
): string {
  if ('calls' in response) {
    return stringifyJson(
      { tool_calls: response.calls.map((call) => ({ name: call.name, arguments: call.arguments })) },
      { separators: 'python' },
    );
  }
  return stringifyJson({ content: response.text }, { separators: 'python' });
}

/** A target as a prompt response; `acceptable` targets show each argument's first acceptable value. */
export function promptTarget(target: Target): string {
  if (target.kind === 'text') return promptResponse({ text: target.text ?? '' });
  if (target.kind === 'calls') return promptResponse({ calls: target.calls });
  return promptResponse({
    calls: target.calls.map((call) => ({
      name: call.name,
      arguments: Object.fromEntries(
        Object.entries(call.arguments)
          .filter(([, values]) => values[0] !== '')
          .map(([k, values]) => [k, values[0]!]),
      ),
    })),
  });
}

/** The date line of the prompts: LoopTool's samples carry "The current time is …" in their system prompt. */
export function conversationDate(sample: Sample): string {
  const system = sample.messages.find((m) => m.role === 'system');
  const match = system?.content.match(/The current time is ([^.\n]+)/);
  return match?.[1]?.trim() ?? 'unknown';
}
