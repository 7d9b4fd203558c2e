import { z } from 'zod';
import { contentHash } from '../hash.js';
import { FunctionDefinition } from './function-def.js';
import { ChatMessage } from './messages.js';
import { AcceptableCall, ToolCall } from './tool-call.js';

/** The expected answer is exactly these calls (in any order). */
export const CallsTarget = z.object({ kind: z.literal('calls'), calls: z.array(ToolCall).min(1) });
export type CallsTarget = z.infer<typeof CallsTarget>;

/** The expected answer is no tool call; `text` is the reference answer when the source has one. */
export const TextTarget = z.object({ kind: z.literal('text'), text: z.string().optional() });
export type TextTarget = z.infer<typeof TextTarget>;

/** The expected answer is these calls, each argument one of several acceptable values (BFCL possible answers). */
export const AcceptableTarget = z.object({ kind: z.literal('acceptable'), calls: z.array(AcceptableCall).min(1) });
export type AcceptableTarget = z.infer<typeof AcceptableTarget>;

/** What the next assistant turn should do. */
export const Target = z.discriminatedUnion('kind', [CallsTarget, TextTarget, AcceptableTarget]);
export type Target = z.infer<typeof Target>;

/**
 * One training or evaluation example: the tools offered, the conversation so far, and what the next assistant turn
 * should do. Immutable and content-addressed: its id is {@link sampleId}.
 */
export const Sample = z.object({
  tools: z.array(FunctionDefinition),
  messages: z.array(ChatMessage).min(1),
  target: Target,
});
export type Sample = z.infer<typeof Sample>;

/**
 * A sample's id: the SHA-256 hex of the canonical JSON of `{tools, messages, target}` (keys sorted, floats kept as
 * floats). Key order in the source never changes it; any change of content does. Pure, so workflows can compute it.
 */
export function sampleId(sample: Sample): string {
  return contentHash({ tools: sample.tools, messages: sample.messages, target: sample.target });
}
