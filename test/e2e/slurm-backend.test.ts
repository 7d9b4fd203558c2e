import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { SlurmTrainingBackend } from '../../activities/training/slurm-backend.js';
import type { TrainingJobState } from '../../activities/training/backend.js';
import { Grpo, LoopConfig, LoraConfig, SlurmTraining } from '../../core/config.js';
import { ErrorType } from '../../core/errors.js';
import type { TrainIterationInput } from '../../core/inputs.js';
import type { TrainingJobSpec, TrainingProgress } from '../../core/training.js';
import { writeSeedData } from '../../sim/seed-data.js';
import { LOOPTOOL_BIN } from '../helpers/cli.js';
import { waitFor } from '../helpers/loop-fixture.js';
import { startSlurmFixture, type SlurmFixture } from '../helpers/slurm.js';
import { addLoop, createStageFixture, runActivity, type StageFixture } from '../helpers/stages.js';

/** The job every test runs: the simulated trainer as a recipe (`looptool sim train {spec}`), with its options. */
const simTrain = (...options: string[]) => [process.execPath, LOOPTOOL_BIN, 'sim', 'train', '{spec}', ...options];

let slurm: SlurmFixture;
let dataset: string;

beforeAll(async () => {
  // Two nodes (two slurmds on this host), so a multi-node allocation runs for real.
  slurm = await startSlurmFixture({ nodes: 2 });
  dataset = path.join(slurm.scratch, 'train.jsonl');
  await writeSeedData(dataset, { count: 40, seed: 7 });
}, 600_000);
afterAll(async () => slurm?.close());

function backend(command: string[], overrides: Partial<SlurmTraining> = {}): SlurmTrainingBackend {
  return new SlurmTrainingBackend(
    SlurmTraining.parse({ backend: 'slurm', command, workDir: path.join(slurm.scratch, 'work'), ...overrides }),
    { env: slurm.env },
  );
}

function spec(jobKey: string): TrainingJobSpec {
  return {
    jobKey,
    loopName: jobKey.replace(/-iter-\d+$/, ''),
    iteration: 1,
    seed: 7,
    dataset: { path: dataset, format: 'trl-jsonl', rows: 40 },
    baseModel: 'sim-student',
    init: null,
    weights: 'lora',
    lora: LoraConfig.parse({}),
    grpo: Grpo.parse({}),
    reward: { mode: 'exact' },
    outputDir: path.join(slurm.scratch, 'out', jobKey),
  };
}

/** Polls the job until it reaches a terminal status, returning every state seen. */
async function until(
  b: SlurmTrainingBackend,
  jobId: string,
  done: (s: TrainingJobState) => boolean,
): Promise<TrainingJobState[]> {
  const seen: TrainingJobState[] = [];
  await waitFor(`Slurm job ${jobId}`, async () => {
    const state = await b.status(jobId);
    seen.push(state);
    return done(state);
  });
  return seen;
}
const terminal = (s: TrainingJobState) => ['succeeded', 'failed', 'cancelled'].includes(s.status);

/** What Slurm itself says about a job (scontrol: it remembers finished jobs for MinJobAge, an hour here). */
const slurmState = (jobId: string) => /JobState=(\S+)/.exec(slurm.slurm('scontrol', ['-o', 'show', 'job', jobId]))?.[1];
/** The ids of every job of this name that Slurm knows, running or finished. */
const jobsNamed = (name: string) =>
  slurm
    .slurm('squeue', ['--name', name, '-t', 'all', '-h', '-o', '%i'])
    .split('\n')
    .filter((line) => line.trim() !== '');

describe('the Slurm training backend on a real Slurm', () => {
  test('runs the command as a batch job that ends succeeded with its manifest; a resubmission re-attaches', async () => {
    const b = backend(simTrain('--seconds-per-job', '1'));
    const job = spec('ok-iter-1');
    const submitted = await b.submit(job);
    expect(submitted.externalId).toMatch(/^\d+$/);
    expect(['queued', 'running', 'succeeded']).toContain(submitted.status);

    // Submitting again, as a retried activity does: the same Slurm job, even when the worker died before it recorded
    // the id (the job is found by name and script).
    expect((await b.submit(job)).externalId).toBe(submitted.externalId);
    const jobDir = path.join(slurm.scratch, 'work', 'jobs', 'ok-iter-1');
    rmSync(path.join(jobDir, 'slurm-job-id'));
    expect((await b.submit(job)).externalId).toBe(submitted.externalId);

    const seen = await until(b, submitted.externalId, terminal);
    const final = seen.at(-1)!;
    expect(final).toMatchObject({ status: 'succeeded', step: 3, totalSteps: 3 });
    expect(final.checkpoint).toMatchObject({
      kind: 'lora',
      path: path.join(job.outputDir, 'adapter'),
      baseModel: 'sim-student',
      steps: 3,
    });
    expect(final.checkpoint?.metrics).toMatchObject({ samples: 40 });
    expect(slurmState(submitted.externalId)).toBe('COMPLETED');
    expect(jobsNamed('ok-iter-1')).toEqual([submitted.externalId]);
    expect(await b.logs(submitted.externalId)).toMatch(/checkpoint ckpt-\w+ written to/);
    // Submitting the finished job's key once more reports it, and starts nothing.
    expect(await b.submit(job)).toMatchObject({ externalId: submitted.externalId, status: 'succeeded' });
    expect(jobsNamed('ok-iter-1')).toHaveLength(1);
  });

  test('reports progress while the job runs; a cancel makes Slurm cancel it and the job reads as cancelled', async () => {
    const b = backend(simTrain('--seconds-per-job', '1', '--hang-after-step', '1'));
    const { externalId } = await b.submit(spec('hang-iter-1'));
    const running = await until(b, externalId, (s) => s.status === 'running' && s.step === 1);
    expect(running.at(-1)).toMatchObject({ status: 'running', step: 1, totalSteps: 3 });
    await b.cancel(externalId);
    const seen = await until(b, externalId, terminal);
    expect(seen.at(-1)!.status).toBe('cancelled');
    expect(slurmState(externalId)).toBe('CANCELLED');
    // Cancelling again (the loop's cleanup after the activity's own cancel) is harmless.
    await b.cancel(externalId);
  });

  test('a job whose command fails reads as failed, with Slurm state, exit code and its log', async () => {
    const b = backend(simTrain('--seconds-per-job', '1', '--fail-after-step', '1'));
    const { externalId } = await b.submit(spec('fail-iter-1'));
    const final = (await until(b, externalId, terminal)).at(-1)!;
    expect(final.status).toBe('failed');
    expect(final.error).toMatch(new RegExp(`^Slurm job ${externalId} FAILED \\(exit code 1:0, NonZeroExitCode\\)`));
    expect(final.error).toContain(`slurm-${externalId}.out`);
    expect(await b.logs(externalId)).toContain('injected failure after step 1/3 (--fail-after-step)');
  });

  test('the batch script leaves an exit record, for when Slurm has forgotten the job', async () => {
    // Without accounting, scontrol knows a finished job for MinJobAge only; after that this record tells how it ended
    // (how status() reads it is tested in test/unit/activities/slurm-backend.test.ts).
    const b = backend(simTrain('--seconds-per-job', '0'));
    const { externalId } = await b.submit(spec('record-iter-1'));
    await until(b, externalId, terminal);
    const jobDir = path.join(slurm.scratch, 'work', 'jobs', 'record-iter-1');
    expect(JSON.parse(readFileSync(path.join(jobDir, `exit-${externalId}.json`), 'utf8'))).toEqual({
      jobId: externalId,
      exitCode: 0,
    });
  });

  test('a controller that does not answer is a retryable TrainerUnavailable, and the job carries on', async () => {
    const b = backend(simTrain('--seconds-per-job', '2'));
    const { externalId } = await b.submit(spec('outage-iter-1'));
    await until(b, externalId, (s) => s.status === 'running');
    await slurm.cluster.stopController();
    try {
      for (const call of [() => b.status(externalId), () => b.submit(spec('outage-iter-2'))]) {
        const failure = await call().catch((err: unknown) => err);
        expect(failure).toBeInstanceOf(ApplicationFailure);
        expect(failure).toMatchObject({ type: ErrorType.TrainerUnavailable, nonRetryable: false });
        expect((failure as Error).message).toMatch(/^Slurm is unreachable \(.*Unable to contact slurm controller/);
      }
    } finally {
      await slurm.cluster.startController();
    }
    expect((await until(b, externalId, terminal)).at(-1)!.status).toBe('succeeded');
    // The submission the outage refused was not half-made: nothing of that name reached Slurm.
    expect(jobsNamed('outage-iter-2')).toEqual([]);
  });

  test("a submission Slurm refuses fails at once, with Slurm's reason", async () => {
    const b = backend(simTrain(), { partition: 'no-such-partition' });
    const failure = await b.submit(spec('refused-iter-1')).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure).toMatchObject({ type: ErrorType.TrainerRequestRejected, nonRetryable: true });
    expect((failure as Error).message).toMatch(/^Slurm refused sbatch .*Invalid partition name specified/s);
  });

  test("more than one node: Ray's head and workers start inside the allocation and the command runs on the head", async () => {
    // A stand-in for `ray` that records where and how it was started; `ray status` lists the nodes that started.
    const calls = path.join(slurm.scratch, 'ray-calls.txt');
    const ray = path.join(slurm.scratch, 'ray');
    writeFileSync(
      ray,
      `#!/bin/bash
if [[ "$1" == status ]]; then grep -c ' start ' ${JSON.stringify(calls)} | xargs -I{} seq 1 {} | sed 's/^/ 1 node_/'; exit 0; fi
echo "$SLURMD_NODENAME $*" >>${JSON.stringify(calls)}
exec sleep 600
`,
    );
    chmodSync(ray, 0o755);
    const seenBy = path.join(slurm.scratch, 'command-env.json');
    const command = [
      process.execPath,
      '-e',
      `require('fs').writeFileSync(${JSON.stringify(seenBy)}, JSON.stringify({ node: process.env.SLURMD_NODENAME, ray: process.env.RAY_ADDRESS, nnodes: process.env.NNODES }));`,
    ];
    const b = new SlurmTrainingBackend(
      SlurmTraining.parse({ backend: 'slurm', command, workDir: path.join(slurm.scratch, 'work'), nodes: 2 }),
      { env: { ...slurm.env, LOOPTOOL_RAY: ray, LOOPTOOL_RAY_PORT: '6390' } },
    );
    const { externalId } = await b.submit(spec('ray-iter-1'));
    const final = (await until(b, externalId, terminal)).at(-1)!;
    // The command wrote no manifest, so the job "fails" after it ran: what matters is how it ran.
    expect(final.error).toMatch(/checkpoint\.json is missing/);
    const [head, worker] = slurm.cluster.nodes;
    const started = readFileSync(calls, 'utf8').trim().split('\n').sort();
    expect(started).toHaveLength(2);
    const headCall = started.find((line) => line.startsWith(`${head} `))!;
    const headIp = /--node-ip-address=(\S+)/.exec(headCall)?.[1];
    expect(headCall).toMatch(
      new RegExp(`^${head} start --head --node-ip-address=\\S+ --port=6390 --num-gpus 0 --block$`),
    );
    expect(started).toContain(`${worker} start --address=${headIp}:6390 --num-gpus 0 --block`);
    expect(JSON.parse(readFileSync(seenBy, 'utf8'))).toEqual({ node: head, ray: `${headIp}:6390`, nnodes: '2' });
    expect(await b.logs(externalId)).toContain(`Ray head on ${head} at ${headIp}:6390`);
  });
});

describe('the training activity on Slurm', () => {
  let stages: StageFixture;
  beforeAll(async () => {
    // The activity builds its backend from the loop config; the Slurm commands find the cluster in the environment.
    process.env.SLURM_CONF = slurm.env.SLURM_CONF;
    stages = await createStageFixture({ count: 40, seed: 3, wrongLabelRate: 0.1 });
  });
  afterAll(async () => stages?.close());

  async function trainInput(
    loopName: string,
    command: string[],
    settings: Record<string, unknown> = {},
  ): Promise<TrainIterationInput> {
    await addLoop(stages, loopName);
    return {
      loopName,
      iteration: 1,
      versionId: stages.seedVersion.id,
      baseModel: 'sim-student',
      baseCheckpoint: null,
      training: LoopConfig.shape.training.parse({
        backend: 'slurm',
        command,
        workDir: path.join(slurm.scratch, 'activity'),
        ...settings,
      }),
      reward: 'exact',
      seed: 7,
      pollIntervalMs: 100,
    };
  }

  test('heartbeats the engine and the Slurm job id, and returns the manifest', async () => {
    const beats: TrainingProgress[] = [];
    const result = await runActivity(
      stages.activities.trainIteration,
      [await trainInput('act-ok', simTrain('--seconds-per-job', '1'))],
      { onHeartbeat: (details) => beats.push(details as TrainingProgress) },
    );
    expect(result.externalId).toMatch(/^\d+$/);
    expect(result.checkpoint).toMatchObject({ kind: 'lora', baseModel: 'sim-student' });
    expect(beats.at(-1)).toMatchObject({ engine: 'slurm', jobKey: 'act-ok-iter-1', externalId: result.externalId });
    expect(existsSync(result.checkpoint.path)).toBe(true);
  });

  test("a failed job's log tail reaches the stage's error", async () => {
    const input = await trainInput('act-fail', simTrain('--seconds-per-job', '1', '--fail-after-step', '0'));
    const failure = await runActivity(stages.activities.trainIteration, [input]).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure).toMatchObject({ type: ErrorType.TrainingJobFailed });
    expect((failure as Error).message).toMatch(
      /training job act-fail-iter-1 failed: Slurm job \d+ FAILED .*Last log lines:\n(.*\n)*.*injected failure after step 0/s,
    );
  });

  test('a job that hangs is cancelled on Slurm, and the stage fails saying so, with its log tail', async () => {
    const input = await trainInput('act-hang', simTrain('--seconds-per-job', '1', '--hang-after-step', '1'), {
      stallTimeoutSeconds: 2,
    });
    const failure = await runActivity(stages.activities.trainIteration, [input]).catch((err: unknown) => err);
    expect(failure).toMatchObject({ type: ErrorType.TrainingJobFailed, nonRetryable: true });
    expect((failure as Error).message).toMatch(
      /made no progress for 2 s at step 1\/3; it was cancelled\. Last log lines:\n(.*\n)*.*hanging after step 1/s,
    );
    const jobId = readFileSync(path.join(slurm.scratch, 'activity', 'jobs', 'act-hang-iter-1', 'slurm-job-id'), 'utf8');
    await waitFor('Slurm to show the hung job cancelled', async () => slurmState(jobId.trim()) === 'CANCELLED');
  });
});
