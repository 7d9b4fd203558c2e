import type { CheckpointManifest, TrainingJobSpec } from '../../core/training.js';
import type { TrainingJobStatus } from '../../core/vocabulary.js';

export type { TrainingJobStatus } from '../../core/vocabulary.js';

/** What a training job is asked to do: the job spec of core/training.ts, every setting included. */
export type { TrainingJobSpec } from '../../core/training.js';

export interface TrainingJobState {
  externalId: string;
  status: TrainingJobStatus;
  step: number;
  totalSteps: number;
  /** What the run produced, once it succeeded (its `checkpoint.json`). */
  checkpoint?: CheckpointManifest;
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
