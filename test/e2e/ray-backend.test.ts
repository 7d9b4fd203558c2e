import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { RayTrainingBackend, raySubmissionId } from '../../activities/training/ray-backend.js';
import type { TrainingJobState } from '../../activities/training/backend.js';
import { ApplicationFailure } from '@temporalio/common';
import { Grpo, LoopConfig, LoraConfig, RayTraining } from '../../core/config.js';
import { ErrorType } from '../../core/errors.js';
import type { TrainIterationInput } from '../../core/inputs.js';
import { TrainingJobSpec } from '../../core/training.js';
import { startRayHead, type RayHead } from '../../services/ray-head.js';
import { readCheckpoint } from '../../sim/checkpoint.js';
import { writeSeedData } from '../../sim/seed-data.js';
import { LOOPTOOL_BIN } from '../helpers/cli.js';
import { activityAttempts, historyOf } from '../helpers/history.js';
import { createLoopFixture, loopDatasets, waitFor } from '../helpers/loop-fixture.js';
import { addLoop, createStageFixture, runActivity, type StageFixture } from '../helpers/stages.js';

/**
 * The `ray` training backend against a real Ray head (ray[default] from PyPI, started once for this file): the job is
 * `looptool sim train {spec}`, as a recipe runs on a cluster. Ray's own view of each job (its Jobs API) is checked
 * next to what the backend reports.
 */

let head: RayHead;
let stages: StageFixture;
const scratch = mkdtempSync(path.join(os.tmpdir(), 'ray-backend-'));
const dataset = path.join(scratch, 'train.jsonl');
const tokenBefore = process.env.RAY_AUTH_TOKEN;

beforeAll(async () => {
  head = await startRayHead({ numCpus: 2 });
  // The activity finds the token as a worker does, in its environment.
  process.env.RAY_AUTH_TOKEN = head.token;
  await writeSeedData(dataset, { count: 96, seed: 11 });
  stages = await createStageFixture({ count: 40, seed: 3, wrongLabelRate: 0.1 });
}, 300_000);
afterAll(async () => {
  if (tokenBefore === undefined) delete process.env.RAY_AUTH_TOKEN;
  else process.env.RAY_AUTH_TOKEN = tokenBefore;
  await stages?.close();
  await head?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

/** The head's training config, whose job runs `looptool sim train` with `args` after the spec. */
const rayTraining = (args: string[] = [], extra: Record<string, unknown> = {}) => ({
  backend: 'ray',
  address: head.address,
  command: [process.execPath, LOOPTOOL_BIN, 'sim', 'train', '{spec}', '--seconds-per-job', '0.5', ...args],
  workDir: path.join(scratch, 'work'),
  entrypointCpus: 0.5,
  ...extra,
});

const backend = (args: string[] = []) =>
  new RayTrainingBackend(RayTraining.parse(rayTraining(args)), { authToken: head.token });

/** A training activity input on a loop of its own, trained on the head. */
async function trainInput(
  loopName: string,
  extra: Record<string, unknown>,
  args: string[] = [],
): Promise<TrainIterationInput> {
  await addLoop(stages, loopName);
  return {
    loopName,
    iteration: 1,
    versionId: stages.seedVersion.id,
    baseModel: 'sim-student',
    baseCheckpoint: null,
    training: LoopConfig.shape.training.parse(rayTraining(args, extra)),
    reward: 'exact',
    seed: 7,
    pollIntervalMs: 100,
  };
}

/** The activity's failure (the test fails if it succeeds). */
async function failureOf(run: Promise<unknown>): Promise<ApplicationFailure> {
  const outcome = await run.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(outcome).toBeInstanceOf(ApplicationFailure);
  return outcome as ApplicationFailure;
}

function spec(jobKey: string): TrainingJobSpec {
  return TrainingJobSpec.parse({
    jobKey,
    loopName: 'ray-test',
    iteration: 1,
    seed: 11,
    dataset: { path: dataset, format: 'trl-jsonl', rows: 96 },
    baseModel: 'sim-student',
    init: null,
    weights: 'lora',
    lora: LoraConfig.parse({}),
    grpo: Grpo.parse({ epochs: 2 }),
    reward: { mode: 'exact' },
    outputDir: path.join(scratch, 'artifacts', jobKey),
  });
}

/** Ray's own record of a job, through its Jobs API. */
async function rayJob(submissionId: string): Promise<{ status: string; entrypoint: string }> {
  const response = await fetch(`${head.address}/api/jobs/${submissionId}`, {
    headers: { authorization: `Bearer ${head.token}` },
  });
  expect(response.status).toBe(200);
  return (await response.json()) as { status: string; entrypoint: string };
}

/** Every submission on the head with this id (Ray's job list). */
async function submissionsWithId(submissionId: string): Promise<number> {
  const response = await fetch(`${head.address}/api/jobs/`, { headers: { authorization: `Bearer ${head.token}` } });
  const jobs = (await response.json()) as { submission_id: string | null }[];
  return jobs.filter((job) => job.submission_id === submissionId).length;
}

const until = (b: RayTrainingBackend, id: string, what: string, done: (s: TrainingJobState) => boolean) =>
  waitFor(
    what,
    async () => {
      const state = await b.status(id);
      return done(state) ? state : undefined;
    },
    90_000,
  );

describe('the ray training backend on a real Ray head', () => {
  test('submit → progress → succeeded with the manifest; submitting the key again re-attaches to the one job', async () => {
    const b = backend();
    const job = spec('ray-test-iter-1');
    const submitted = await b.submit(job);
    expect(submitted.externalId).toBe(raySubmissionId('ray-test-iter-1'));
    expect(submitted.externalId).toBe('looptool-ray-test-iter-1');
    expect(['queued', 'running']).toContain(submitted.status);
    const done = await until(
      b,
      submitted.externalId,
      'the job to end',
      (s) => s.status !== 'queued' && s.status !== 'running',
    );
    expect(done.status, done.error).toBe('succeeded');
    // 96 samples × 2 epochs / 32 per step; the steps come from the job's progress.json on the shared filesystem.
    expect(done).toMatchObject({ step: 6, totalSteps: 6 });
    expect(done.checkpoint).toMatchObject({
      kind: 'lora',
      path: path.join(job.outputDir, 'adapter'),
      baseModel: 'sim-student',
      steps: 6,
      metrics: { samples: 96 },
    });
    expect((await readCheckpoint(done.checkpoint!.path)).training.job_key).toBe('ray-test-iter-1');
    expect((await rayJob(submitted.externalId)).status).toBe('SUCCEEDED');
    expect(await b.logs(submitted.externalId)).toContain('checkpoint ckpt-');

    // A retried activity (another backend object, as on another worker) submits the same key: Ray refuses the
    // duplicate submission id and the backend reports the existing job instead of starting a second one.
    const again = await backend().submit(job);
    expect(again).toMatchObject({ externalId: submitted.externalId, status: 'succeeded', checkpoint: done.checkpoint });
    expect(await submissionsWithId(submitted.externalId)).toBe(1);
  });

  test('a running job reports its steps; cancel stops it on Ray (STOPPED) and it reads as cancelled', async () => {
    const b = backend(['--hang-after-step', '2']);
    const submitted = await b.submit(spec('ray-test-iter-2'));
    // It hangs after step 2: the step reported is the job's own progress while Ray has it running.
    const running = await until(
      b,
      submitted.externalId,
      'step 2 while running',
      (s) => s.status === 'running' && s.step === 2,
    );
    expect(running.totalSteps).toBe(6);
    expect(await submissionsWithId(submitted.externalId)).toBe(1);
    // Re-attaching to a running job finds it running, still one submission.
    expect((await backend().submit(spec('ray-test-iter-2'))).status).toBe('running');
    expect(await submissionsWithId(submitted.externalId)).toBe(1);
    await b.cancel(submitted.externalId);
    const cancelled = await until(b, submitted.externalId, 'the job to stop', (s) => s.status !== 'running');
    expect(cancelled.status).toBe('cancelled');
    expect((await rayJob(submitted.externalId)).status).toBe('STOPPED');
    // Cancelling again (the loop's cleanup after the activity's own cancel) is harmless.
    await b.cancel(submitted.externalId);
  });

  test("a failing job fails the stage with its log's last lines; runtime_env env_vars reach the job", async () => {
    // The failure is injected through Ray's runtime_env, as a config's `runtimeEnv.env_vars` sets it.
    const input = await trainInput('fails', { runtimeEnv: { env_vars: { LOOPTOOL_SIM_TRAIN_FAIL_AFTER_STEP: '1' } } });
    const failure = await failureOf(runActivity(stages.activities.trainIteration, [input]));
    expect(failure.type).toBe(ErrorType.TrainingJobFailed);
    expect(failure.message).toMatch(
      /^training job fails-iter-1 failed: .*\(exit code 1\)\nLast log lines:\n.*injected failure after step 1\/3 \(--fail-after-step\)/s,
    );
    expect((await rayJob(raySubmissionId('fails-iter-1'))).status).toBe('FAILED');
  });

  test('a job that hangs is cancelled on Ray once it made no progress for stallTimeoutSeconds, and the stage fails', async () => {
    const input = await trainInput('hangs', { stallTimeoutSeconds: 3 }, ['--hang-after-step', '1']);
    const failure = await failureOf(runActivity(stages.activities.trainIteration, [input]));
    expect(failure).toMatchObject({ type: ErrorType.TrainingJobFailed, nonRetryable: true });
    expect(failure.message).toMatch(
      /made no progress for 3 s .*cancelled\. Last log lines:\n.*hanging after step 1\/3/s,
    );
    await waitFor(
      'Ray to stop the hung job',
      async () => (await rayJob(raySubmissionId('hangs-iter-1'))).status === 'STOPPED',
    );
  });
});

describe('a loop trained on Ray', () => {
  /**
   * The same loop twice on one seed: once with the sim server's trainer, once with `looptool sim train` as the Ray job,
   * the worker SIGKILLed while iteration 2's job is certainly running (held after its last step by its hold file) and
   * started again. One Ray job per iteration, the same datasets.
   */
  test(
    'survives a worker SIGKILL mid-training with one Ray job per iteration and the datasets of training.backend sim',
    { timeout: 300_000 },
    async () => {
      const f = await createLoopFixture({ samples: 240 });
      try {
        const steady = f.config({ name: 'on-sim' });
        await f.start(steady);
        const first = f.startWorker();
        expect((await f.loops.handle('on-sim').result()).iterations).toBe(2);
        first.kill('SIGTERM');

        // `{job}` is substituted per job: only iteration 2's job finds its hold file.
        const hold = path.join(scratch, 'hold-on-ray-iter-2');
        writeFileSync(hold, '');
        const onRay = f.config({
          name: 'on-ray',
          training: {
            backend: 'ray',
            address: head.address,
            command: [
              ...[process.execPath, LOOPTOOL_BIN, 'sim', 'train', '{spec}', '--seconds-per-job', '0.5'],
              ...['--hold-file', path.join(scratch, 'hold-{job}')],
            ],
            workDir: path.join(scratch, 'loop-work'),
          },
        });
        f.env.RAY_AUTH_TOKEN = head.token;
        await f.start(onRay);
        let worker = f.startWorker();
        const iteration2 = raySubmissionId('on-ray-iter-2');
        const b = new RayTrainingBackend(onRay.training as RayTraining, { authToken: head.token });
        await waitFor(
          "iteration 2's Ray job held after its last step",
          async () => (await b.logs(iteration2).catch(() => '')).includes('held at step'),
          120_000,
        );
        worker.kill('SIGKILL');
        // Killed while the job ran: it cannot end while the hold file exists.
        expect((await rayJob(iteration2)).status).toBe('RUNNING');
        rmSync(hold);
        worker = f.startWorker();
        const result = await f.loops.handle('on-ray').result();
        worker.kill('SIGTERM');

        expect(result.iterations).toBe(2);
        // The kill cost iteration 2's training activity an attempt; the retry re-attached to the job, not a new one.
        const attempts = activityAttempts(await historyOf(f.loops.handle('on-ray')));
        expect(attempts.find((a) => a.activity === 'trainIteration')?.attempt).toBeGreaterThan(1);
        for (const iteration of [1, 2]) {
          const id = raySubmissionId(`on-ray-iter-${iteration}`);
          expect(await submissionsWithId(id), id).toBe(1);
          expect((await rayJob(id)).status).toBe('SUCCEEDED');
        }
        const onSimDatasets = await loopDatasets(f.db, 'on-sim');
        expect(Object.keys(onSimDatasets).length).toBeGreaterThan(1);
        expect(await loopDatasets(f.db, 'on-ray')).toEqual(onSimDatasets);
      } finally {
        await f.close();
      }
    },
  );
});
