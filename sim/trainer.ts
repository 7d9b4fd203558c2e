/**
 * The simulated GRPO trainer behind a job API. A job reads its dataset as the real trainer would (verl parquet or
 * JSONL), "trains" by adding each sample's skills to the base checkpoint's exposure (as correct or wrong labels, judged
 * against the world's truth; `simulateTraining` in train-job.ts, shared with `looptool sim train`), takes simulated
 * time with steps advancing, and writes `output_dir/checkpoint.json` atomically. Jobs are idempotent by job key, so a
 * retried submission re-attaches to the same job.
 */
import path from 'node:path';
import { z } from 'zod';
import type { TrainingJobStatus } from '../core/vocabulary.js';
import { writeCheckpoint } from './checkpoint.js';
import { hashHex } from './random.js';
import { progressLogLine, SIM_BATCH_SIZE, simulateTraining, type SimTrainingMetrics } from './train-job.js';
import type { TruthResolver } from './truth.js';

/** The body of `POST /trainer/v1/jobs`. */
export const TrainerJobRequest = z.object({
  job_key: z.string().min(1),
  dataset_path: z.string().min(1),
  /** A checkpoint directory (or its checkpoint.json) to continue from; null or absent for the base model. */
  base_checkpoint: z.string().min(1).nullable().optional(),
  output_dir: z.string().min(1),
  /** π_0's name, echoed back (the backend reports it in the checkpoint manifest). */
  base_model: z.string().min(1).optional(),
  epochs: z.number().int().positive().max(1000).optional(),
});
export type TrainerJobRequest = z.infer<typeof TrainerJobRequest>;

/** A simulated job's status: the trainer job API's vocabulary, as every backend reports it. */
export type JobStatus = TrainingJobStatus;

/** A job as the API returns it. */
export interface TrainerJob {
  id: string;
  job_key: string;
  status: JobStatus;
  step: number;
  total_steps: number;
  checkpoint_uri?: string;
  checkpoint_id?: string;
  error?: string;
  dataset_path: string;
  base_checkpoint: string | null;
  base_model?: string;
  output_dir: string;
  epochs: number;
  created_at: string;
  started_at?: string;
  finished_at?: string;
  metrics?: SimTrainingMetrics;
}

export interface TrainerOptions {
  resolver: TruthResolver;
  /** Simulated training time per job once the data is read. @default 1.5 */
  jobSeconds?: number;
  /** Samples per optimizer step (sets total_steps). @default SIM_BATCH_SIZE (32) */
  batchSize?: number;
  /** Jobs that run at once; the rest queue (one GPU pool). @default 1 */
  concurrency?: number;
  /** Epochs when the request names none (the paper trains 2 per iteration). @default 2 */
  defaultEpochs?: number;
}

interface JobState {
  job: TrainerJob;
  logs: string[];
  started: number;
  cancelled: boolean;
  wake?: () => void;
  timer?: NodeJS.Timeout;
}

export type SubmitResult =
  { kind: 'created' | 'existing'; job: TrainerJob } | { kind: 'conflict'; job: TrainerJob; reason: string };

/** The simulated trainer: jobs in memory, run in submission order. */
export class SimTrainer {
  private readonly jobs = new Map<string, JobState>();
  private readonly byKey = new Map<string, string>();
  private readonly queue: JobState[] = [];
  private running = 0;
  private closed = false;
  private held = false;
  private failuresToInject = 0;
  private readonly jobSeconds: number;
  private readonly batchSize: number;
  private readonly concurrency: number;
  private readonly defaultEpochs: number;

  constructor(private readonly options: TrainerOptions) {
    this.jobSeconds = options.jobSeconds ?? 1.5;
    this.batchSize = options.batchSize ?? SIM_BATCH_SIZE;
    this.concurrency = Math.max(1, options.concurrency ?? 1);
    this.defaultEpochs = options.defaultEpochs ?? 2;
  }

  /**
   * Submits a job. The same job key returns the existing job; the same key with a different dataset, base, output
   * directory or epoch count is a conflict (a caller bug that silent reuse would hide).
   */
  submit(request: TrainerJobRequest): SubmitResult {
    const epochs = request.epochs ?? this.defaultEpochs;
    const existingId = this.byKey.get(request.job_key);
    if (existingId) {
      const existing = (this.jobs.get(existingId) as JobState).job;
      const differs =
        existing.dataset_path !== request.dataset_path ||
        existing.base_checkpoint !== (request.base_checkpoint ?? null) ||
        existing.output_dir !== request.output_dir ||
        existing.epochs !== epochs;
      if (differs)
        return {
          kind: 'conflict',
          job: { ...existing },
          reason: `job key ${request.job_key} was submitted before with different parameters`,
        };
      return { kind: 'existing', job: { ...existing } };
    }
    const id = `job-${hashHex(request.job_key)}`;
    const state: JobState = {
      job: {
        id,
        job_key: request.job_key,
        status: 'queued',
        step: 0,
        total_steps: 0,
        dataset_path: request.dataset_path,
        base_checkpoint: request.base_checkpoint ?? null,
        ...(request.base_model ? { base_model: request.base_model } : {}),
        output_dir: request.output_dir,
        epochs,
        created_at: new Date().toISOString(),
      },
      logs: [],
      started: 0,
      cancelled: false,
    };
    this.jobs.set(id, state);
    this.byKey.set(request.job_key, id);
    this.log(
      state,
      `queued: dataset ${request.dataset_path}, base ${request.base_checkpoint ?? 'base model'}, ${epochs} epochs`,
    );
    this.queue.push(state);
    this.pump();
    return { kind: 'created', job: { ...state.job } };
  }

  get(id: string): TrainerJob | undefined {
    const state = this.jobs.get(id);
    return state ? { ...state.job } : undefined;
  }

  /** All jobs, or the one with this job key. */
  list(jobKey?: string): TrainerJob[] {
    if (jobKey !== undefined) {
      const id = this.byKey.get(jobKey);
      return id ? [{ ...(this.jobs.get(id) as JobState).job }] : [];
    }
    return [...this.jobs.values()].map((s) => ({ ...s.job }));
  }

  logs(id: string): string[] | undefined {
    return this.jobs.get(id)?.logs.slice();
  }

  /** Cancels a queued or running job (no checkpoint is written); a finished job is returned unchanged. */
  cancel(id: string): TrainerJob | undefined {
    const state = this.jobs.get(id);
    if (!state) return undefined;
    if (state.job.status === 'queued' || state.job.status === 'running') {
      state.cancelled = true;
      const queued = this.queue.indexOf(state);
      if (queued >= 0) this.queue.splice(queued, 1);
      this.finish(state, 'cancelled');
      this.log(state, 'cancelled');
      state.wake?.();
    }
    return { ...state.job };
  }

  /** While held, running jobs do not finish: they stay `running` after their last step until `hold(false)`. */
  hold(held: boolean): void {
    this.held = held;
  }

  /** The next `count` jobs to start fail at once, as a trainer that crashes (out of memory, a bad node) reports it. */
  failNext(count: number): void {
    this.failuresToInject = count;
  }

  /** Counts of jobs by status. */
  statusCounts(): Record<JobStatus, number> {
    const counts: Record<JobStatus, number> = { queued: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0 };
    for (const state of this.jobs.values()) counts[state.job.status]++;
    return counts;
  }

  /** Stops every timer; running jobs stay as they are (the process is going away). */
  close(): void {
    this.closed = true;
    for (const state of this.jobs.values()) {
      if (state.timer) clearTimeout(state.timer);
      state.wake?.();
    }
  }

  private log(state: JobState, line: string): void {
    const elapsed = state.started ? ((Date.now() - state.started) / 1000).toFixed(2) : '0.00';
    state.logs.push(`[${elapsed}s] ${line}`);
  }

  private finish(state: JobState, status: JobStatus, error?: string): void {
    state.job.status = status;
    state.job.finished_at = new Date().toISOString();
    if (error !== undefined) state.job.error = error;
  }

  private pump(): void {
    while (!this.closed && this.running < this.concurrency && this.queue.length > 0) {
      const state = this.queue.shift() as JobState;
      this.running++;
      void this.run(state).finally(() => {
        this.running--;
        this.pump();
      });
    }
  }

  private sleep(state: JobState, ms: number): Promise<void> {
    return new Promise((resolve) => {
      state.wake = () => {
        if (state.timer) clearTimeout(state.timer);
        state.wake = undefined;
        resolve();
      };
      state.timer = setTimeout(() => state.wake?.(), ms);
    });
  }

  private async run(state: JobState): Promise<void> {
    const job = state.job;
    state.started = Date.now();
    job.status = 'running';
    job.started_at = new Date().toISOString();
    try {
      if (this.failuresToInject > 0) {
        this.failuresToInject--;
        throw new Error('injected failure: the trainer process died (CUDA out of memory)');
      }
      this.log(state, `reading ${job.dataset_path}`);
      // The same computation as `looptool sim train` (train-job.ts): one student per (base, data, epochs).
      const result = await simulateTraining(this.options.resolver, {
        jobKey: job.job_key,
        datasetPath: job.dataset_path,
        baseCheckpoint: job.base_checkpoint,
        epochs: job.epochs,
        batchSize: this.batchSize,
      });
      if (state.cancelled || this.closed) return;
      job.metrics = result.metrics;
      job.total_steps = result.totalSteps;
      this.log(state, result.summary);
      const durationMs = this.jobSeconds * 1000;
      const tickMs = Math.max(10, Math.min(200, durationMs / job.total_steps));
      const trainStart = Date.now();
      let nextLog = 0;
      let holdLogged = false;
      while (!state.cancelled && !this.closed) {
        const fraction = durationMs === 0 ? 1 : Math.min(1, (Date.now() - trainStart) / durationMs);
        job.step = Math.floor(job.total_steps * fraction);
        if (fraction >= nextLog) {
          this.log(
            state,
            progressLogLine(result.metrics, {
              fraction,
              step: job.step,
              totalSteps: job.total_steps,
              epochs: job.epochs,
            }),
          );
          nextLog += 0.25;
        }
        if (fraction >= 1) {
          if (!this.held) break;
          if (!holdLogged) this.log(state, `held at step ${job.step}/${job.total_steps} until the hold is released`);
          holdLogged = true;
        }
        await this.sleep(state, tickMs);
      }
      if (state.cancelled || this.closed) return;
      const outputDir = path.resolve(job.output_dir);
      await writeCheckpoint(outputDir, result.checkpoint);
      if (state.cancelled) return;
      job.step = job.total_steps;
      job.checkpoint_uri = outputDir;
      job.checkpoint_id = result.checkpoint.id;
      this.finish(state, 'succeeded');
      this.log(state, `checkpoint ${result.checkpoint.id} written to ${outputDir}`);
    } catch (err) {
      if (state.cancelled) return;
      const message = err instanceof Error ? err.message : String(err);
      this.finish(state, 'failed', message);
      this.log(state, `failed: ${message}`);
    }
  }
}
