/**
 * The contract between the loop and a trainer: the job spec the loop writes (every training setting, so recipes hold
 * no hyperparameter of their own) and the checkpoint manifest a recipe writes when it ends (what deployment decides
 * from). Both cross process and language boundaries as JSON (`spec.json`, `checkpoint.json`); the Python recipes in
 * `recipes/` read and write exactly these fields.
 */
import { z } from 'zod';
import { Grpo, LoraConfig } from './config.js';
import { RewardMode, TrainingDatasetFormat, TrainingJobStatus, TrainingWeights } from './vocabulary.js';

/** The file a recipe writes into its output folder when training succeeded. */
export const CHECKPOINT_MANIFEST_FILE = 'checkpoint.json';
/** The file the loop writes into a job's folder; recipes get its path as `{spec}`. */
export const TRAINING_SPEC_FILE = 'spec.json';
/** Progress a recipe may write into its output folder while it trains: `{step, total_steps}`. */
export const TRAINING_PROGRESS_FILE = 'progress.json';

/**
 * What a training run produced: a full-weight Hugging Face folder (served by restarting the server on it) or a LoRA
 * adapter folder (hot-loaded next to `baseModel`).
 */
export const CheckpointManifest = z.object({
  kind: TrainingWeights,
  /** The Hugging Face folder (weights or adapter), absolute; what a server loads. */
  path: z.string().min(1),
  /** π_0 the run descends from (a LoRA adapter is served on top of it). */
  baseModel: z.string().min(1),
  /** Optimizer steps this run took. */
  steps: z.number().int().nonnegative(),
  /** The run's final metrics (mean reward, loss, …), by name. */
  metrics: z.record(z.string(), z.number()).default({}),
});
export type CheckpointManifest = z.infer<typeof CheckpointManifest>;

/** One GRPO round as a trainer receives it (`spec.json`). */
export const TrainingJobSpec = z.object({
  /** Idempotency key: submitting the same key again finds the same job (`<loop>-iter-<j>`). */
  jobKey: z.string().min(1),
  loopName: z.string().min(1),
  iteration: z.number().int().positive(),
  /** The loop's seed: the recipe seeds its sampling with it, so a rerun draws the same rollouts. */
  seed: z.number().int(),
  /** D_j, exported in the format the recipe reads; every row renders its prompt with core/formats/policy-prompt. */
  dataset: z.object({ path: z.string().min(1), format: TrainingDatasetFormat, rows: z.number().int().nonnegative() }),
  /** π_0: a Hugging Face folder or hub id. */
  baseModel: z.string().min(1),
  /**
   * π_{j-1} to warm-start from, with a fresh optimizer (paper §5.1): not a resume. Null: start from `baseModel`
   * (the first iteration, or `warmStart: false`).
   */
  init: CheckpointManifest.nullable(),
  weights: TrainingWeights,
  lora: LoraConfig,
  grpo: Grpo,
  reward: z.object({
    mode: RewardMode,
    /** `looptool reward serve`'s URL when the submitter runs one; absent: the recipe's launcher starts its own. */
    url: z.string().optional(),
  }),
  /** Where the recipe writes its checkpoint, `checkpoint.json` and `progress.json`. */
  outputDir: z.string().min(1),
});
export type TrainingJobSpec = z.infer<typeof TrainingJobSpec>;

/** What the training activity heartbeats while a job runs, and what `loop status` and the Temporal UI show of it. */
export const TrainingProgress = z.object({
  /** The backend (`sim`, `local`, `slurm`, `ray`, `kubernetes`). */
  engine: z.string(),
  jobKey: z.string(),
  /** The engine's id of the job, once submitted. */
  externalId: z.string().optional(),
  status: z.union([TrainingJobStatus, z.literal('submitting')]),
  step: z.number().int().nonnegative(),
  totalSteps: z.number().int().nonnegative(),
  /** The job's last log lines (refreshed every 30 s). */
  logsTail: z.array(z.string()).optional(),
  /** Since when the engine has not answered (ISO time), while it does not. */
  unreachableSince: z.string().optional(),
  lastError: z.string().optional(),
});
export type TrainingProgress = z.infer<typeof TrainingProgress>;
