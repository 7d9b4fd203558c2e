import { z } from 'zod';
import { JsonObject } from './json-value.js';

/** A past tool call inside an assistant message, OpenAI style but with parsed arguments (see `ToolCall`). */
export const AssistantToolCall = z.object({
  id: z.string().optional(),
  type: z.literal('function').default('function'),
  function: z.object({ name: z.string().min(1), arguments: JsonObject }),
});
export type AssistantToolCall = z.infer<typeof AssistantToolCall>;

/** Instructions for the model (LoopTool's system prompt, BFCL's live system turns). */
export const SystemMessage = z.object({ role: z.literal('system'), content: z.string() });
export type SystemMessage = z.infer<typeof SystemMessage>;

/** A user turn. */
export const UserMessage = z.object({ role: z.literal('user'), content: z.string() });
export type UserMessage = z.infer<typeof UserMessage>;

/** `content` is null when the turn is only tool calls, as in OpenAI's API. */
export const AssistantMessage = z.object({
  role: z.literal('assistant'),
  content: z.string().nullable(),
  tool_calls: z.array(AssistantToolCall).min(1).optional(),
  reasoning_content: z.string().optional(),
});
export type AssistantMessage = z.infer<typeof AssistantMessage>;

/** A tool's result. `tool_call_id` links it to the call when the source has ids; `name` when it has names. */
export const ToolMessage = z.object({
  role: z.literal('tool'),
  content: z.string(),
  tool_call_id: z.string().optional(),
  name: z.string().optional(),
});
export type ToolMessage = z.infer<typeof ToolMessage>;

/** A chat message in OpenAI's shape. Unknown fields are dropped, so they never reach a sample's content hash. */
export const ChatMessage = z.discriminatedUnion('role', [SystemMessage, UserMessage, AssistantMessage, ToolMessage]);
export type ChatMessage = z.infer<typeof ChatMessage>;
