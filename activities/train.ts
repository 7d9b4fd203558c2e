import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { ApplicationFailure, CancelledFailure, Context, sleep } from '@temporalio/activity';
import type { TrainingConfig } from '../core/config.js';
import type { CheckpointManifest, TrainingJobSpec } from '../core/training.js';
import { ErrorType } from '../core/errors.js';
import { CancelTrainingInput, parseInput, TrainIterationInput } from '../core/inputs.js';
import { exportVersion } from '../datasets/export.js';
import { getTrainingRun, upsertTrainingRun } from '../db/queries/training-runs.js';
import type { ActivityDeps } from './deps.js';
import { toApplicationFailure, TRAINER } from './failures.js';
import { TERMINAL_STATUSES, type TrainingBackend, type TrainingJobState } from './training/backend.js';
import { LocalTrainingBackend } from './training/local-backend.js';
import { SimTrainingBackend } from './training/sim-backend.js';

export interface TrainIterationResult {
  checkpoint: CheckpointManifest;
  externalId: string;
}

/** The backend a loop's training config names. */
export function trainingBackendFor(training: TrainingConfig): TrainingBackend {
  switch (training.backend) {
    case 'sim':
      return new SimTrainingBackend(training.url);
    case 'local':
      return new LocalTrainingBackend({ command: training.command, workDir: training.workDir });
    case 'slurm':
    case 'ray':
    case 'kubernetes':
      // Being built (issue 11): refused clearly rather than half-run.
      throw ApplicationFailure.nonRetryable(
        `the ${training.backend} training backend is not available yet in this build`,
        ErrorType.ConfigInvalid,
      );
  }
}

/** The job key of a loop's iteration: every backend finds the job by it, so a retry re-attaches instead of resubmitting. */
export const trainingJobKey = (loopName: string, iteration: number) => `${loopName}-iter-${iteration}`;

/** A backend call with its failures classified (unreachable API: retry; refused request: fail the stage). */
async function onBackend<T>(backend: TrainingBackend, what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toApplicationFailure(err, `${backend.name} trainer at ${backend.location}: ${what}`, TRAINER);
  }
}

/**
 * One GRPO round as a long-running activity: export D_j in the recipe's format, submit the job spec (every training
 * setting of the loop config) idempotently by job key (`<loop>-iter-<j>`), then poll it, heartbeating `{externalId, step, totalSteps}`. A retry (worker crash, timeout)
 * re-submits with the same key and so re-attaches to the running job. Cancellation cancels the job on the backend
 * before the activity reports itself cancelled (the loop waits for that). Trainers that hang without an error (NCCL
 * weight sync, TRL#6796) are caught by the heartbeat timeout.
 */
export function createTrainActivities(deps: ActivityDeps) {
  return {
    async trainIteration(rawInput: TrainIterationInput): Promise<TrainIterationResult> {
      const input = parseInput(TrainIterationInput, rawInput, 'trainIteration');
      const context = Context.current();
      const backend = trainingBackendFor(input.training);
      const key = { loopName: input.loopName, iteration: input.iteration };
      const jobKey = trainingJobKey(input.loopName, input.iteration);
      const dir = path.join(deps.artifactsDir, input.loopName, `iter-${input.iteration}`);
      mkdirSync(dir, { recursive: true });
      const format = input.training.datasetFormat;
      const datasetPath = path.join(dir, format === 'verl-parquet' ? 'train.parquet' : 'train.jsonl');
      // The export is deterministic for a frozen version, so re-exporting on a retry writes the same file.
      const exported = await exportVersion(deps.pool, { ref: String(input.versionId), format, out: datasetPath });
      const { grpo, weights, lora } = input.training;
      const spec: TrainingJobSpec = {
        jobKey,
        loopName: input.loopName,
        iteration: input.iteration,
        seed: input.seed,
        dataset: { path: datasetPath, format, rows: exported.written },
        baseModel: input.baseModel,
        init: input.baseCheckpoint,
        weights,
        lora,
        grpo,
        reward: { mode: input.reward, ...(deps.rewardUrl ? { url: deps.rewardUrl } : {}) },
        outputDir: path.join(dir, 'checkpoint'),
      };
      let state: TrainingJobState = await onBackend(backend, `submit ${jobKey}`, () => backend.submit(spec));
      const record = (s: TrainingJobState) =>
        upsertTrainingRun(deps.pool, key, {
          backend: backend.name,
          jobKey,
          externalId: s.externalId,
          datasetVersionId: input.versionId,
          baseCheckpoint: input.baseCheckpoint?.path ?? null,
          status: s.status === 'queued' ? 'submitted' : s.status,
          checkpointUri: s.checkpoint?.path ?? null,
          metrics: s.metrics ?? {},
        });
      await record(state);
      try {
        while (!TERMINAL_STATUSES.has(state.status)) {
          context.heartbeat({
            externalId: state.externalId,
            status: state.status,
            step: state.step,
            totalSteps: state.totalSteps,
          });
          await sleep(input.pollIntervalMs);
          const externalId = state.externalId;
          state = await onBackend(backend, `status of ${jobKey}`, () =>
            backend.status(externalId, context.cancellationSignal),
          );
        }
      } catch (err) {
        if (err instanceof CancelledFailure) {
          await backend.cancel(state.externalId).catch(() => {});
          await record({ ...state, status: 'cancelled' });
        }
        throw err;
      }
      await record(state);
      if (state.status !== 'succeeded' || !state.checkpoint) {
        throw ApplicationFailure.create({
          message: `training job ${jobKey} ${state.status}${state.error ? `: ${state.error}` : ''}`,
          type: ErrorType.TrainingJobFailed,
          nonRetryable: state.status === 'cancelled',
        });
      }
      return { checkpoint: state.checkpoint, externalId: state.externalId };
    },

    /**
     * Cancels an iteration's training job by its job key, and records it: the loop's cleanup when it is cancelled,
     * which must hold even when no worker was running `trainIteration` at that moment (its worker died, its retry
     * waits for backoff). Idempotent: a job that already ended, or never started, is left as it is.
     */
    async cancelTrainingJob(rawInput: CancelTrainingInput): Promise<{ cancelled: boolean }> {
      const input = parseInput(CancelTrainingInput, rawInput, 'cancelTrainingJob');
      const backend = trainingBackendFor(input.training);
      const run = await getTrainingRun(deps.pool, { loopName: input.loopName, iteration: input.iteration });
      // Never submitted (the loop was cancelled before training), or already ended: nothing to cancel.
      if (!run?.externalId || TERMINAL_STATUSES.has(run.status)) return { cancelled: false };
      const externalId = run.externalId;
      const state = await onBackend(backend, `status of ${run.jobKey}`, () => backend.status(externalId));
      if (!TERMINAL_STATUSES.has(state.status))
        await onBackend(backend, `cancel ${run.jobKey}`, () => backend.cancel(externalId));
      await upsertTrainingRun(
        deps.pool,
        { loopName: input.loopName, iteration: input.iteration },
        { ...run, status: state.status === 'succeeded' || state.status === 'failed' ? state.status : 'cancelled' },
      );
      return { cancelled: !TERMINAL_STATUSES.has(state.status) };
    },
  };
}
