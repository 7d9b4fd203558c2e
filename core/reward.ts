/**
 * The reward endpoint's wire shapes (`looptool reward serve`, POST /v1/score). Trainers' reward functions (verl,
 * TRL; `recipes/reward/`) send the completions of a batch with their labels and get one score each, decided by
 * core/checker: the same verdict the probe and evaluation give. Keys are snake_case for the Python callers.
 */
import { z } from 'zod';
import { FunctionDefinition } from './schemas/function-def.js';
import { RewardMode } from './vocabulary.js';

export const REWARD_SCORE_PATH = '/v1/score';

export const RewardItem = z.object({
  /** The policy's reply text, as generated (`<tool_call>` blocks, prose, `<think>`…). */
  completion: z.string(),
  /** The label as the training export writes it (`reward_model.ground_truth`): `<tool_call>` blocks or text. */
  ground_truth: z.string(),
  /** The sample's tools (the export's `tools` column, JSON text or parsed); `bfcl_ast` needs them for types. */
  tools: z.union([z.string(), z.array(FunctionDefinition)]).optional(),
});
export type RewardItem = z.infer<typeof RewardItem>;

export const RewardRequest = z.object({
  /** Overrides the server's configured mode for this batch. */
  mode: RewardMode.optional(),
  items: z.array(RewardItem),
});
export type RewardRequest = z.infer<typeof RewardRequest>;

export const RewardResponse = z.object({
  mode: RewardMode,
  /** 1 for a reply the checker accepts, else 0 (paper Eq. 1), in request order. */
  scores: z.array(z.number()),
  /** Why each reply failed (checker error type), null when it passed. */
  errors: z.array(z.string().nullable()),
});
export type RewardResponse = z.infer<typeof RewardResponse>;
