import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import { LocalTrainingBackend } from '../../activities/training/local-backend.js';
import type { TrainingJobState } from '../../activities/training/backend.js';
import { Grpo, LoraConfig } from '../../core/config.js';
import { TrainingJobSpec } from '../../core/training.js';

const FAKE_TRAINER = fileURLToPath(new URL('../fixtures/fake-trainer.js', import.meta.url));
const workDir = mkdtempSync(path.join(os.tmpdir(), 'looptool-local-train-'));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

const backend = (steps: number, mode = 'ok') =>
  new LocalTrainingBackend({
    command: [process.execPath, FAKE_TRAINER, '{spec}', String(steps), mode],
    workDir,
  });

/** Polls for a condition (the deadline only turns a hang into a failure; nothing is asserted on time). */
async function poll<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const until = (
  b: LocalTrainingBackend,
  job: string,
  done: (s: TrainingJobState) => boolean,
): Promise<TrainingJobState> =>
  poll(`job ${job} to get there`, async () => {
    const state = await b.status(job);
    return done(state) ? state : undefined;
  });

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('local training backend', () => {
  const dataset = path.join(workDir, 'train.parquet');
  writeFileSync(dataset, 'not really parquet');
  const spec = (job: string): TrainingJobSpec =>
    TrainingJobSpec.parse({
      jobKey: job,
      loopName: 'demo',
      iteration: 1,
      seed: 7,
      dataset: { path: dataset, format: 'verl-parquet', rows: 1 },
      baseModel: 'base-model',
      init: null,
      weights: 'full',
      lora: LoraConfig.parse({}),
      grpo: Grpo.parse({ learningRate: 3e-6 }),
      reward: { mode: 'exact' },
      outputDir: path.join(workDir, job, 'checkpoint'),
    });

  test('runs the command detached with the job spec, reports progress, and succeeds with its manifest', async () => {
    const first = await backend(6).submit(spec('ok-job'));
    expect(first.status).toBe('running');
    const done = await until(backend(6), 'ok-job', (s) => s.status === 'succeeded');
    const hf = path.join(workDir, 'ok-job', 'checkpoint', 'hf');
    expect(done).toMatchObject({
      status: 'succeeded',
      step: 6,
      totalSteps: 6,
      checkpoint: { kind: 'full', path: hf, baseModel: 'base-model', steps: 6, metrics: { reward_mean: 0.5 } },
    });
    // The recipe read every setting from the spec file the backend wrote.
    expect(JSON.parse(readFileSync(path.join(hf, 'adapter.json'), 'utf8'))).toEqual({
      dataset,
      init: null,
      lr: 3e-6,
      exists: true,
    });
  });

  test('a command that exits 0 without a checkpoint manifest is a failed job that says so', async () => {
    const b = backend(1, 'no-manifest');
    await b.submit(spec('no-manifest'));
    const state = await until(b, 'no-manifest', (s) => s.status !== 'running');
    expect(state.status).toBe('failed');
    expect(state.error).toMatch(/checkpoint\.json is missing/);
  });

  test('submitting the same job key again re-attaches instead of starting a second run', async () => {
    const b = backend(4);
    await b.submit(spec('twice'));
    // A new backend object stands for a restarted worker.
    await backend(4).submit(spec('twice'));
    await until(b, 'twice', (s) => s.status === 'succeeded');
    expect(
      readFileSync(path.join(workDir, 'twice', 'checkpoint', 'runs.log'), 'utf8')
        .trim()
        .split('\n'),
    ).toHaveLength(1);
  });

  test('a failing command is a failed job that points at its log', async () => {
    const b = backend(1, 'fail');
    await b.submit(spec('fails'));
    const state = await until(b, 'fails', (s) => s.status === 'failed');
    expect(state.error).toMatch(/exited with 3; see .*log\.txt/);
    expect(await b.logs('fails')).toContain('CUDA out of memory');
  });

  test('cancel stops the running job and records it as cancelled', async () => {
    const b = backend(10_000);
    await b.submit(spec('long'));
    await until(b, 'long', (s) => s.step > 0);
    await b.cancel('long');
    expect((await b.status('long')).status).toBe('cancelled');
    const pid = Number(readFileSync(path.join(workDir, 'jobs', 'long', 'runner.pid'), 'utf8'));
    // The runner (and its process group) was sent SIGTERM: polled until it is gone, then it stays recorded as cancelled.
    await poll('the job runner to exit', () => (isAlive(pid) ? undefined : true));
    expect(() => process.kill(pid, 0)).toThrow();
    expect((await b.status('long')).status).toBe('cancelled');
    expect(existsSync(path.join(workDir, 'long', 'checkpoint', 'checkpoint.json'))).toBe(false);
  });
});
