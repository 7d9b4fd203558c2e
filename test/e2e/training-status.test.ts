import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runLooptool } from '../helpers/cli.js';
import { createLoopFixture, type LoopFixture, waitFor } from '../helpers/loop-fixture.js';

/**
 * While a loop trains, `loop status` shows the training job as its activity last heartbeated it: the engine, the
 * engine's job id, its state and step, and its last log lines.
 */
describe('training progress in loop status', () => {
  let f: LoopFixture;
  const name = `status-train-${process.pid}`;

  beforeAll(async () => {
    f = await createLoopFixture({ samples: 60, trainSeconds: 0.5 });
    f.startWorker();
  });
  afterAll(async () => {
    f.sim.holdTraining(false);
    await f.close();
  });

  test('the engine, job id, state, step and log tail of the running job', async () => {
    f.sim.holdTraining(true);
    await f.start(f.config({ name, iterations: 1 }));
    const training = await waitFor('the held training job to be reported running at its last step', async () => {
      const status = await f.loops.status(name);
      const training = status.stage === 'train' ? status.training : undefined;
      return training?.status === 'running' && training.step > 0 && training.logsTail?.length ? training : undefined;
    });
    expect(training).toMatchObject({
      engine: 'sim',
      jobKey: `${name}-iter-1`,
      externalId: expect.stringMatching(/^job-/),
    });
    const shown = await runLooptool(['loop', 'status', name], { env: f.env });
    expect(shown.stdout).toContain(`train    sim job ${training.externalId}: running, step`);
    expect(shown.stdout).toMatch(/\| .*(step|queued)/);
    f.sim.holdTraining(false);
    await f.loops.handle(name).result();
    expect((await f.loops.status(name)).training).toBeUndefined();
  });
});
