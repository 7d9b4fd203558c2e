import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { ApplicationFailure, CancelledFailure, Context, sleep } from '@temporalio/activity';
import type { LoopConfig } from '../core/config.js';
import { ErrorType } from '../core/errors.js';
import { exportVersion } from '../client/io/dataset-export.js';
import { upsertTrainingRun } from '../db/queries/stages.js';
import type { ActivityDeps } from './deps.js';
import { TERMINAL_STATUSES, type TrainingBackend, type TrainingJobState } from './training/backend.js';
import { LocalTrainingBackend } from './training/local-backend.js';
import { SimTrainingBackend, TrainerApiError } from './training/sim-backend.js';

export interface TrainIterationInput {
  loopName: string;
  iteration: number;
  versionId: number;
  baseCheckpoint: string | null;
  training: LoopConfig['training'];
  /** How often to poll the job. @unit milliseconds @default 2000 */
  pollIntervalMs?: number;
}

export interface TrainIterationResult {
  checkpointUri: string;
  externalId: string;
  metrics: Record<string, number>;
}

/** The backend a loop's training config names. */
export function trainingBackendFor(training: LoopConfig['training']): TrainingBackend {
  switch (training.backend) {
    case 'sim':
      return new SimTrainingBackend(training.url);
    case 'local':
      return new LocalTrainingBackend({ command: training.command, workDir: training.workDir });
  }
}

/**
 * One GRPO round as a long-running activity: export D_j as verl parquet, submit the job idempotently by job key
 * (`<loop>-iter-<j>`), then poll it, heartbeating `{externalId, step, totalSteps}`. A retry (worker crash, timeout)
 * re-submits with the same key and so re-attaches to the running job. Cancellation cancels the job on the backend.
 * Trainers that hang without an error (NCCL weight sync, TRL#6796) are caught by the heartbeat timeout.
 */
export function createTrainActivities(deps: ActivityDeps) {
  return {
    async trainIteration(input: TrainIterationInput): Promise<TrainIterationResult> {
      const context = Context.current();
      const backend = trainingBackendFor(input.training);
      const key = { loopName: input.loopName, iteration: input.iteration };
      const jobKey = `${input.loopName}-iter-${input.iteration}`;
      const dir = path.join(deps.artifactsDir, input.loopName, `iter-${input.iteration}`);
      mkdirSync(dir, { recursive: true });
      const datasetPath = path.join(dir, 'train.parquet');
      // The export is deterministic for a frozen version, so re-exporting on a retry writes the same file.
      await exportVersion(deps.pool, { ref: String(input.versionId), format: 'verl-parquet', out: datasetPath });
      const call = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
        try {
          return await fn();
        } catch (err) {
          if (err instanceof TrainerApiError && err.status >= 400 && err.status < 500 && err.status !== 408 && err.status !== 429) {
            throw ApplicationFailure.nonRetryable(`${what}: ${err.message}`, ErrorType.ConfigInvalid);
          }
          throw err;
        }
      };
      let state: TrainingJobState = await call('submit', () =>
        backend.submit({ jobKey, datasetPath, baseCheckpoint: input.baseCheckpoint, outputDir: path.join(dir, 'checkpoint'), grpo: input.training.grpo }),
      );
      const record = (s: TrainingJobState) =>
        upsertTrainingRun(deps.pool, key, {
          backend: backend.name,
          jobKey,
          externalId: s.externalId,
          datasetVersionId: input.versionId,
          baseCheckpoint: input.baseCheckpoint,
          status: s.status === 'queued' ? 'submitted' : s.status,
          checkpointUri: s.checkpointUri ?? null,
          metrics: s.metrics ?? {},
        });
      await record(state);
      try {
        while (!TERMINAL_STATUSES.has(state.status)) {
          context.heartbeat({ externalId: state.externalId, status: state.status, step: state.step, totalSteps: state.totalSteps });
          await sleep(input.pollIntervalMs ?? 2_000);
          state = await call('status', () => backend.status(state.externalId, context.cancellationSignal));
        }
      } catch (err) {
        if (err instanceof CancelledFailure) {
          await backend.cancel(state.externalId).catch(() => {});
          await record({ ...state, status: 'cancelled' });
        }
        throw err;
      }
      await record(state);
      if (state.status !== 'succeeded' || !state.checkpointUri) {
        throw ApplicationFailure.create({
          message: `training job ${jobKey} ${state.status}${state.error ? `: ${state.error}` : ''}`,
          type: ErrorType.TrainingJobFailed,
          nonRetryable: state.status === 'cancelled',
        });
      }
      return { checkpointUri: state.checkpointUri, externalId: state.externalId, metrics: state.metrics ?? {} };
    },
  };
}
