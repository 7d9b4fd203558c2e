import type { TrainingJobStatus } from '../../core/vocabulary.js';

export type { TrainingJobStatus } from '../../core/vocabulary.js';

/** What a training job is asked to do: GRPO on one dataset file, from a base checkpoint, into an output folder. */
export interface TrainingJobSpec {
  /** Idempotency key: submitting the same key again returns the same job (`<loop>-iter-<j>`). */
  jobKey: string;
  /** verl GRPO parquet (prompt, reward_model.ground_truth, data_source). */
  datasetPath: string;
  /** The previous iteration's checkpoint, or null for the base model. */
  baseCheckpoint: string | null;
  outputDir: string;
  /** GRPO hyperparameters, passed through to the trainer. */
  grpo: Record<string, number>;
}

export interface TrainingJobState {
  externalId: string;
  status: TrainingJobStatus;
  step: number;
  totalSteps: number;
  checkpointUri?: string;
  error?: string;
  metrics?: Record<string, number>;
}

/**
 * A place GRPO jobs run: the simulated trainer, a local detached process, Slurm, Ray Jobs or Kubernetes. Every method
 * is safe to call again: `submit` is idempotent by job key, so a retried activity re-attaches to the running job
 * instead of starting a second one on the GPUs.
 */
export interface TrainingBackend {
  readonly name: string;
  /** Where its jobs run (an API URL, a work folder), for error messages. */
  readonly location: string;
  submit(spec: TrainingJobSpec, signal?: AbortSignal): Promise<TrainingJobState>;
  status(externalId: string, signal?: AbortSignal): Promise<TrainingJobState>;
  cancel(externalId: string): Promise<void>;
  logs(externalId: string): Promise<string>;
}

/** The statuses a job (or its recorded run) never leaves. */
export const TERMINAL_STATUSES: ReadonlySet<string> = new Set<TrainingJobStatus>(['succeeded', 'failed', 'cancelled']);
