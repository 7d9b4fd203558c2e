import { fileURLToPath } from 'node:url';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { LoopConfig } from '../../core/config.js';
import { ErrorType } from '../../core/errors.js';
import type { TrainIterationInput } from '../../core/inputs.js';
import type { TrainingProgress } from '../../core/training.js';
import { startSimServer } from '../../sim/server.js';
import { freePort } from '../helpers/ports.js';
import { addLoop, createStageFixture, runActivity, type StageFixture } from '../helpers/stages.js';

const FAKE_TRAINER = fileURLToPath(new URL('../fixtures/fake-trainer.js', import.meta.url));
let fixture: StageFixture;
let loopCount = 0;

beforeAll(async () => {
  fixture = await createStageFixture({ count: 40, seed: 3, wrongLabelRate: 0.1, sim: { trainer: { jobSeconds: 1 } } });
});
afterAll(async () => fixture?.close());

/** A training input on a loop of its own (training_runs is keyed by loop and iteration). */
async function trainInput(training: Record<string, unknown>): Promise<TrainIterationInput> {
  const loopName = `train-${++loopCount}`;
  await addLoop(fixture, loopName);
  return {
    loopName,
    iteration: 1,
    versionId: fixture.seedVersion.id,
    baseModel: 'base',
    baseCheckpoint: null,
    training: LoopConfig.shape.training.parse(training),
    reward: 'exact',
    seed: 7,
    pollIntervalMs: 50,
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

describe('the training activity', () => {
  test('heartbeats the engine, the job id, its state and step, and returns the manifest', async () => {
    const beats: TrainingProgress[] = [];
    const result = await runActivity(
      fixture.activities.trainIteration,
      [await trainInput({ backend: 'sim', url: fixture.sim.url })],
      { onHeartbeat: (details) => beats.push(details as TrainingProgress) },
    );
    expect(result.checkpoint).toMatchObject({ kind: 'lora', baseModel: 'base' });
    const running = beats.filter((beat) => beat.status === 'running');
    expect(running.length).toBeGreaterThan(0);
    expect(running.at(-1)).toMatchObject({ engine: 'sim', jobKey: 'train-1-iter-1', externalId: result.externalId });
    expect(Math.max(...beats.map((beat) => beat.step))).toBeGreaterThan(0);
  });

  test('a running job that stops making progress is cancelled, and the stage fails with its log tail', async () => {
    fixture.sim.holdTraining(true);
    try {
      const input = await trainInput({ backend: 'sim', url: fixture.sim.url, stallTimeoutSeconds: 2 });
      const failure = await failureOf(runActivity(fixture.activities.trainIteration, [input]));
      expect(failure.type).toBe(ErrorType.TrainingJobFailed);
      expect(failure.nonRetryable).toBe(true);
      expect(failure.message).toMatch(/made no progress for 2 s .*it was cancelled\. Last log lines:\n.*held at step/s);
      expect(fixture.sim.stats().trainer.cancelled).toBe(1);
      const { rows } = await fixture.db.pool.query<{ status: string }>(
        'SELECT status FROM training_runs WHERE loop_name = $1',
        [input.loopName],
      );
      expect(rows).toEqual([{ status: 'failed' }]);
    } finally {
      fixture.sim.holdTraining(false);
    }
  });

  test('an engine that does not answer is waited for with heartbeats, not failed', async () => {
    const port = await freePort();
    const input = await trainInput({ backend: 'sim', url: `http://127.0.0.1:${port}` });
    const beats: TrainingProgress[] = [];
    let late: Awaited<ReturnType<typeof startSimServer>> | undefined;
    try {
      const result = await runActivity(fixture.activities.trainIteration, [input], {
        onHeartbeat: (details) => {
          const beat = details as TrainingProgress;
          beats.push(beat);
          // The trainer comes up only after the activity has reported it unreachable a few times.
          if (beat.unreachableSince && beats.length === 3 && !late)
            void startSimServer({ port, seed: 7, trainer: { jobSeconds: 0.2 } }).then((sim) => (late = sim));
        },
      });
      expect(beats.slice(0, 3).every((beat) => beat.status === 'submitting' && beat.unreachableSince)).toBe(true);
      expect(beats[0]!.lastError).toMatch(/ECONNREFUSED|fetch failed|connect/i);
      expect(result.checkpoint.kind).toBe('lora');
      expect(beats.at(-1)!.unreachableSince).toBeUndefined();
    } finally {
      await late?.close();
    }
  });

  test("a failed job's log tail reaches the stage's error", async () => {
    const input = await trainInput({
      backend: 'local',
      command: [process.execPath, FAKE_TRAINER, '{spec}', '1', 'fail'],
      workDir: `${fixture.deps.artifactsDir}/local-fail`,
    });
    const failure = await failureOf(runActivity(fixture.activities.trainIteration, [input]));
    expect(failure.type).toBe(ErrorType.TrainingJobFailed);
    expect(failure.message).toMatch(/failed: exited with 3.*Last log lines:\n.*CUDA out of memory \(simulated\)/s);
  });
});
