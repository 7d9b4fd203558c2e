import { z } from 'zod';
import type { JudgeVerdict } from '../vocabulary.js';
import { JsonValue } from './json-value.js';

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

/** A conversation turn the generator writes: plain text turns; the last one is the user's request to answer. */
export const GeneratedTurn = z.object({
  role: z.enum(['user', 'assistant']),
  content: z.string().min(1),
});
export type GeneratedTurn = z.infer<typeof GeneratedTurn>;

/** A call the generator writes as the new sample's label; arguments are parsed losslessly (floats stay floats). */
export const GeneratedCall = z.object({ name: z.string().min(1), arguments: z.record(z.string(), JsonValue) });
export type GeneratedCall = z.infer<typeof GeneratedCall>;

/**
 * What the generator returns for one EDDE expansion: a new conversation over the seed's tools that ends with a user
 * turn, and the correct calls for it.
 */
export const GeneratorOutput = z.object({
  conversation: z.array(GeneratedTurn).min(1),
  tool_calls: z.array(GeneratedCall).min(1),
});
export type GeneratorOutput = z.infer<typeof GeneratorOutput>;

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
