import { z } from 'zod';
import { GPU_POOL_NAME_PATTERN, HELD_OUT_EVAL_SET } from './constants.js';
import { LoopName } from './names.js';
import { ConsensusBasis, RewardMode, TrainingDatasetFormat, TrainingWeights } from './vocabulary.js';
import { BfclHarnessCategory, BfclHarnessGroup, EvaluationBackend } from './vocabulary.js';

// The name rule lives in core/names.ts with the dataset names' one; re-exported for the modules that import it here.
export { LoopName };

const url = z.url({ protocol: /^https?$/ });

/** The servers and model of one role. */
export const ModelRoleConfig = z.strictObject({
  /**
   * OpenAI-compatible base URLs (vLLM `…/v1`), used round robin. Default: the worker's LOOPTOOL_<ROLE>_BASE_URLS, so
   * a config can leave where the servers run to the deployment.
   */
  baseUrls: z.array(url).min(1).optional(),
  /** The served model name. For the policy, the base model; each iteration's checkpoint is served under its own name. */
  model: z.string().min(1),
  /** In-flight requests per server from one worker. @default 16 */
  maxConcurrency: z.number().int().positive().default(16),
});

export const SimTraining = z.strictObject({
  backend: z.literal('sim'),
  /** The simulated trainer's base URL (the sim server, without /v1). */
  url,
});
export type SimTraining = z.infer<typeof SimTraining>;

export const LocalTraining = z.strictObject({
  backend: z.literal('local'),
  /**
   * The training command, as argv (no shell); `{spec}` (the job spec's path: every setting), `{dataset}`, `{output}`
   * and `{job}` are substituted. Relative paths in it resolve against the project root.
   */
  command: z.array(z.string().min(1)).min(1),
  /** Where checkpoints and job state are written. */
  workDir: z.string().min(1),
});

/**
 * Slurm: each job is one `sbatch` of a batch script (recipes/slurm/job.sbatch, or `template`) whose payload is
 * `command` (argv; `{spec}`, `{dataset}`, `{output}`, `{job}` substituted), named after the job key. `workDir` must be on
 * a filesystem the compute nodes share with the worker.
 */
export const SlurmTraining = z.strictObject({
  backend: z.literal('slurm'),
  command: z.array(z.string().min(1)).min(1),
  workDir: z.string().min(1),
  partition: z.string().min(1).optional(),
  /** `--nodes`; more than one runs verl's Ray-on-Slurm pattern (a Ray head and workers inside the allocation). */
  nodes: z.number().int().positive().default(1),
  /** `--gpus-per-node`; 0 asks for none. */
  gpusPerNode: z.number().int().nonnegative().default(0),
  cpusPerTask: z.number().int().positive().optional(),
  /** `--mem`, as Slurm writes it (`64G`). */
  memory: z.string().min(1).optional(),
  /** `--time`, as Slurm writes it (`04:00:00`). */
  timeLimit: z.string().min(1).optional(),
  /** Environment modules loaded before the command (`module load …`). */
  modules: z.array(z.string().min(1)).default([]),
  /** A container image the command runs in (through the site's `srun --container-image`, pyxis/enroot). */
  container: z.string().min(1).optional(),
  /** A batch-script template of your own (same placeholders as the default one). */
  template: z.string().min(1).optional(),
  /** More `sbatch` arguments, as argv (`['--account=ml', '--qos=high']`). */
  extraArgs: z.array(z.string().min(1)).default([]),
});
export type SlurmTraining = z.infer<typeof SlurmTraining>;

/** Ray: each job is a Ray Jobs submission (`submission_id` from the job key) whose entrypoint is `command`. */
export const RayTraining = z.strictObject({
  backend: z.literal('ray'),
  /** The Ray dashboard's address (Jobs REST API), e.g. `http://ray-head:8265`. */
  address: url,
  command: z.array(z.string().min(1)).min(1),
  workDir: z.string().min(1),
  /**
   * Ray's `runtime_env` (env_vars, pip, a working_dir URI, …), passed as is. `env_vars` values must be strings, as
   * Ray wants them: checked here so a number is refused at `loop start`, not by Ray at submission.
   */
  runtimeEnv: z.looseObject({ env_vars: z.record(z.string(), z.string()).optional() }).default({}),
  /** Resources the entrypoint reserves (`entrypoint_num_gpus`, `entrypoint_num_cpus`). */
  entrypointGpus: z.number().nonnegative().optional(),
  entrypointCpus: z.number().nonnegative().optional(),
});
export type RayTraining = z.infer<typeof RayTraining>;

/** A volume a Kubernetes training pod mounts: a persistent volume claim or a host path. */
export const KubernetesVolume = z
  .strictObject({
    name: z.string().min(1),
    mountPath: z.string().min(1),
    claimName: z.string().min(1).optional(),
    hostPath: z.string().min(1).optional(),
  })
  .refine((volume) => (volume.claimName === undefined) !== (volume.hostPath === undefined), {
    message: 'give exactly one of claimName (a persistent volume claim) or hostPath',
  });

/** Kubernetes: a batch/v1 Job (or a KubeRay RayJob) per training job, named from the job key. */
export const KubernetesTraining = z.strictObject({
  backend: z.literal('kubernetes'),
  /** `job` (batch/v1 Job) or `rayjob` (KubeRay RayJob). */
  kind: z.enum(['job', 'rayjob']).default('job'),
  namespace: z.string().min(1).default('default'),
  image: z.string().min(1),
  command: z.array(z.string().min(1)).min(1),
  /** Where the pod sees the shared volume that holds job folders and checkpoints (the worker writes there too). */
  workDir: z.string().min(1),
  gpus: z.number().int().nonnegative().default(1),
  nodeSelector: z.record(z.string(), z.string()).default({}),
  volumes: z.array(KubernetesVolume).default([]),
  serviceAccount: z.string().min(1).optional(),
  /** `kind: rayjob`: Ray's `runtime_env`, as for the ray backend, passed as the RayJob's `runtimeEnvYAML`. */
  runtimeEnv: RayTraining.shape.runtimeEnv,
});
export type KubernetesTraining = z.infer<typeof KubernetesTraining>;

/**
 * GRPO settings, handed whole to the trainer in the job spec (LOOPTOOL-METHOD.md §2.4, §10.3 defaults); the recipes
 * translate them into verl overrides or TRL's GRPOConfig and hard-code none.
 */
export const Grpo = z.strictObject({
  /** Rollouts per prompt (G). */
  groupSize: z.number().int().positive().default(16),
  learningRate: z.number().positive().default(1e-6),
  /** Clip-Higher: ε_low and ε_high of the clipped ratio. */
  clipLow: z.number().positive().default(0.2),
  clipHigh: z.number().positive().default(0.28),
  /** KL and entropy terms are off in the paper. */
  klCoef: z.number().nonnegative().default(0),
  entropyCoef: z.number().nonnegative().default(0),
  rolloutTemperature: z.number().positive().default(1.0),
  maxPromptTokens: z.number().int().positive().default(4096),
  maxResponseTokens: z.number().int().positive().default(1024),
  /** Prompts per training batch. */
  trainBatchSize: z.number().int().positive().default(128),
  /** Prompts per optimizer update (verl `ppo_mini_batch_size`). @default trainBatchSize */
  miniBatchSize: z.number().int().positive().optional(),
  /** Sequences per device per forward/backward pass (verl's `*_micro_batch_size_per_gpu`, TRL's per-device batch). */
  microBatchSizePerDevice: z.number().int().positive().default(4),
  epochs: z.number().int().positive().default(2),
  /** Stop after this many optimizer steps (smoke tests, CPU runs); absent: the epochs decide. */
  maxSteps: z.number().int().positive().optional(),
});
export type Grpo = z.infer<typeof Grpo>;

/** The adapter trained when `training.weights` is `lora`. */
export const LoraConfig = z.strictObject({
  rank: z.number().int().positive().default(16),
  alpha: z.number().int().positive().default(32),
  /** Module names, or `all-linear`. */
  targetModules: z.union([z.literal('all-linear'), z.array(z.string().min(1)).min(1)]).default('all-linear'),
});
export type LoraConfig = z.infer<typeof LoraConfig>;

/** What every training backend shares: the trainer's settings, sent whole in the job spec. */
export const TrainingSettings = z.strictObject({
  grpo: Grpo.prefault({}),
  /** Train every weight (deployed by restarting the policy server) or a LoRA adapter (hot-loaded). @default full */
  weights: TrainingWeights.default('full'),
  lora: LoraConfig.prefault({}),
  /** π_0, a Hugging Face folder or hub id. @default models.policy.model */
  baseModel: z.string().min(1).optional(),
  /** Iteration j starts from π_{j-1} with a fresh optimizer (paper §5.1); false: every iteration from π_0. */
  warmStart: z.boolean().default(true),
  /** The export the recipe reads. @default verl-parquet */
  datasetFormat: TrainingDatasetFormat.default('verl-parquet'),
  /**
   * A running job whose step has not moved for this long is hung (a stuck NCCL sync, a deadlocked rollout): it is
   * cancelled and the stage fails with its log tail. Set it above your slowest step, model loading included.
   * @default 3600
   */
  stallTimeoutSeconds: z.number().int().positive().default(3600),
  /**
   * The GPU pool this loop trains on: one of the workers' LOOPTOOL_GPU_POOLS entries (`name:concurrency`). Loops that
   * name one pool take turns on it. Absent: the general GPU queue (LOOPTOOL_GPU_CONCURRENCY).
   */
  pool: z.string().regex(GPU_POOL_NAME_PATTERN, 'lowercase letters, digits, _ and -; at most 32 characters').optional(),
});

/**
 * How π_j reaches the policy servers. A LoRA checkpoint is hot-loaded under a new name per iteration; a full-weight
 * checkpoint needs the server restarted on it, by `restartCommand` (argv, no shell; `{checkpoint}`, `{served_model}`,
 * `{base_url}` substituted), run once per policy server, which must return once the restart is under way.
 */
export const DeployConfig = z.strictObject({
  restartCommand: z.array(z.string().min(1)).min(1).optional(),
  /** Adapters kept loaded per server, the newest first; older ones are unloaded (VRAM). @default 2 */
  loraRetention: z.number().int().positive().default(2),
  /** How long a restarted server may take to answer /health and list the model. @default 900 */
  readyTimeoutSeconds: z.number().int().positive().default(900),
});
export type DeployConfig = z.infer<typeof DeployConfig>;

export const EvalSetConfig = z.strictObject({
  name: z
    .string()
    .regex(/^[a-z0-9][a-z0-9._-]*$/)
    .refine((name) => name !== HELD_OUT_EVAL_SET, {
      message: `\`${HELD_OUT_EVAL_SET}\` is the seed pool's held-out slice (data.heldOutFraction); name the set otherwise`,
    }),
  /** BFCL question files, each with its possible-answer file (irrelevance files need none). */
  files: z.array(z.strictObject({ questions: z.string().min(1), answers: z.string().min(1).optional() })).min(1),
});
export type EvalSetConfig = z.infer<typeof EvalSetConfig>;

/**
 * Held-out evaluation of π_0 and each π_j. `builtin` scores the `sets` (BFCL files shipped with the project or your
 * own) with the project's checker (core/checker): single-turn categories only, fast, every call in `model_calls`.
 * `bfcl-eval` runs BFCL's own harness (PyPI bfcl-eval, `.tools/py-bfcl`, recipes/bfcl-eval/run.py) against the
 * deployed policy's OpenAI endpoint for `categories`, live and multi-turn included, with BFCL's data from the
 * installed package (no `sets`). Both store per-category rows and BFCL v3's summary (core/stages/bfcl-overall.ts).
 */
export const EvaluationConfig = z
  .strictObject({
    /** `builtin` (the sets below, the project's checker) or `bfcl-eval` (BFCL's harness). @default builtin */
    backend: EvaluationBackend.default('builtin'),
    sets: z.array(EvalSetConfig).default([]),
    /**
     * bfcl-eval only: the BFCL categories (v4 names) or groups (`non_live`, `live`, `multi_turn`, `single_turn`,
     * `all_v3`) to run. @default [non_live, live, multi_turn]
     */
    categories: z
      .array(z.union([BfclHarnessCategory, BfclHarnessGroup]))
      .min(1)
      .optional(),
    /** Score only the first N questions of each category (file) in BFCL's order: a quick, smaller evaluation. */
    maxPerCategory: z.number().int().positive().optional(),
  })
  .superRefine((evaluation, ctx) => {
    if (evaluation.backend === 'bfcl-eval' && evaluation.sets.length > 0)
      ctx.addIssue({
        code: 'custom',
        path: ['sets'],
        message:
          'sets are for the builtin backend; bfcl-eval reads BFCL’s data from the installed package (use categories)',
      });
    if (evaluation.backend === 'builtin' && evaluation.categories !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['categories'],
        message: 'categories are for the bfcl-eval backend; the builtin backend scores the files of its sets',
      });
  });
export type EvaluationConfig = z.infer<typeof EvaluationConfig>;

/** Greedy Capability Probing (GCP). */
export const ProbeConfig = z.strictObject({
  /** Reply budget of each probe and evaluation call. @default 1024 */
  maxTokens: z.number().int().positive().default(1024),
  /**
   * The policy server's context in tokens (vLLM `--max-model-len`). Absent: what the server's `/tokenize` reports.
   * A sample whose prompt does not fit it with `maxTokens` to spare, or is longer than `training.grpo.maxPromptTokens`,
   * is recorded as `too_long`: not asked, never an error seed, left out of training exports.
   */
  contextTokens: z.number().int().positive().optional(),
  /** Samples per batch (one activity each). @default 200 */
  batchSize: z.number().int().positive().default(200),
  /**
   * Samples asked in one request to the policy server: more than 1 sends them as the conversations of vLLM's batch
   * route (`/v1/chat/completions/batch`), which answers each as its own greedy completion; the per-request work on both
   * sides (HTTP, parsing, scheduling) is then paid once per request, not once per sample. A server without that route
   * (it answers 404 or 405) is asked one sample at a time, as is a batch it refuses (one prompt it cannot serve). The
   * route reports only the batch's total prompt tokens: a sample probed in a batch has no prompt token count of its
   * own (its completion tokens are its logprobs' count), and the ledger has one row per request. 1: one request per
   * sample. @default 16
   */
  conversationsPerRequest: z.number().int().positive().max(256).default(16),
});

/** Judgement-Guided Label Verification (JGLV). */
export const JudgeConfig = z.strictObject({
  /** Votes per mismatch. @default 3 */
  votes: z.number().int().positive().max(9).default(3),
  /**
   * Consensus is a strict majority of the votes `requested` (a vote whose reply never fit the schema abstains: 1 valid
   * vote of 3 decides nothing) or of the `valid` votes only. @default requested
   */
  consensusOver: ConsensusBasis.default('requested'),
  /** Sampling temperature of each vote when there is more than one (one vote is greedy). @default 0.7 */
  voteTemperature: z.number().min(0).max(2).default(0.7),
  /** Extra attempts for a vote whose reply does not fit the schema. @default 2 */
  parseRetries: z.number().int().nonnegative().default(2),
  /** Mismatches per batch. @default 100 */
  batchSize: z.number().int().positive().default(100),
});

/** Error-Driven Data Expansion (EDDE). */
export const ExpandConfig = z.strictObject({
  /** New samples per error seed (the paper's k; the official code used 3). @default 4 */
  k: z.number().int().positive().max(16).default(4),
  /** Generation attempts per slot when the reply does not fit the schema. @default 3 */
  maxAttempts: z.number().int().positive().default(3),
  /** Run the LLM validation tier (the rule tier always runs). @default true */
  validate: z.boolean().default(true),
  /** Error seeds per batch. @default 50 */
  batchSize: z.number().int().positive().default(50),
  // Generator sampling: the official code's (LOOPTOOL-METHOD.md §5.3, §10.3), sent with every generation request and
  // recorded on every expansion row, so a dataset says how its expansions were drawn.
  /** @default 1.0 */
  temperature: z.number().min(0).max(2).default(1.0),
  /** @default 0.9 */
  topP: z.number().gt(0).max(1).default(0.9),
  /** vLLM's `top_k` (sent as an extra body field; -1 disables it there). @default 20 */
  topK: z.number().int().min(-1).default(20),
  /** @default 1.2 */
  presencePenalty: z.number().min(-2).max(2).default(1.2),
  /** Reply budget of one generation (the reasoning included when the server thinks). @default 8192 */
  maxTokens: z.number().int().positive().default(8192),
  /**
   * The prompt versions (activities/llm/prompts/<name>.v<N>.md), pinned here rather than "the newest", so a loop keeps
   * the prompts it started with when a new version ships; each expansion row records the ones it used.
   * @default generator.v2
   */
  generatorPromptVersion: z
    .string()
    .regex(/^generator\.v\d+$/, 'a generator prompt version: generator.v<N>')
    .default('generator.v2'),
  /** @default validator.v1 */
  validatorPromptVersion: z
    .string()
    .regex(/^validator\.v\d+$/, 'a validator prompt version: validator.v<N>')
    .default('validator.v1'),
});

/**
 * How long a silent activity may go before Temporal retries it elsewhere: model batches heartbeat every page, training
 * every poll. Short values find a dead worker sooner; they must stay well above one page's or one poll's duration.
 */
export const TimeoutsConfig = z.strictObject({
  /** A batch heartbeats every second while it runs: a dead worker's batch is retried this long after it died. */
  batchHeartbeatSeconds: z.number().int().positive().default(30),
  trainHeartbeatSeconds: z.number().int().positive().default(60),
  /**
   * The longest wait between two rounds of retries of work that runs into an outage (a database, model server or
   * trainer API that does not answer). The loop waits for as long as the outage lasts; this only bounds how soon after
   * it ends the work goes on, and how much history a long outage writes.
   */
  outageBackoffMaxSeconds: z.number().int().positive().default(120),
});
export type TimeoutsConfig = z.infer<typeof TimeoutsConfig>;

/**
 * Decontamination against the evaluation sets (LOOPTOOL-METHOD.md §6.3, §10.4 item 9): every dataset version the loop
 * builds is checked for tool-name and n-gram overlap with `evaluation.sets` (core/decontam.ts) and the overlap is
 * reported per version; `exclude` also leaves overlapping samples out of the versions the loop assembles.
 */
export const DecontaminationConfig = z.strictObject({
  /** Leave samples that overlap an evaluation set out of every version the loop assembles. @default false */
  exclude: z.boolean().default(false),
  /** Length of the shared word-token run that counts as n-gram overlap (13: GPT-3's decontamination). @default 13 */
  ngram: z.number().int().min(2).max(64).default(13),
  /**
   * An evaluation question shorter than `ngram` tokens counts as one n-gram of its whole text when it has at least this
   * many (so a verbatim copy of a short BFCL question is found); shorter ones are too generic to mean a copy. @default 8
   */
  minQuestionTokens: z.number().int().min(1).max(64).default(8),
  /**
   * Whether sharing a tool name with an evaluation question counts as contamination (for `exclude` and the headline
   * count); tool-name overlap is reported either way. @default true
   */
  toolNames: z.boolean().default(true),
});
export type DecontaminationConfig = z.infer<typeof DecontaminationConfig>;

/**
 * A loop's configuration, from a YAML or JSON file. Defaults follow the paper (LOOPTOOL-METHOD.md §10.3) where it gives
 * one; each is declared once, here. Parsed once, by the client, before anything starts; the workflow receives the
 * parsed object (no secrets: API keys come from the worker's environment).
 */
export const LoopConfig = z.strictObject({
  name: LoopName.optional(),
  /** Seeds every random choice of the loop (seed-new draws, scenario focuses are derived from sample ids). */
  seed: z.number().int().default(7),
  data: z.strictObject({
    /** The seed pool D_seed: a dataset name (its latest version) or `dataset@n`. */
    seedDataset: z.string().min(1),
    /** |D_1|, drawn from the seed pool. Defaults to 65% of the pool (18,304 of 28,160 in the paper). */
    initialSize: z.number().int().positive().optional(),
    /** |D_j| for later rounds, held fixed as in the paper. Defaults to |D_1|. */
    budget: z.number().int().positive().optional(),
    /** Fraction of the budget that is fresh seed data in D_2, halving each round (5,632 / 18,304 in the paper). */
    seedNewFraction: z.number().min(0).max(1).default(0.3077),
    seedNewDecay: z.number().min(0).max(1).default(0.5),
    /**
     * The most of the budget error seeds may take (the paper's rounds hold 10.5–20.4%, Table 3): a weak policy's
     * errors cannot crowd out everything else. Chosen above the paper's largest share. @default 0.25
     */
    errorSeedMaxShare: z.number().min(0).max(1).default(0.25),
    /**
     * The least of the budget kept for high-perplexity mastered samples when that many exist (the paper's rounds hold
     * 22.1–27.3%): expansions fill only the room above it. @default 0.22
     */
    highPplMinShare: z.number().min(0).max(1).default(0.22),
    /**
     * A fixed slice of the seed pool kept out of training (never in D_1 or seed-new) and probed every iteration,
     * beside the evaluation sets: accuracy on the training distribution that no round trained on (the official code
     * held out 2% as validation). 0: none. @default 0.02
     */
    heldOutFraction: z.number().min(0).max(0.5).default(0.02),
  }),
  models: z.strictObject({ policy: ModelRoleConfig, judge: ModelRoleConfig, generator: ModelRoleConfig }),
  // One strict object per backend with the shared settings merged in: an intersection of two strict objects would
  // refuse each other's keys, and a loose one would let a misspelt setting through.
  training: z.discriminatedUnion('backend', [
    SimTraining.extend(TrainingSettings.shape),
    LocalTraining.extend(TrainingSettings.shape),
    SlurmTraining.extend(TrainingSettings.shape),
    RayTraining.extend(TrainingSettings.shape),
    KubernetesTraining.extend(TrainingSettings.shape),
  ]),
  deploy: DeployConfig.prefault({}),
  /** Iterations J. @default 4 */
  iterations: z.number().int().positive().max(100).default(4),
  /** Probe the base model before the first training round (the paper trains on D_1 first). @default false */
  probeFirst: z.boolean().default(false),
  /**
   * Probe, judge and expand in the last iteration too. Nothing is assembled after it, so by default its π_J is only
   * evaluated (held-out sets, the held-out probe slice); set it to keep the last round's probe results and error
   * analysis for inspection. @default false
   */
  probeLastIteration: z.boolean().default(false),
  /** How "did the model call the tools right?" is decided for probing (and the reward). */
  reward: RewardMode.default('exact'),
  probe: ProbeConfig.prefault({}),
  judge: JudgeConfig.prefault({}),
  expand: ExpandConfig.prefault({}),
  evaluation: EvaluationConfig.prefault({}),
  /** Overlap of each dataset version with the evaluation sets, and whether overlapping samples are left out. */
  decontamination: DecontaminationConfig.prefault({}),
  timeouts: TimeoutsConfig.prefault({}),
  /** Stage batches in flight at once (each is one activity). @default 4 */
  concurrency: z.strictObject({ batches: z.number().int().positive().max(64).default(4) }).prefault({}),
});
export type LoopConfig = z.infer<typeof LoopConfig>;
export type ModelRoleConfig = z.infer<typeof ModelRoleConfig>;
export type TrainingConfig = LoopConfig['training'];
export type LoopConfigInput = z.input<typeof LoopConfig>;

/** One problem of an invalid config: where (the path into the config) and what. */
export interface LoopConfigIssue {
  path: PropertyKey[];
  message: string;
}

/**
 * Every problem of an invalid config with its path. An unknown key is one problem per key, at the key itself (so a
 * reader can show its line), with the closest known key when one is near (`iteration` → `iterations`). `input` is the
 * config as given; it picks the training backend whose keys are suggested.
 */
export function loopConfigIssues(error: z.ZodError, input?: unknown): LoopConfigIssue[] {
  return error.issues.flatMap((issue): LoopConfigIssue[] => {
    if (issue.code === 'invalid_type' && input !== undefined && valueAt(input, issue.path) === undefined)
      return [{ path: issue.path, message: `missing (expected ${issue.expected})` }];
    if (issue.code !== 'unrecognized_keys') return [{ path: issue.path, message: issue.message }];
    const known = knownKeysAt(LoopConfig, issue.path, input);
    return issue.keys.map((key) => {
      const near = closestKey(key, known);
      return {
        path: [...issue.path, key],
        message: `unknown key${near ? ` (did you mean \`${near}\`?)` : known.length > 0 ? ` (known keys here: ${known.join(', ')})` : ''}`,
      };
    });
  });
}

/** `models.judge.baseUrls[0]`: a config path as people write it. */
export function formatConfigPath(path: readonly PropertyKey[]): string {
  return (
    path
      .map((part) => (typeof part === 'number' ? `[${part}]` : `.${String(part)}`))
      .join('')
      .replace(/^\./, '') || '(config)'
  );
}

/** Every problem of an invalid config, each with its path (`models.judge.baseUrls[0]: Invalid URL`). */
export function loopConfigProblems(error: z.ZodError, input?: unknown): string[] {
  return loopConfigIssues(error, input).map((issue) => `${formatConfigPath(issue.path)}: ${issue.message}`);
}

/** The shape of zod's schema definitions that {@link knownKeysAt} walks (zod 4's `_zod.def`). */
interface SchemaDef {
  type: string;
  shape?: Record<string, z.ZodType>;
  innerType?: z.ZodType;
  in?: z.ZodType;
  element?: z.ZodType;
  options?: z.ZodType[];
  discriminator?: string;
  left?: z.ZodType;
  right?: z.ZodType;
  values?: unknown[];
}
const defOf = (schema: z.ZodType): SchemaDef => (schema as unknown as { _zod: { def: SchemaDef } })._zod.def;

/** The keys the object schema at `path` allows; at a discriminated union, those of the option `input` chose. */
function knownKeysAt(schema: z.ZodType, path: readonly PropertyKey[], input: unknown): string[] {
  const def = defOf(schema);
  switch (def.type) {
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'readonly':
    case 'catch':
      return knownKeysAt(def.innerType!, path, input);
    case 'pipe':
      return knownKeysAt(def.in!, path, input);
    case 'array':
      return path.length === 0 ? [] : knownKeysAt(def.element!, path.slice(1), childOf(input, path[0]!));
    case 'intersection':
      return [...knownKeysAt(def.left!, path, input), ...knownKeysAt(def.right!, path, input)];
    case 'union': {
      const options = def.options ?? [];
      const chosen = def.discriminator ? childOf(input, def.discriminator) : undefined;
      const matching = options.filter((option) => {
        const literal = defOf(option).shape?.[def.discriminator ?? ''];
        return chosen !== undefined && literal !== undefined && (defOf(literal).values ?? []).includes(chosen);
      });
      return [...new Set((matching.length > 0 ? matching : options).flatMap((o) => knownKeysAt(o, path, input)))];
    }
    case 'object': {
      if (path.length === 0) return Object.keys(def.shape ?? {});
      const child = def.shape?.[String(path[0])];
      return child ? knownKeysAt(child, path.slice(1), childOf(input, path[0]!)) : [];
    }
    default:
      return [];
  }
}

function valueAt(value: unknown, path: readonly PropertyKey[]): unknown {
  return path.reduce<unknown>((node, key) => childOf(node, key), value);
}

function childOf(value: unknown, key: PropertyKey): unknown {
  return value !== null && typeof value === 'object' ? (value as Record<PropertyKey, unknown>)[key] : undefined;
}

/**
 * The known key a misspelt one most likely meant: the same letters ignoring case, `_` and `-` (`seed_dataset`), or at
 * most two edits away and a third of its length (`iteration`, `bachSize`); undefined when none is that close.
 */
function closestKey(key: string, known: readonly string[]): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/[_-]/g, '');
  const same = known.find((k) => norm(k) === norm(key));
  if (same) return same;
  let best: { key: string; distance: number } | undefined;
  for (const candidate of known) {
    const distance = editDistance(norm(key), norm(candidate));
    if (distance <= Math.min(2, Math.ceil(candidate.length / 3)) && (!best || distance < best.distance))
      best = { key: candidate, distance };
  }
  return best?.key;
}

/** Levenshtein distance; keys are short, so the quadratic table is nothing. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++)
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[b.length]!;
}
