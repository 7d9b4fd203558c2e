import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createLoopFixture, type LoopFixture } from '../helpers/loop-fixture.js';

/**
 * Two loops on one GPU pool of concurrency 1 take turns: the second's training starts only after the first's ended,
 * although the worker's general GPU queue and the trainer could both run two jobs at once.
 */
describe('a shared GPU pool', () => {
  let f: LoopFixture;

  beforeAll(async () => {
    f = await createLoopFixture({ samples: 60, trainSeconds: 2, trainConcurrency: 4 });
    f.env.LOOPTOOL_GPU_POOLS = 'shared:1';
    f.env.LOOPTOOL_GPU_CONCURRENCY = '4';
    f.startWorker();
  });
  afterAll(async () => f.close());

  test('two loops started on a pool of concurrency 1 never train at the same time', async () => {
    const names = [`pool-a-${process.pid}`, `pool-b-${process.pid}`];
    await Promise.all(names.map((name) => f.start(f.config({ name, iterations: 2, training: trainingOnPool() }))));
    await Promise.all(names.map((name) => f.loops.handle(name).result()));
    const { rows } = await f.db.pool.query<{ loop_name: string; submitted_at: Date; finished_at: Date }>(
      `SELECT loop_name, submitted_at, finished_at FROM training_runs WHERE loop_name = ANY($1) ORDER BY submitted_at`,
      [names],
    );
    expect(rows).toHaveLength(4);
    // Sorted by start, each job started after the one before it had ended.
    for (let i = 1; i < rows.length; i++)
      expect(rows[i]!.submitted_at.getTime()).toBeGreaterThanOrEqual(rows[i - 1]!.finished_at.getTime());
    expect(new Set(rows.map((row) => row.loop_name))).toEqual(new Set(names));
  });

  function trainingOnPool() {
    return { backend: 'sim', url: f.sim.url, pool: 'shared' };
  }
});
