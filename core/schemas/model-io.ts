import { z } from 'zod';
import type { JudgeVerdict } from '../vocabulary.js';
import { JsonValue } from './json-value.js';
import type { ChatMessage } from './messages.js';

/**
 * What the judge returns for one mismatch (JGLV). Response 1 is always the reference label and Response 2 the policy's
 * prediction, as in the paper's prompt (Fig. 10), so the verdict tokens keep the paper's meaning:
 * RESPONSE1_INCORRECT = the label is wrong, RESPONSE2_INCORRECT = the prediction is wrong. Sent to the model as a JSON
 * schema (structured output); a reply that does not parse against it is a failed vote, never a guessed verdict.
 */
export const JudgeOutput = z.object({
  verdict: z.enum(['RESPONSE1_INCORRECT', 'RESPONSE2_INCORRECT', 'BOTH_CORRECT', 'BOTH_INCORRECT']),
  error_analysis: z.string().max(2000),
  correct_approach: z.string().max(2000),
});
export type JudgeOutput = z.infer<typeof JudgeOutput>;

/** The judge's verdict tokens mapped to the dataset's vocabulary (LOOPTOOL-METHOD.md §4.2). */
export const VERDICT_OF_JUDGE_TOKEN = {
  RESPONSE1_INCORRECT: 'label_wrong',
  RESPONSE2_INCORRECT: 'pred_wrong',
  BOTH_CORRECT: 'both_correct',
  BOTH_INCORRECT: 'both_wrong',
} as const satisfies Record<JudgeOutput['verdict'], JudgeVerdict>;
/** A verdict one vote can give (`judge_failed` is what a row says when no vote could be read). */
export type VoteVerdict = (typeof VERDICT_OF_JUDGE_TOKEN)[keyof typeof VERDICT_OF_JUDGE_TOKEN];

/** A call the generator writes as the new sample's label; arguments are parsed losslessly (floats stay floats). */
export const GeneratedCall = z.object({ name: z.string().min(1), arguments: z.record(z.string(), JsonValue) });
export type GeneratedCall = z.infer<typeof GeneratedCall>;

/** An earlier call in the generated history: a label's shape, plus the id its tool result names. */
export const GeneratedHistoryCall = GeneratedCall.extend({ id: z.string().min(1).optional() });
export type GeneratedHistoryCall = z.infer<typeof GeneratedHistoryCall>;

/**
 * A conversation turn the generator writes: user text; an assistant turn in words or with earlier tool calls; a tool
 * result answering one of those calls. Calls use the label's flat `{name, arguments}` shape (not OpenAI's nested
 * `function`), so the output writes calls one way throughout. Whether the turns fit together (results after their
 * calls, calls valid for the tools) is the rule tier's check (core/validate/calls.ts), which names the turn.
 */
export const GeneratedTurn = z.discriminatedUnion('role', [
  z.object({ role: z.literal('user'), content: z.string().min(1) }),
  z.object({
    role: z.literal('assistant'),
    content: z.string().nullable().optional(),
    tool_calls: z.array(GeneratedHistoryCall).optional(),
  }),
  z.object({
    role: z.literal('tool'),
    content: z.string(),
    tool_call_id: z.string().min(1).optional(),
    name: z.string().min(1).optional(),
  }),
]);
export type GeneratedTurn = z.infer<typeof GeneratedTurn>;

/**
 * What the generator returns for one EDDE expansion: a new conversation over the seed's tools (earlier tool calls with
 * their results where the seed has such history) ending with the turn to answer, and the answer: `tool_calls`, or
 * `content`, a text answer (a clarification question, or a reply that no tool fits), for seeds whose answer is text.
 * Exactly one of the two, as an assistant turn is either; `generator.v1` replies (`tool_calls` only) still fit.
 */
export const GeneratorOutput = z
  .object({
    conversation: z.array(GeneratedTurn).min(1),
    tool_calls: z.array(GeneratedCall).default([]),
    content: z.string().nullable().optional(),
  })
  .refine((o) => o.tool_calls.length > 0 !== Boolean(o.content?.trim()), {
    message: 'give either tool_calls (at least one) or a text content answer, not both',
    path: ['tool_calls'],
  });
export type GeneratorOutput = z.infer<typeof GeneratorOutput>;

/**
 * A generated turn as the sample stores it (OpenAI's shape, core/schemas/messages.ts), function names as the tools
 * declare them (`toolName` maps the wire names a model writes back). An assistant turn of calls only has null content, as in the API and the imported seeds.
 */
export function generatedTurnMessage(
  turn: GeneratedTurn,
  toolName: (name: string) => string = (name) => name,
): ChatMessage {
  switch (turn.role) {
    case 'user':
      return { role: 'user', content: turn.content };
    case 'tool':
      return {
        role: 'tool',
        content: turn.content,
        ...(turn.tool_call_id !== undefined ? { tool_call_id: turn.tool_call_id } : {}),
        ...(turn.name !== undefined ? { name: toolName(turn.name) } : {}),
      };
    case 'assistant': {
      const calls = turn.tool_calls ?? [];
      if (calls.length === 0) return { role: 'assistant', content: turn.content ?? '' };
      return {
        role: 'assistant',
        content: turn.content?.trim() ? turn.content : null,
        tool_calls: calls.map((call) => ({
          ...(call.id !== undefined ? { id: call.id } : {}),
          type: 'function' as const,
          function: { name: toolName(call.name), arguments: call.arguments },
        })),
      };
    }
  }
}

/** What the validation judge returns for one generated sample (the LLM tier of EDDE's two-tier check). */
export const ValidatorOutput = z.object({
  verdict: z.enum(['CORRECT', 'INCORRECT']),
  error_analysis: z.string().max(2000),
});
export type ValidatorOutput = z.infer<typeof ValidatorOutput>;

/** EDDE's four scenario focuses (paper App. G), sampled uniformly, unlike the official code's biased `randint(0,6) % 4`. */
export const SCENARIO_FOCUSES = [
  'complexity_variation',
  'user_persona',
  'interaction_style',
  'data_variation',
] as const;
export type ScenarioFocus = (typeof SCENARIO_FOCUSES)[number];
