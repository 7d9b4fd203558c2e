import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createLoopFixture, type LoopFixture, loopDatasets, waitFor } from '../helpers/loop-fixture.js';

const count = async (f: LoopFixture, sql: string, params: unknown[]) => Number((await f.db.pool.query(sql, params)).rows[0].n);

describe('a loop survives its worker being killed', () => {
  let f: LoopFixture;
  beforeAll(async () => {
    f = await createLoopFixture({ samples: 240, trainSeconds: 2 });
  });
  afterAll(async () => f?.close());

  test('killed mid-probe and mid-training, it finishes with the same datasets and rows as an uninterrupted run', async () => {
    // Slow the policy a little so the kill lands inside the probe.
    await fetch(`${f.sim.url}/sim/faults`, { method: 'POST', body: JSON.stringify({ role: 'policy', kind: 'latency', latencyMs: 60, count: 1_000_000 }) });

    const steady = f.config({ name: 'steady' });
    await f.start(steady);
    const first = f.startWorker();
    const steadyResult = await f.loops.handle('steady').result();
    expect(steadyResult.iterations).toBe(2);
    first.kill('SIGTERM');

    const crashy = f.config({ name: 'crashy' });
    await f.start(crashy);
    let worker = f.startWorker();
    const probed = (iteration: number) =>
      count(f, `SELECT count(*) AS n FROM probe_results WHERE loop_name = 'crashy' AND iteration = $1`, [iteration]);
    await waitFor('the first probe to be under way', async () => (await probed(1)) >= 10);
    worker.kill('SIGKILL');
    const probedAtKill = await probed(1);
    const members = await count(f, `SELECT member_count AS n FROM dataset_versions WHERE loop_name = 'crashy' AND iteration = 1`, []);
    expect(probedAtKill).toBeLessThan(members);

    worker = f.startWorker();
    await waitFor('the second training job to run', async () =>
      (await count(f, `SELECT count(*) AS n FROM training_runs WHERE loop_name = 'crashy' AND iteration = 2 AND status IN ('submitted', 'running')`, [])) > 0,
    );
    worker.kill('SIGKILL');
    worker = f.startWorker();
    const crashyResult = await f.loops.handle('crashy').result();
    worker.kill('SIGTERM');

    expect(await loopDatasets(f.db, 'crashy')).toEqual(await loopDatasets(f.db, 'steady'));
    expect(crashyResult.history.map((h) => h.accuracy ?? null)).toEqual(steadyResult.history.map((h) => h.accuracy ?? null));
    for (const table of ['probe_results', 'judgements', 'expansions', 'training_runs']) {
      const steadyRows = await count(f, `SELECT count(*) AS n FROM ${table} WHERE loop_name = 'steady'`, []);
      expect(await count(f, `SELECT count(*) AS n FROM ${table} WHERE loop_name = 'crashy'`, []), table).toBe(steadyRows);
    }
    // One training job per iteration on the trainer, however often the activity was retried.
    const jobs = (await (await fetch(`${f.sim.url}/trainer/v1/jobs?job_key=crashy-iter-2`)).json()) as { data: unknown[] };
    expect(jobs.data).toHaveLength(1);
  });
});
