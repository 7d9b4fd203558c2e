import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import {
  DeployConfig,
  EvalSetConfig,
  JudgeConfig,
  LoopConfig,
  LoopName,
  ModelRoleConfig,
  ProbeConfig,
  ExpandConfig,
  Grpo,
  TimeoutsConfig,
} from './config.js';
import { ErrorType } from './errors.js';
import { CONTENT_FORMATS, MALFORMED_BLOCK_POLICIES } from './parse/types.js';
import { CheckpointManifest } from './training.js';
import { BatchedStage, CheckerMode, MemberRole, RewardMode, TrainingWeights } from './vocabulary.js';
import { BfclHarnessCategory } from './vocabulary.js';

/**
 * The boundary inputs of workflows and activities, one zod schema each: what crosses Temporal's history is checked on
 * arrival (workflows at start, activities on entry), so a malformed input fails once, non-retryably, naming the
 * field, instead of failing somewhere deep inside on every retry. Workflows carry ids and settings, never samples.
 */

const positiveInt = z.number().int().positive();
const nonNegativeInt = z.number().int().nonnegative();

/** A loop's iteration; 0 is the base model, scored before the first round. */
const Iteration = nonNegativeInt;

/** The task queues one loop's work runs on (by role), with any worker-set suffix applied. */
export const TaskQueuesInput = z.object({ control: z.string().min(1), llm: z.string().min(1), gpu: z.string().min(1) });

/** A batch is the seq range (afterSeq, lastSeq] of the rows a stage works through, in seq order. */
export const SeqRange = z.object({ afterSeq: nonNegativeInt, lastSeq: positiveInt });
export type SeqRange = z.infer<typeof SeqRange>;

/** The range itself, or the number of a batch planned (and stored) by `planStageBatches`. */
export const BatchRef = z.union([SeqRange, z.object({ batchNo: nonNegativeInt })]);
export type BatchRef = z.infer<typeof BatchRef>;

/** One model role's servers and the model to call on them. */
export const ModelTarget = ModelRoleConfig;
export type ModelTarget = z.infer<typeof ModelTarget>;

/** How the probe decides a match (core/checker): the loop's `reward` mode, and how text replies are decoded. */
export const CheckerInput = z.object({
  mode: CheckerMode,
  contentFormat: z.enum(CONTENT_FORMATS).optional(),
  onMalformedBlock: z.enum(MALFORMED_BLOCK_POLICIES).optional(),
});

const StageBatchKey = { loopName: LoopName, iteration: Iteration, batch: BatchRef };

/** Greedy Capability Probing over one batch of D_j. */
export const ProbeBatchInput = z.object({
  ...StageBatchKey,
  versionId: positiveInt,
  policy: ModelTarget,
  checker: CheckerInput,
  maxTokens: positiveInt,
  /** The trainer's prompt budget (`grpo.maxPromptTokens`, its default too): a longer prompt is `too_long`. */
  maxPromptTokens: Grpo.shape.maxPromptTokens,
  /** The policy's context in tokens; null: what the server's /tokenize reports (`max_model_len`), if it has one. */
  contextTokens: positiveInt.nullable().default(null),
  /**
   * A probe-system prompt version to prepend to samples that have no system message; none by default, so the probe
   * sees exactly what training and evaluation see.
   */
  systemPromptVersion: z.string().min(1).nullable().default(null),
  /**
   * Samples per database round trip (and per settled group of requests). 256: a default batch (`probe.batchSize`, 200)
   * is one page, its samples read in one query and its results written in one statement; at 128 a batch took two
   * pages, each settled and written before the next was (probe at zero model latency 4,832–4,880 → 5,122–5,200
   * samples/s in `npm run bench -- stages`, the same rows). A crash loses at most a page's calls; the retry makes them
   * again.
   */
  pageSize: positiveInt.default(256),
  /** Samples per request to the policy server (`probe.conversationsPerRequest`); 1 for inputs written before it. */
  conversationsPerRequest: ProbeConfig.shape.conversationsPerRequest.default(1),
});
export type ProbeBatchInput = z.input<typeof ProbeBatchInput>;

/** Scores a policy on the seed pool's held-out slice (activities/held-out.ts). */
export const ScoreHeldOutInput = z.object({
  loopName: LoopName,
  iteration: Iteration,
  seedVersionId: positiveInt,
  seed: z.number().int(),
  heldOutFraction: LoopConfig.shape.data.shape.heldOutFraction,
  policy: ModelTarget,
  checker: CheckerInput,
  maxTokens: positiveInt,
});
export type ScoreHeldOutInput = z.input<typeof ScoreHeldOutInput>;

/** Judgement-Guided Label Verification over one batch of this iteration's mismatches. */
export const JudgeBatchInput = z.object({
  ...StageBatchKey,
  judge: ModelTarget,
  /** The loop's seed: sampled votes derive their request seed from it, so a retried vote draws the same. */
  seed: z.number().int(),
  ...JudgeConfig.pick({ votes: true, voteTemperature: true, parseRetries: true, consensusOver: true }).shape,
  promptVersion: z.string().min(1).optional(),
  /** Mismatches per database round trip. */
  pageSize: positiveInt.default(32),
});
export type JudgeBatchInput = z.input<typeof JudgeBatchInput>;

/** Error-Driven Data Expansion over one batch of error seeds. */
export const ExpandBatchInput = z.object({
  ...StageBatchKey,
  generator: ModelTarget,
  /** Validation judge; absent: the LLM tier is skipped (the rule tier always runs). */
  validator: ModelTarget.optional(),
  /** The loop's seed: scenario focuses and sampling seeds derive from it, so reruns and retries draw the same. */
  seed: z.number().int(),
  // Sampling and prompt versions come from the config with its defaults, declared once there.
  ...ExpandConfig.pick({
    k: true,
    maxAttempts: true,
    temperature: true,
    topP: true,
    topK: true,
    presencePenalty: true,
    maxTokens: true,
    generatorPromptVersion: true,
    validatorPromptVersion: true,
  }).shape,
  /** Error seeds per database round trip. */
  pageSize: positiveInt.default(8),
});
export type ExpandBatchInput = z.input<typeof ExpandBatchInput>;

/** Plans a stage's batches once (stored), from the rows the previous stages finished writing. */
export const PlanStageBatchesInput = z.object({
  loopName: LoopName,
  iteration: Iteration,
  stage: BatchedStage,
  versionId: positiveInt.optional(),
  size: positiveInt,
});
export type PlanStageBatchesInput = z.input<typeof PlanStageBatchesInput>;

export const RegisterLoopInput = z.object({
  loopName: LoopName,
  workflowId: z.string().min(1),
  config: z.record(z.string(), z.unknown()),
  configHash: z.string().regex(/^[0-9a-f]{64}$/),
});
export type RegisterLoopInput = z.input<typeof RegisterLoopInput>;

/** D_1: drawn from the seed pool. */
/** The seed pool's held-out slice: the last `heldOutFraction` of the pool in the loop's seed order. */
const HeldOutSlice = LoopConfig.shape.data.shape.heldOutFraction;

/**
 * `decontamination.exclude`: samples found to overlap the evaluation sets under this index (activities/decontam.ts
 * `checkAssemblyCandidates` checked every candidate first) are left out of the version.
 */
const AssemblyExclusion = z.object({ indexId: positiveInt, toolNames: z.boolean() });

export const CreateInitialVersionInput = z.object({
  loopName: LoopName,
  seedDataset: z.string().min(1),
  size: positiveInt.optional(),
  seed: z.number().int(),
  heldOutFraction: HeldOutSlice,
  exclusion: AssemblyExclusion.optional(),
  configHash: z.string().min(1),
});
export type CreateInitialVersionInput = z.input<typeof CreateInitialVersionInput>;

/** D_{j+1} by Eq. 5: the budget and the config's shares of it (core/stages/composition.ts plans the counts). */
export const AssembleNextVersionInput = z.object({
  loopName: LoopName,
  iteration: positiveInt,
  currentVersionId: positiveInt,
  seedVersionId: positiveInt,
  budget: positiveInt,
  shares: LoopConfig.shape.data.pick({
    seedNewFraction: true,
    seedNewDecay: true,
    errorSeedMaxShare: true,
    highPplMinShare: true,
  }),
  heldOutFraction: HeldOutSlice,
  exclusion: AssemblyExclusion.optional(),
  seed: z.number().int(),
  configHash: z.string().min(1),
  injectBatchIds: z.array(z.string().min(1)),
});
export type AssembleNextVersionInput = z.input<typeof AssembleNextVersionInput>;

/** Scores a policy on one BFCL file of a held-out set. */
export const EvaluateFileInput = z.object({
  loopName: LoopName,
  iteration: Iteration,
  evalSet: EvalSetConfig.shape.name,
  file: EvalSetConfig.shape.files.element,
  policy: ModelTarget,
  maxTokens: positiveInt,
  /** Score only the first N questions of the file (`evaluation.maxPerCategory`). */
  maxPerCategory: positiveInt.optional(),
});
export type EvaluateFileInput = z.input<typeof EvaluateFileInput>;
export type EvalFile = z.infer<typeof EvaluateFileInput>['file'];

export const SummarizeEvaluationInput = z.object({
  loopName: LoopName,
  iteration: Iteration,
  evalSet: EvalSetConfig.shape.name,
});
export type SummarizeEvaluationInput = z.input<typeof SummarizeEvaluationInput>;

/** Scores a policy with BFCL's own harness (`evaluation.backend: bfcl-eval`) and stores its rows and summary. */
export const EvaluateWithHarnessInput = z.object({
  loopName: LoopName,
  iteration: Iteration,
  policy: ModelTarget,
  /** Concrete categories (groups expanded, core/stages/bfcl-overall.ts). */
  categories: z.array(BfclHarnessCategory).min(1),
  maxPerCategory: positiveInt.optional(),
  maxTokens: positiveInt,
});
export type EvaluateWithHarnessInput = z.input<typeof EvaluateWithHarnessInput>;

/** One GRPO round on the loop's training backend. */
export const TrainIterationInput = z.object({
  loopName: LoopName,
  iteration: positiveInt,
  versionId: positiveInt,
  /** π_0 (`training.baseModel`, else the policy's model). */
  baseModel: z.string().min(1),
  /** π_{j-1}; null: the base model. */
  baseCheckpoint: CheckpointManifest.nullable(),
  training: LoopConfig.shape.training,
  reward: RewardMode,
  /** The loop's seed, for the trainer's sampling. */
  seed: z.number().int(),
  /** How often to poll the job. @unit milliseconds */
  pollIntervalMs: positiveInt.default(2_000),
  /** Which submission of this iteration's job: > 1 after a resumed loop's job failed (a new job key). */
  jobAttempt: positiveInt.default(1),
});
export type TrainIterationInput = z.input<typeof TrainIterationInput>;

/** Cancels an iteration's training job by its job key (the loop's cleanup when it is cancelled). */
export const CancelTrainingInput = TrainIterationInput.pick({ loopName: true, iteration: true, training: true });
export type CancelTrainingInput = z.input<typeof CancelTrainingInput>;

/** Makes π_j servable on every policy server. */
export const DeployCheckpointInput = z.object({
  loopName: LoopName,
  iteration: positiveInt,
  checkpoint: CheckpointManifest,
  /** The policy servers' OpenAI base URLs (`…/v1`); absent: the worker's defaults. */
  policyBaseUrls: ModelRoleConfig.shape.baseUrls,
  deploy: DeployConfig,
});
export type DeployCheckpointInput = z.input<typeof DeployCheckpointInput>;

/** Counts of a version's members by role. */
export const CountsByRole = z.partialRecord(MemberRole, nonNegativeInt);
export type CountsByRole = z.infer<typeof CountsByRole>;

/** What one iteration did, as the status query, the UI and the CLI show it. */
export const IterationSummary = z.object({
  iteration: positiveInt,
  /** The dataset version D_j trained on. */
  dataset: z.string(),
  countsByRole: CountsByRole,
  probe: z.record(z.string(), z.number()).optional(),
  judge: z.record(z.string(), z.number()).optional(),
  expand: z.record(z.string(), z.number()).optional(),
  /** The next round's dataset, when this iteration assembled one. */
  nextDataset: z.string().optional(),
  /** Held-out accuracy (BFCL v3 overall) of this iteration's policy. */
  accuracy: z.number().nullable().optional(),
  /** BFCL v3's groups of that evaluation (`nonLive`, `live`, `multiTurn`, as core/stages/bfcl-overall.ts computes them). */
  evaluation: z.record(z.string(), z.number()).optional(),
  /** Accuracy of this iteration's policy on the seed pool's held-out slice (data.heldOutFraction). */
  heldOutAccuracy: z.number().nullable().optional(),
  /** Where π_j's weights are (the manifest's path). */
  checkpoint: z.string().nullable().optional(),
  /** What training did: weights kind, optimizer steps and final metrics (mean reward, …). */
  training: z
    .object({ kind: TrainingWeights, steps: nonNegativeInt, metrics: z.record(z.string(), z.number()) })
    .optional(),
  /** The name π_j was served under. */
  servedModel: z.string().optional(),
});
export type IterationSummary = z.infer<typeof IterationSummary>;

/** A dataset version as the loop carries it: its id, its `dataset@n` ref and its counts by role. */
export const VersionRef = z.object({ versionId: positiveInt, ref: z.string().min(1), countsByRole: CountsByRole });
export type VersionRef = z.infer<typeof VersionRef>;

/**
 * What one loop run carries to the next (continue-as-new per iteration): ids and counts, never samples. Until setup
 * has drawn D_1, `dataset` and `seedVersionId` are absent.
 */
export const LoopState = z.object({
  /** The iteration this run executes. */
  iteration: positiveInt,
  /** D_j, the version this iteration trains on and probes. */
  dataset: VersionRef.optional(),
  seedVersionId: positiveInt.optional(),
  /** |D_j| for every round after the first. */
  budget: positiveInt.optional(),
  /** π_{j-1}: the checkpoint this iteration starts from (null: the base model). */
  checkpoint: CheckpointManifest.nullable(),
  paused: z.boolean(),
  stopAfterIteration: z.boolean(),
  pendingInjections: z.array(z.string()),
  /** Idempotency keys of injectData calls already taken (bounded: at most one per update, ≤ 2000 per run). */
  injectionKeys: z.array(z.string()),
  /** The base model's held-out accuracy (iteration 0), once scored. */
  baselineAccuracy: z.number().nullable().optional(),
  /** The base model's accuracy on the seed pool's held-out slice (iteration 0), once scored. */
  baselineHeldOutAccuracy: z.number().nullable().optional(),
  history: z.array(IterationSummary),
});
export type LoopState = z.infer<typeof LoopState>;

/**
 * How a run continues a loop whose last run ended without completing (failed, terminated, timed out, cancelled):
 * `looptool loop resume` reads it from that run's history. The run starts its iteration again from the same state;
 * every step is idempotent and reads what is stored, so what the earlier run finished is found, not recomputed.
 */
export const LoopResume = z.object({
  /** The run this one continues. */
  fromRunId: z.string().min(1),
  /** Why that run ended, as its history says. */
  cause: z.string(),
  /** π_j, when the earlier run had trained it: this run does not train again. */
  trained: CheckpointManifest.optional(),
  /** Submission number of this iteration's training job (see TrainIterationInput.jobAttempt). */
  trainingJobAttempt: positiveInt,
  /** What the earlier run had been told after it started (injections, pause, stop), taken over. */
  pendingInjections: z.array(z.string()),
  injectionKeys: z.array(z.string()),
  paused: z.boolean(),
  stopAfterIteration: z.boolean(),
});
export type LoopResume = z.infer<typeof LoopResume>;

export const LoopWorkflowInput = z.object({
  loopName: LoopName,
  config: LoopConfig,
  configHash: z.string().regex(/^[0-9a-f]{64}$/),
  /** Absent on the first run. */
  state: LoopState.optional(),
  queues: TaskQueuesInput.optional(),
  /** Present when this run resumes a loop whose last run did not complete. */
  resume: LoopResume.optional(),
});
export type LoopWorkflowInput = z.input<typeof LoopWorkflowInput>;

/** A stage's running totals: batch results summed, nested maps (verdicts, statuses) per key. */
export const StageTotals = z.record(z.string(), z.union([z.number(), z.record(z.string(), z.number())]));
export type StageTotals = z.infer<typeof StageTotals>;

const StageWorkflowCommon = {
  loopName: LoopName,
  iteration: positiveInt,
  queues: TaskQueuesInput,
  /** Rows per batch (one activity each). */
  batchSize: positiveInt,
  /** Batches in flight at once. */
  concurrency: positiveInt,
  /** Batches one run schedules before it continues as new, keeping each run's history far below Temporal's limits. */
  batchesPerRun: positiveInt,
  paused: z.boolean(),
  /** The loop's activity timeouts (the batches' heartbeat timeout among them). */
  timeouts: TimeoutsConfig,
  /** Where a continued run picks up, and what it had counted. */
  resume: z.object({ nextBatch: nonNegativeInt, totals: StageTotals }).optional(),
};

/** What a stage's batch activity gets besides the loop, iteration and batch, which the stage workflow fills in. */
const filledByStage = { loopName: true, iteration: true, batch: true } as const;

/** One batched stage of one iteration, as a child workflow. */
export const StageWorkflowInput = z.discriminatedUnion('stage', [
  z.object({
    ...StageWorkflowCommon,
    stage: z.literal('probe'),
    versionId: positiveInt,
    settings: ProbeBatchInput.omit(filledByStage),
  }),
  z.object({ ...StageWorkflowCommon, stage: z.literal('judge'), settings: JudgeBatchInput.omit(filledByStage) }),
  z.object({ ...StageWorkflowCommon, stage: z.literal('expand'), settings: ExpandBatchInput.omit(filledByStage) }),
]);
export type StageWorkflowInput = z.input<typeof StageWorkflowInput>;

/** A staging batch's id: its purpose and a UUID (datasets/import.ts makes them). */
export const stagingBatchId = (purpose: 'import' | 'injection', uuid: string) => `${purpose}-${uuid}`;

/** The `injectData` update: a batch `looptool inject` staged, merged once into the loop's next dataset. */
export const InjectDataInput = z.object({
  stagingBatchId: z.string().regex(/^injection-[0-9a-f-]{36}$/, 'must name a batch staged by `looptool inject`'),
  /** Makes a retried update a no-op. */
  idempotencyKey: z.string().min(1).max(200),
});
export type InjectDataInput = z.infer<typeof InjectDataInput>;

/**
 * Parses a boundary input, or fails non-retryably with every problem and its field: a retry cannot fix what the
 * caller sent. Used by workflows at start and by activities on entry.
 */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map(
    (issue) => `${issue.path.map(String).join('.') || '(input)'}: ${issue.message}`,
  );
  throw ApplicationFailure.nonRetryable(`invalid ${what} input: ${problems.join('; ')}`, ErrorType.ConfigInvalid);
}
