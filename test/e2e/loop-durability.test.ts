import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { workflowIds } from '../../core/constants.js';
import { activityAttempts, historyOf } from '../helpers/history.js';
import { createLoopFixture, type LoopFixture, loopDatasets, waitFor } from '../helpers/loop-fixture.js';

const count = async (f: LoopFixture, sql: string, params: unknown[]) =>
  Number((await f.db.pool.query(sql, params)).rows[0].n);

interface TrainerJob {
  id: string;
  status: string;
  step: number;
  total_steps: number;
}

describe('a loop survives its worker being killed', () => {
  let f: LoopFixture;
  beforeAll(async () => {
    f = await createLoopFixture({ samples: 240, trainSeconds: 2 });
  });
  afterAll(async () => {
    f?.sim.holdTraining(false);
    await f?.close();
  });

  /**
   * Both kills land where they are meant to whatever the machine's speed: the simulated servers hold the work, so the
   * probe cannot finish and the training job cannot end before the kill.
   */
  // Two full loops and three worker start-ups (each bundles the workflows), plus a heartbeat timeout per kill.
  test(
    'killed mid-probe and mid-training, it finishes with the same datasets and rows as an uninterrupted run',
    { timeout: 300_000 },
    async () => {
      const steady = f.config({ name: 'steady' });
      await f.start(steady);
      const first = f.startWorker();
      const steadyResult = await f.loops.handle('steady').result();
      expect(steadyResult.iterations).toBe(2);
      first.kill('SIGTERM');

      const crashy = f.config({ name: 'crashy' });
      const batchSize = crashy.probe.batchSize;
      // A probe batch (one page) asks its samples `conversationsPerRequest` to a request (vLLM's batch route).
      const requestsPerBatch = Math.ceil(batchSize / crashy.probe.conversationsPerRequest);
      // Iteration 1 probes π_1, served as `crashy-iter-1`. Its first 2 × requestsPerBatch − 1 requests are answered,
      // every later one is held unanswered. The probe runs two batches at a time and a batch here is one page (written
      // whole), so exactly one batch gets all its answers and is written: the two that run first cannot both (that takes
      // 2 × requestsPerBatch answers), and a third starts only after one of them has. The rest of the probe waits on held
      // requests.
      expect(crashy.concurrency.batches).toBe(2);
      f.sim.faults.add([
        { model: 'crashy-iter-1', kind: 'latency', latencyMs: 0, count: 2 * requestsPerBatch - 1 },
        { model: 'crashy-iter-1', kind: 'timeout' },
      ]);
      const before = f.sim.stats();
      await f.start(crashy);
      let worker = f.startWorker();
      const probed = (iteration: number) =>
        count(f, `SELECT count(*) AS n FROM probe_results WHERE loop_name = 'crashy' AND iteration = $1`, [iteration]);
      await waitFor(
        'one probe batch written and the rest of the probe held by the server',
        async () => (await probed(1)) >= batchSize && f.sim.stats().faults.timeout > before.faults.timeout,
      );
      worker.kill('SIGKILL');
      const probedAtKill = await probed(1);
      const members = await count(
        f,
        `SELECT member_count AS n FROM dataset_versions WHERE loop_name = 'crashy' AND iteration = 1`,
        [],
      );
      expect(probedAtKill).toBe(batchSize);
      expect(probedAtKill).toBeLessThan(members);

      // The policy answers again; the trainer now holds its jobs at their last step, so iteration 2's training is certainly
      // still running when the next worker is killed.
      f.sim.faults.clear();
      f.sim.holdTraining(true);
      worker = f.startWorker();
      const trainerJob = async (): Promise<TrainerJob | undefined> =>
        ((await (await fetch(`${f.sim.trainerURL}/jobs?job_key=crashy-iter-2`)).json()) as { data: TrainerJob[] })
          .data[0];
      const held = await waitFor('the second training job to be held on the trainer', async () => {
        const job = await trainerJob();
        if (job?.status !== 'running') return undefined;
        const { lines } = (await (await fetch(`${f.sim.trainerURL}/jobs/${job.id}/logs`)).json()) as {
          lines: string[];
        };
        return lines.some((line) => line.includes('until the hold is released')) ? job : undefined;
      });
      expect(
        await count(
          f,
          `SELECT count(*) AS n FROM training_runs WHERE loop_name = 'crashy' AND iteration = 2 AND status IN ('submitted', 'running')`,
          [],
        ),
      ).toBe(1);
      worker.kill('SIGKILL');
      // Killed while the job was running (it cannot end while held).
      expect((await trainerJob())?.status).toBe('running');
      f.sim.holdTraining(false);
      worker = f.startWorker();
      const crashyResult = await f.loops.handle('crashy').result();
      worker.kill('SIGTERM');

      // The kills cost attempts, as the histories record: probe batches of iteration 1 and the training of iteration 2
      // ran again on the new workers (re-attaching to the same training job, which ran once).
      const probe1 = activityAttempts(
        await historyOf(f.loops.client.workflow.getHandle(workflowIds.stage('crashy', 1, 'probe'))),
      );
      expect(probe1.filter((a) => a.activity === 'probeBatch' && a.attempt > 1).length).toBeGreaterThan(0);
      const iteration2 = activityAttempts(await historyOf(f.loops.handle('crashy')));
      expect(iteration2.find((a) => a.activity === 'trainIteration')?.attempt).toBeGreaterThan(1);
      expect((await trainerJob())?.id).toBe(held.id);

      expect(await loopDatasets(f.db, 'crashy')).toEqual(await loopDatasets(f.db, 'steady'));
      expect(crashyResult.history.map((h) => h.accuracy ?? null)).toEqual(
        steadyResult.history.map((h) => h.accuracy ?? null),
      );
      for (const table of ['probe_results', 'judgements', 'expansions', 'training_runs']) {
        const steadyRows = await count(f, `SELECT count(*) AS n FROM ${table} WHERE loop_name = 'steady'`, []);
        expect(await count(f, `SELECT count(*) AS n FROM ${table} WHERE loop_name = 'crashy'`, []), table).toBe(
          steadyRows,
        );
      }
      // One training job per iteration on the trainer, however often the activity was retried.
      const jobs = (await (await fetch(`${f.sim.trainerURL}/jobs?job_key=crashy-iter-2`)).json()) as {
        data: unknown[];
      };
      expect(jobs.data).toHaveLength(1);
    },
  );
});
