import { z } from 'zod';

/**
 * The loop's vocabulary: every closed set of names that crosses a boundary (database CHECKs, workflow history, the
 * CLI, the report). Each is declared here once, as a zod enum; `X.options` is its list, `X.enum.name` a member.
 * test/db/vocabulary.test.ts checks every CHECK list in db/migrations against these.
 */

/** The three model roles of the method: the policy being trained, the judge (JGLV) and the generator (EDDE). */
export const ModelRole = z.enum(['policy', 'judge', 'generator']);
export type ModelRole = z.infer<typeof ModelRole>;

/**
 * The stages of one iteration, in the order they run (DESIGN.md §5). The paper's Algorithm 1 in words: train π_j on
 * D_j, deploy it, probe D_j (GCP), judge the mismatches (JGLV), expand the verified errors (EDDE), assemble D_{j+1}.
 */
export const Stage = z.enum(['train', 'deploy', 'probe', 'judge', 'expand', 'assemble', 'evaluate']);
export type Stage = z.infer<typeof Stage>;

/** Where a loop is: a stage, or before the first one (`setup`: register, draw D_1, score the base model), or `done`. */
export const LoopPhase = z.enum(['setup', ...Stage.options, 'done']);
export type LoopPhase = z.infer<typeof LoopPhase>;

/** The stages that fan out over seq-range batches as a child workflow. */
export const BatchedStage = z.enum(['probe', 'judge', 'expand']);
export type BatchedStage = z.infer<typeof BatchedStage>;

/** What a model call in the ledger was for (`validate`: EDDE's validation judge). */
export const CallPurpose = z.enum(['probe', 'judge', 'expand', 'validate', 'evaluate']);
export type CallPurpose = z.infer<typeof CallPurpose>;

/**
 * The probe's verdict on one sample (GCP): the policy's greedy answer matched the label, did not, or did not parse;
 * or the prompt is longer than the policy's context or the trainer's prompt budget (`too_long`: not asked, never an
 * error seed, left out of training exports).
 */
export const ProbeOutcome = z.enum(['match', 'mismatch', 'parse_error', 'too_long']);
export type ProbeOutcome = z.infer<typeof ProbeOutcome>;

/**
 * The judge's verdict on one mismatch (JGLV, LOOPTOOL-METHOD.md §4): the prediction is wrong, the label is wrong, both
 * are acceptable, both are wrong; or no vote could be read (`judge_failed`, the raw replies are kept).
 */
export const JudgeVerdict = z.enum(['pred_wrong', 'label_wrong', 'both_correct', 'both_wrong', 'judge_failed']);
export type JudgeVerdict = z.infer<typeof JudgeVerdict>;

/**
 * What a judge's consensus is a majority of: the votes requested (a failed vote abstains; the default, so one valid
 * vote of three never rewrites a label) or only the votes that could be read.
 */
export const ConsensusBasis = z.enum(['requested', 'valid']);
export type ConsensusBasis = z.infer<typeof ConsensusBasis>;

/** The verdicts that make a sample an error seed for EDDE and D_{j+1}. */
export const ErrorVerdict = JudgeVerdict.extract(['pred_wrong', 'label_wrong']);
export type ErrorVerdict = z.infer<typeof ErrorVerdict>;

/** What became of one EDDE expansion slot. */
export const ExpansionStatus = z.enum([
  'accepted',
  'rejected_rule',
  'rejected_judge',
  'duplicate',
  'generation_failed',
]);
export type ExpansionStatus = z.infer<typeof ExpansionStatus>;

/**
 * Why a sample is in a dataset version (Eq. 5): imported (`seed`), fresh seed data (`seed_new`), a PRED_WRONG sample
 * with its label (`error_seed`), a LABEL_WRONG sample with its corrected label (`relabeled`), an accepted expansion
 * (`expanded`), a mastered high-perplexity sample (`high_ppl`), or data injected into a running loop (`injected`).
 */
export const MemberRole = z.enum(['seed', 'seed_new', 'error_seed', 'relabeled', 'expanded', 'high_ppl', 'injected']);
export type MemberRole = z.infer<typeof MemberRole>;

/** How a sample entered the store (lineage). */
export const OriginKind = z.enum(['seed_import', 'injection', 'expansion', 'label_correction']);
export type OriginKind = z.infer<typeof OriginKind>;

export const VersionStatus = z.enum(['open', 'frozen']);
export type VersionStatus = z.infer<typeof VersionStatus>;

/** A staging batch holds an imported file (`import`) or data for a running loop (`injection`). */
export const StagingPurpose = z.enum(['import', 'injection']);
export type StagingPurpose = z.infer<typeof StagingPurpose>;

/** `loading` while an import writes it; `ready`; `consumed` once a version took it in; `expired` when its import died. */
export const StagingStatus = z.enum(['loading', 'ready', 'consumed', 'expired']);
export type StagingStatus = z.infer<typeof StagingStatus>;

/** A training job as its backend reports it. */
export const TrainingJobStatus = z.enum(['queued', 'running', 'succeeded', 'failed', 'cancelled']);
export type TrainingJobStatus = z.infer<typeof TrainingJobStatus>;

/** A training run as the database records it (`submitted` covers a job its backend still queues). */
export const TrainingRunStatus = z.enum(['submitted', 'running', 'succeeded', 'failed', 'cancelled']);
export type TrainingRunStatus = z.infer<typeof TrainingRunStatus>;

/** How "did the model call the tools right?" is decided for the probe and the reward, as a loop config names it. */
export const RewardMode = z.enum(['exact', 'bfcl_ast']);
export type RewardMode = z.infer<typeof RewardMode>;

/** The checker that decides a reward mode (core/checker): LoopTool's exact match, or BFCL's AST checker. */
export const CheckerMode = z.enum(['exact', 'bfcl']);
export type CheckerMode = z.infer<typeof CheckerMode>;

export const CHECKER_OF_REWARD = { exact: 'exact', bfcl_ast: 'bfcl' } as const satisfies Record<
  RewardMode,
  CheckerMode
>;

/** Input formats of `looptool data import` and `looptool inject`. */
export const ImportFormat = z.enum(['openai', 'sharegpt', 'looptool', 'bfcl']);
export type ImportFormat = z.infer<typeof ImportFormat>;

/** Output formats of `looptool data export` (and of the training export: verl parquet). */
export const ExportFormat = z.enum(['verl-parquet', 'trl-jsonl', 'openai-jsonl']);
export type ExportFormat = z.infer<typeof ExportFormat>;

/** The training export a recipe reads: verl's GRPO parquet or TRL's GRPO JSON Lines (same prompt, same label). */
export const TrainingDatasetFormat = z.enum(['verl-parquet', 'trl-jsonl']);
export type TrainingDatasetFormat = z.infer<typeof TrainingDatasetFormat>;

/** What a training run updates: every weight (served by restarting the server) or a LoRA adapter (hot-loaded). */
export const TrainingWeights = z.enum(['full', 'lora']);
export type TrainingWeights = z.infer<typeof TrainingWeights>;

/** How chat records become samples: one for the last assistant turn, or one for each. */
export const SplitMode = z.enum(['last', 'each']);
export type SplitMode = z.infer<typeof SplitMode>;

/** Who scores the held-out evaluation: the built-in checker over `evaluation.sets`, or BFCL's own harness. */
export const EvaluationBackend = z.enum(['builtin', 'bfcl-eval']);
export type EvaluationBackend = z.infer<typeof EvaluationBackend>;

/**
 * The BFCL categories the `bfcl-eval` backend runs (bfcl-eval's v4 names of the v3 categories: `simple_python` is v3's
 * `simple`, `simple_java` its `java`), and the groups that name several at once (BFCL's own collection names).
 */
export const BfclHarnessCategory = z.enum([
  'simple_python',
  'simple_java',
  'simple_javascript',
  'multiple',
  'parallel',
  'parallel_multiple',
  'irrelevance',
  'live_simple',
  'live_multiple',
  'live_parallel',
  'live_parallel_multiple',
  'live_irrelevance',
  'live_relevance',
  'multi_turn_base',
  'multi_turn_miss_func',
  'multi_turn_miss_param',
  'multi_turn_long_context',
]);
export type BfclHarnessCategory = z.infer<typeof BfclHarnessCategory>;
export const BfclHarnessGroup = z.enum(['non_live', 'live', 'multi_turn', 'single_turn', 'all_v3']);
export type BfclHarnessGroup = z.infer<typeof BfclHarnessGroup>;
