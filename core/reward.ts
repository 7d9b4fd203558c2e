/**
 * The reward endpoint's wire shapes (`looptool reward serve`, POST /v1/score). Trainers' reward functions (verl,
 * TRL; `recipes/reward/`) send the completions of a batch with their labels and get one score each, decided by
 * core/checker: the same verdict the probe and evaluation give. Keys are snake_case for the Python callers.
 */
import { z } from 'zod';
import { JsonValue } from './schemas/json-value.js';
import { RewardMode } from './vocabulary.js';

export const REWARD_SCORE_PATH = '/v1/score';
export const REWARD_HEALTH_PATH = '/health';

/**
 * A reply as an assistant message: TRL's conversational completions carry `tool_calls` (OpenAI shape, `arguments` a
 * JSON string or an object) next to `content`. Other keys (`role`) are ignored.
 */
export const RewardReplyMessage = z.object({
  content: z.string().nullable().optional(),
  tool_calls: z.array(JsonValue).nullable().optional(),
});
export type RewardReplyMessage = z.infer<typeof RewardReplyMessage>;

export const RewardItem = z.object({
  /** The policy's reply: its text as generated (`<tool_call>` blocks, prose, `<think>`…) or an assistant message. */
  completion: z.union([z.string(), RewardReplyMessage]),
  /** The label as the training export writes it (`reward_model.ground_truth`): `<tool_call>` blocks or text. */
  ground_truth: z.string(),
  /**
   * The sample's tools (verl's `extra_info.tools`, TRL's `tools` column): JSON text or a list, each tool an OpenAI
   * wrapper (`{type: "function", function}`) or a bare definition. Read per item, so a bad tool list scores that item
   * 0 with its error instead of failing the batch. `bfcl_ast` needs them for parameter types.
   */
  tools: z
    .union([z.string(), z.array(JsonValue)])
    .nullable()
    .optional(),
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
  /**
   * Null when the reply passed; else why not: the checker's error type (`exact_match:no_match`,
   * `simple_function_checker:wrong_func_name`…), or `field: reason` for an item that could not be judged (a label
   * that does not parse, tools that do not read).
   */
  errors: z.array(z.string().nullable()),
});
export type RewardResponse = z.infer<typeof RewardResponse>;

/** The body of a refused request (400: not JSON; 422: not a {@link RewardRequest}), every problem with its field. */
export const RewardErrorResponse = z.object({
  error: z.object({ message: z.string(), problems: z.array(z.string()) }),
});
export type RewardErrorResponse = z.infer<typeof RewardErrorResponse>;
