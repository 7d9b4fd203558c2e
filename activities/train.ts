import { mkdirSync, renameSync } from 'node:fs';
import path from 'node:path';
import { ApplicationFailure, CancelledFailure, Context, sleep } from '@temporalio/activity';
import type { TrainingConfig } from '../core/config.js';
import type { CheckpointManifest, TrainingJobSpec, TrainingProgress } from '../core/training.js';
import { ErrorType } from '../core/errors.js';
import { CancelTrainingInput, parseInput, TrainIterationInput } from '../core/inputs.js';
import { exportVersion } from '../datasets/export.js';
import { getTrainingRun, upsertTrainingRun } from '../db/queries/training-runs.js';
import type { ActivityDeps } from './deps.js';
import { toApplicationFailure, TRAINER } from './failures.js';
import { TERMINAL_STATUSES, type TrainingBackend, type TrainingJobState } from './training/backend.js';
import { KubernetesTrainingBackend } from './training/kubernetes-backend.js';
import { LocalTrainingBackend } from './training/local-backend.js';
import { rayAuthToken, RayTrainingBackend } from './training/ray-backend.js';
import { SimTrainingBackend } from './training/sim-backend.js';
import { SlurmTrainingBackend } from './training/slurm-backend.js';

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
      return new SlurmTrainingBackend(training);
    case 'kubernetes':
      return new KubernetesTrainingBackend(training);
    case 'ray':
      // The token as Ray's own clients find it (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token): a secret of the
      // worker's machine, never part of the loop config or the workflow history.
      return new RayTrainingBackend(training, { authToken: rayAuthToken() });
  }
}

/** Log lines a failure message and the heartbeat carry. */
const LOG_TAIL_LINES = 20;
/** How often the heartbeat's log tail is refreshed (logs can be an API call or a file read). @unit milliseconds */
const LOG_TAIL_EVERY_MS = 30_000;
/** The longest wait between two attempts to reach an engine that does not answer. @unit milliseconds */
const MAX_UNREACHABLE_BACKOFF_MS = 60_000;

/**
 * The job key of a loop's iteration: every backend finds the job by it, so a retry re-attaches instead of resubmitting.
 * A loop resumed after the iteration's job failed trains again under a new key (`-a2`, `-a3`, …).
 */
export const trainingJobKey = (loopName: string, iteration: number, attempt = 1) =>
  `${loopName}-iter-${iteration}${attempt > 1 ? `-a${attempt}` : ''}`;

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
 * setting of the loop config) idempotently by job key (`<loop>-iter-<j>`), then poll it, heartbeating
 * {@link TrainingProgress} (engine, job id, state, step, log tail). A retry (worker crash, timeout) re-submits with the
 * same key and so re-attaches to the running job. An engine that does not answer is waited for, with backoff; a running
 * job that makes no progress for `training.stallTimeoutSeconds` is cancelled and fails the stage with its log tail.
 * Cancellation cancels the job on the backend before the activity reports itself cancelled (the loop waits for that).
 */
export function createTrainActivities(deps: ActivityDeps) {
  return {
    async trainIteration(rawInput: TrainIterationInput): Promise<TrainIterationResult> {
      const input = parseInput(TrainIterationInput, rawInput, 'trainIteration');
      const context = Context.current();
      const backend = trainingBackendFor(input.training);
      const key = { loopName: input.loopName, iteration: input.iteration };
      const jobKey = trainingJobKey(input.loopName, input.iteration, input.jobAttempt);
      const dir = path.join(deps.artifactsDir, input.loopName, `iter-${input.iteration}`);
      mkdirSync(dir, { recursive: true });
      const format = input.training.datasetFormat;
      const datasetPath = path.join(dir, format === 'verl-parquet' ? 'train.parquet' : 'train.jsonl');
      // The export is deterministic for a frozen version, so re-exporting on a retry writes the same bytes; it is
      // written beside the file and renamed over it, because a job submitted by an earlier attempt may be reading it
      // (a truncate-and-rewrite showed that job an empty file).
      const partial = `${datasetPath}.${process.pid}.partial`;
      const exported = await exportVersion(deps.pool, {
        ref: String(input.versionId),
        format,
        out: partial,
        withoutTooLongOf: input.loopName,
      });
      renameSync(partial, datasetPath);
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
      const progress: TrainingProgress = { engine: backend.name, jobKey, status: 'submitting', step: 0, totalSteps: 0 };
      const beat = () => context.heartbeat({ ...progress });
      // An engine that does not answer (API down, controller restarting) is not a failed job: keep asking, with
      // backoff, heartbeating meanwhile, for as long as the job may run; only a refused request fails the stage.
      const patiently = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
        let delayMs = input.pollIntervalMs;
        for (;;) {
          try {
            const value = await onBackend(backend, what, fn);
            delete progress.unreachableSince;
            return value;
          } catch (err) {
            if (!(err instanceof ApplicationFailure) || err.nonRetryable) throw err;
            progress.unreachableSince ??= new Date().toISOString();
            progress.lastError = err.message;
            beat();
            await sleep(delayMs);
            // Beat at least twice per heartbeat timeout while waiting, or Temporal takes the wait for a dead worker.
            delayMs = Math.min(
              delayMs * 2,
              MAX_UNREACHABLE_BACKOFF_MS,
              (context.info.heartbeatTimeoutMs ?? Infinity) / 2,
            );
          }
        }
      };
      let state: TrainingJobState = await patiently(`submit ${jobKey}`, () => backend.submit(spec));
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
      const logsTail = async (): Promise<string[]> =>
        (await backend.logs(state.externalId).catch(() => ''))
          .split('\n')
          .filter((line) => line.trim() !== '')
          .slice(-LOG_TAIL_LINES);
      const stallMs = input.training.stallTimeoutSeconds * 1000;
      let lastMove = Date.now();
      let lastLogsAt = 0;
      try {
        while (!TERMINAL_STATUSES.has(state.status)) {
          Object.assign(progress, {
            externalId: state.externalId,
            status: state.status,
            step: state.step,
            totalSteps: state.totalSteps,
          });
          if (Date.now() - lastLogsAt >= LOG_TAIL_EVERY_MS) {
            progress.logsTail = await logsTail();
            lastLogsAt = Date.now();
          }
          beat();
          await sleep(input.pollIntervalMs);
          const externalId = state.externalId;
          const next = await patiently(`status of ${jobKey}`, () =>
            backend.status(externalId, context.cancellationSignal),
          );
          if (next.status !== state.status || next.step !== state.step) lastMove = Date.now();
          state = next;
          // A queued job waits for GPUs, which is not a hang; a running one that stops moving is (NCCL weight sync,
          // a deadlocked rollout: TRL#6796), and would hold its GPUs forever.
          if (state.status === 'running' && Date.now() - lastMove > stallMs) {
            const tail = await logsTail();
            await patiently(`cancel ${jobKey}`, () => backend.cancel(state.externalId));
            await record({ ...state, status: 'failed', error: 'stalled' });
            throw ApplicationFailure.create({
              message:
                `training job ${jobKey} on ${backend.name} made no progress for ${input.training.stallTimeoutSeconds} s ` +
                `at step ${state.step}/${state.totalSteps}; it was cancelled. Last log lines:\n${tail.join('\n')}`,
              type: ErrorType.TrainingJobFailed,
              nonRetryable: true,
            });
          }
        }
      } catch (err) {
        // Only a cancellation the workflow asked for cancels the job. An attempt cancelled because it timed out (a late
        // heartbeat) or its worker shuts down leaves the job running: the next attempt re-attaches to it by its key.
        if (err instanceof CancelledFailure && context.cancellationDetails?.cancelRequested) {
          await backend.cancel(state.externalId).catch(() => {});
          await record({ ...state, status: 'cancelled' });
        }
        throw err;
      }
      await record(state);
      if (state.status !== 'succeeded' || !state.checkpoint) {
        const tail = state.status === 'failed' ? await logsTail() : [];
        throw ApplicationFailure.create({
          message:
            `training job ${jobKey} ${state.status}${state.error ? `: ${state.error}` : ''}` +
            (tail.length > 0 ? `\nLast log lines:\n${tail.join('\n')}` : ''),
          type: ErrorType.TrainingJobFailed,
          // A retry would re-attach to the same ended job by its key and fail the same way; `loop resume` submits
          // the iteration again under a new key.
          nonRetryable: true,
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
