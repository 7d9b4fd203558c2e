import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { SEARCH_ATTRIBUTES, workflowIds } from '../../core/constants.js';
import { runLooptool } from '../helpers/cli.js';
import { historyOf, scheduledActivities } from '../helpers/history.js';
import { createLoopFixture, type LoopFixture, loopDatasets, waitFor } from '../helpers/loop-fixture.js';

/**
 * Loops that end without completing come back: `looptool loop terminate` ends one mid-probe with a reason, `loop
 * status` and `loop list` say why it ended, and `looptool loop resume` continues it in a new run from the state its
 * interrupted iteration started with, finding the stored work instead of redoing it. A loop whose training job failed
 * fails (a verdict, not an outage), and its resume trains again under a new job key. Each ends with the datasets of an
 * uninterrupted run.
 */
describe('resuming loops that ended without completing', () => {
  let f: LoopFixture;
  let worker: ChildProcess;
  let reference: Record<number, string[]>;
  const cli = (...args: string[]) => runLooptool(args, { env: f.env });
  const count = async (sql: string, params: unknown[]) => Number((await f.db.pool.query(sql, params)).rows[0].n);

  beforeAll(async () => {
    f = await createLoopFixture({ samples: 200 });
    worker = f.startWorker();
    await f.start(f.config({ name: 'reference' }));
    await f.loops.handle('reference').result();
    reference = await loopDatasets(f.db, 'reference');
  }, 240_000);
  afterAll(async () => {
    worker?.kill('SIGKILL');
    await f?.close();
  });

  test(
    'terminated mid-probe, then resumed: same datasets, and only the unprobed samples are sent again',
    { timeout: 300_000 },
    async () => {
      const name = 'cut';
      const config = f.config({ name });
      const batchSize = config.probe.batchSize;
      // A probe batch (one page) asks its samples `conversationsPerRequest` to a request (vLLM's batch route).
      const requestsPerBatch = Math.ceil(batchSize / config.probe.conversationsPerRequest);
      // π_1 (served as `cut-iter-1`) answers fewer requests than two batches need, then holds every later one: exactly one
      // probe batch is written and the probe is certainly under way when the loop is terminated.
      f.sim.faults.add([
        { model: `${name}-iter-1`, kind: 'latency', latencyMs: 0, count: 2 * requestsPerBatch - 1 },
        { model: `${name}-iter-1`, kind: 'timeout' },
      ]);
      const before = f.sim.stats();
      await f.start(config);
      const probed = () =>
        count(`SELECT count(*) AS n FROM probe_results WHERE loop_name = $1 AND iteration = 1`, [name]);
      await waitFor('one probe batch written', async () => (await probed()) >= batchSize);
      const firstRunId = (await f.loops.handle(name).describe()).runId;

      const terminated = await cli('loop', 'terminate', name, '--reason', 'node maintenance');
      expect(terminated.code, terminated.stderr).toBe(0);
      // The terminated run's batches learn of it from their next heartbeat and abort every request they hold: none
      // goes on calling the model for a loop that no longer runs.
      await waitFor('the terminated run to abort the requests the server held', async () => {
        const { faults, requests } = f.sim.stats();
        const held = faults.timeout - before.faults.timeout;
        return held > 0 && requests.aborted - before.requests.aborted >= held;
      });
      f.sim.faults.clear();
      const status = await cli('loop', 'status', name);
      expect(status.stdout).toMatch(/loop cut: terminated/);
      expect(status.stdout).toMatch(/The loop terminated: terminated.*: node maintenance/);
      const list = await cli('loop', 'list');
      expect(list.stdout).toMatch(/cut\s+terminated.*node maintenance/);

      const probedBefore = await probed();
      const requestsBefore = f.sim.stats().requests.byModel[`${name}-iter-1`] ?? 0;
      const resumed = await cli('loop', 'resume', name);
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(resumed.stdout).toMatch(/Resumed loop cut at iteration 1 .*terminated.*node maintenance/);
      const result = await f.loops.handle(name).result();
      expect(result.iterations).toBe(2);

      expect(await loopDatasets(f.db, name)).toEqual(reference);
      const members = await count(
        `SELECT member_count AS n FROM dataset_versions WHERE loop_name = $1 AND iteration = 1`,
        [name],
      );
      // Every member probed once; π_1 was asked only about the members the terminated run had not stored.
      expect(await probed()).toBe(members);
      expect(
        await count(
          `SELECT count(*) AS n FROM (SELECT sample_id FROM probe_results WHERE loop_name = $1 GROUP BY iteration, sample_id HAVING count(*) > 1) d`,
          [name],
        ),
      ).toBe(0);
      // π_1 also answered the seed pool's held-out slice once, after the probe (the ledger's evaluate calls).
      const heldOutAnswers = await count(
        `SELECT count(*) AS n FROM model_calls WHERE loop_name = $1 AND stage = 'evaluate' AND model = $2`,
        [name, `${name}-iter-1`],
      );
      expect(heldOutAnswers).toBeGreaterThan(0);
      expect((f.sim.stats().requests.byModel[`${name}-iter-1`] ?? 0) - requestsBefore).toBe(
        members - probedBefore + heldOutAnswers,
      );

      // The resumed run kept π_1 (trained by the terminated run): its first run scheduled no training, and the
      // trainer holds one job for iteration 1.
      const jobs = (await (await fetch(`${f.sim.trainerURL}/jobs?job_key=${name}-iter-1`)).json()) as {
        data: unknown[];
      };
      expect(jobs.data).toHaveLength(1);
      const firstRunOfResume = await historyOf(
        f.loops.client.workflow.getHandle(workflowIds.loop(name), await oldestResumedRun(f, name, firstRunId)),
      );
      expect(scheduledActivities(firstRunOfResume)).not.toContain('trainIteration');
    },
  );

  test(
    'a failed training job fails the loop at once; resume trains again under a new job key',
    { timeout: 300_000 },
    async () => {
      const name = 'crashed';
      f.sim.failTraining(1);
      await f.start(f.config({ name }));
      const failed = await f.loops
        .handle(name)
        .result()
        .then(
          () => undefined,
          (err: unknown) => err,
        );
      expect(failed).toBeDefined();
      const history = await historyOf(f.loops.handle(name));
      // A verdict on the work, not an outage: one failed training activity, no rounds of waiting.
      expect(history.filter((e) => e.activityTaskFailedEventAttributes)).toHaveLength(1);
      const status = await cli('loop', 'status', name);
      expect(status.stdout).toMatch(
        /The loop failed: .*activity trainIteration: training job crashed-iter-1 failed: injected failure/,
      );

      const resumed = await cli('loop', 'resume', name);
      expect(resumed.code, resumed.stderr).toBe(0);
      expect((await f.loops.handle(name).result()).iterations).toBe(2);
      expect(await loopDatasets(f.db, name)).toEqual(reference);
      const job = async (key: string) =>
        ((await (await fetch(`${f.sim.trainerURL}/jobs?job_key=${key}`)).json()) as { data: { status: string }[] })
          .data;
      expect((await job(`${name}-iter-1`)).map((j) => j.status)).toEqual(['failed']);
      expect((await job(`${name}-iter-1-a2`)).map((j) => j.status)).toEqual(['succeeded']);
      const run = await f.db.pool.query(
        `SELECT job_key, status FROM training_runs WHERE loop_name = $1 ORDER BY iteration`,
        [name],
      );
      expect(run.rows).toEqual([
        { job_key: `${name}-iter-1-a2`, status: 'succeeded' },
        { job_key: `${name}-iter-2`, status: 'succeeded' },
      ]);
    },
  );

  test(
    "an outage longer than an activity's retries is waited out, and shown while it lasts",
    { timeout: 300_000 },
    async () => {
      const name = 'patient';
      const config = f.config({ name });
      // The judge answers 500 to everything: each judge batch spends its retries, then the loop waits in rounds.
      f.sim.faults.add([{ role: 'judge', kind: 'server_error' }]);
      await f.start(config);
      const stage = f.loops.client.workflow.getHandle(workflowIds.stage(name, 1, 'judge'));
      // Two rounds: the activity's retry policy was spent twice, which used to fail the loop.
      await waitFor(
        'two rounds of judge retries',
        async () =>
          (await historyOf(stage)).filter((e) => e.activityTaskFailedEventAttributes).length >= 2 ? true : undefined,
        240_000,
      );
      const status = await cli('loop', 'status', name);
      expect(status.stdout).toMatch(/WAITING since .*judge batch \d+\/\d+, iteration 1: .*HTTP 500/);
      const description = await f.loops.handle(name).describe();
      expect(description.typedSearchAttributes.get(SEARCH_ATTRIBUTES.loopWaitingFor)).toMatch(/judge batch .*HTTP 500/);
      expect(description.typedSearchAttributes.get(SEARCH_ATTRIBUTES.loopWaitingSince)).toBeInstanceOf(Date);
      f.sim.faults.clear();
      expect((await f.loops.handle(name).result()).iterations).toBe(2);
      expect(await loopDatasets(f.db, name)).toEqual(reference);
      // Once the judge answered, the loop stopped saying it waits.
      const after = await f.loops.handle(name).describe();
      expect(after.typedSearchAttributes.get(SEARCH_ATTRIBUTES.loopWaitingFor)).toBeUndefined();
    },
  );
});

/** The first run of `loop/<name>` after `firstRunId` (the resumed run; later ones continued it as new). */
async function oldestResumedRun(f: LoopFixture, name: string, firstRunId: string): Promise<string> {
  const runs: { runId: string; startTime: Date }[] = [];
  for await (const run of f.loops.client.workflow.list({ query: `WorkflowId = '${workflowIds.loop(name)}'` }))
    runs.push({ runId: run.runId, startTime: run.startTime });
  const later = runs.filter((r) => r.runId !== firstRunId).sort((a, b) => +a.startTime - +b.startTime);
  return later[0]!.runId;
}
