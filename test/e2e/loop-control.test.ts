import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { stringify } from 'yaml';
import { loadLoopConfig } from '../../client/config-file.js';
import { workflowIds } from '../../core/constants.js';
import { contentHash } from '../../core/hash.js';
import { writeSeedData } from '../../sim/seed-data.js';
import { runLooptool } from '../helpers/cli.js';
import {
  childrenStarted,
  completedActivities,
  historyOf,
  scheduledActivities,
  signalsReceived,
  updatesAccepted,
  updatesCompleted,
  workflowTaskCompletedAfter,
} from '../helpers/history.js';
import { createLoopFixture, type LoopFixture, waitFor } from '../helpers/loop-fixture.js';
import { quietTemporalLogs } from '../helpers/temporal.js';

/**
 * Steering one loop through the CLI, step by step (the tests share the loop and run in order). Every point the loop is
 * steered at is certain, not a matter of speed: the first pause is sent before any worker runs, and iteration 2 is held
 * in its probe by the simulated server until the test lets it go. What the loop did while paused is read from its
 * Temporal histories.
 */
describe('steering a running loop through the CLI', () => {
  const name = 'steered';
  /** π_2 as the policy server serves it (activities/deploy.ts servedModelName). */
  const iteration2Model = `${name}-iter-2`;
  let f: LoopFixture;
  let worker: ChildProcess | undefined;
  let scratch: string;
  let configFile: string;
  let firstRunId: string;
  let injectedBatch: string;
  /** The config hash `loop start` printed (its first 12 hex digits). */
  let printedHash: string | undefined;
  const cli = (...args: string[]) => runLooptool(args, { env: f.env });
  const loop = () => f.loops.handle(name);
  const firstRun = () => f.loops.client.workflow.getHandle(workflowIds.loop(name), firstRunId);
  const probe2 = () => f.loops.client.workflow.getHandle(workflowIds.stage(name, 2, 'probe'));

  beforeAll(async () => {
    quietTemporalLogs();
    f = await createLoopFixture({ samples: 200, trainSeconds: 1 });
    scratch = mkdtempSync(path.join(os.tmpdir(), 'steered-'));
    configFile = path.join(scratch, 'steered.yaml');
    writeFileSync(configFile, stringify(JSON.parse(JSON.stringify(f.config({ name, iterations: 3 })))));
    // π_2 is rate-limited until the test clears the rule: iteration 2's probe batches keep failing and being retried
    // after the server's retry-after (3 s; the batches' retry policy allows 10 attempts), so the loop is certainly in
    // iteration 2's probe, with its first batches in flight, when the test pauses it there.
    f.sim.faults.add([{ model: iteration2Model, kind: 'rate_limit', retryAfterSeconds: 3 }]);
  });
  afterAll(async () => {
    worker?.kill('SIGTERM');
    await f?.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  test('start is idempotent; a pause sent before any worker runs holds the loop at its first gate (setup, iteration 1)', async () => {
    const started = await cli('loop', 'start', '--config', configFile);
    expect(started.stdout).toMatch(/Started loop steered/);
    printedHash = /config ([0-9a-f]{12})\)/.exec(started.stdout)?.[1];
    expect((await cli('loop', 'start', '--config', configFile)).stdout).toMatch(
      /Loop steered already exists .*not started again/,
    );
    firstRunId = (await loop().describe()).runId;

    // The loop's handlers are registered before its first await, so the pause is taken in its first workflow task.
    const pausing = cli('loop', 'pause', name);
    worker = f.startWorker();
    const paused = await pausing;
    expect(paused.code).toBe(0);
    expect(paused.stdout).toMatch(/steered: iteration 1, stage setup, paused/);

    // Setup (recording the loop, drawing D_1, scoring the base model) is bookkeeping that a pause does not hold; training is the first thing it
    // holds. Wait until setup's last activity has completed and the loop has had a workflow task since: it had every
    // chance to go on, and it did not.
    const history = await waitFor('setup to finish while paused', async () => {
      const events = await historyOf(firstRun());
      const done = events.findIndex((e) => completedActivities([e], events).includes('createInitialVersion'));
      return done >= 0 && workflowTaskCompletedAfter(events, done) ? events : undefined;
    });
    expect(updatesAccepted(history, 'pause')).toHaveLength(1);
    // Setup is registering, drawing D_1 and scoring the base model on the seed pool's held-out slice.
    expect(scheduledActivities(history)).toEqual(['registerLoop', 'createInitialVersion', 'scoreHeldOut']);
    expect(childrenStarted(history)).toEqual([]);
    const status = JSON.parse((await cli('loop', 'status', name, '--json')).stdout);
    expect(status).toMatchObject({ paused: true, iteration: 1, stage: 'setup', workflowStatus: 'RUNNING' });
  });

  test('while paused, an injected file is queued once, and an id that is not a staging batch is rejected by the update validator', async () => {
    const extra = path.join(scratch, 'inject.jsonl');
    await writeSeedData(extra, { count: 12, seed: 99 });
    const injected = await cli('inject', name, extra, '--format', 'openai');
    expect(injected.code).toBe(0);
    const line = /Injected 12 samples \(batch (injection-[0-9a-f-]+)\) into steered; .*\(1 batch\(es\) waiting\)/.exec(
      injected.stdout,
    );
    expect(line, injected.stdout).not.toBeNull();
    injectedBatch = line![1]!;

    // The CLI's idempotency key is the batch id: the same update again (a retried call) queues nothing more.
    expect((await f.loops.inject(name, injectedBatch, injectedBatch)).pendingInjections).toEqual([injectedBatch]);
    // A batch id that `looptool inject` never staged is refused.
    const rejected = await loop()
      .executeUpdate('injectData', { args: [{ stagingBatchId: 'not-a-batch', idempotencyKey: 'x' }] })
      .catch((err: Error) => err);
    expect(rejected).toBeInstanceOf(Error);
    expect(String((rejected as Error).cause ?? rejected)).toMatch(
      /stagingBatchId: must name a batch staged by `looptool inject`/,
    );

    // The validator refused it before it reached history: only the two injections that were accepted are there.
    expect(updatesAccepted(await historyOf(firstRun()), 'injectData')).toHaveLength(2);
    expect(await f.loops.status(name)).toMatchObject({
      paused: true,
      iteration: 1,
      stage: 'setup',
      pendingInjections: [injectedBatch],
    });
  });

  test('resume continues the loop; resuming a loop that is not paused exits 1; nothing new started while it was paused', async () => {
    const resumed = await cli('loop', 'resume', name);
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toMatch(/steered: iteration 1, stage setup, running/);
    const notPaused = await cli('loop', 'resume', name);
    expect(notPaused.code).toBe(1);
    expect(notPaused.stderr).toMatch(/not paused/);

    // Between the pause and the resume the loop scheduled only setup's activities and started no child; the first
    // thing it scheduled after the resume is training.
    const history = await waitFor('training to be scheduled after the resume', async () => {
      const events = await historyOf(firstRun());
      const resumedAt = updatesAccepted(events, 'resume')[0];
      return resumedAt !== undefined && scheduledActivities(events.slice(resumedAt)).length > 0 ? events : undefined;
    });
    const pausedAt = updatesCompleted(history, 'pause')[0]!;
    const resumedAt = updatesAccepted(history, 'resume')[0]!;
    expect(updatesAccepted(history, 'resume')).toHaveLength(1);
    expect(pausedAt).toBeLessThan(resumedAt);
    const whilePaused = history.slice(pausedAt, resumedAt);
    expect(
      scheduledActivities(whilePaused).every((type) =>
        ['registerLoop', 'createInitialVersion', 'scoreHeldOut'].includes(type),
      ),
    ).toBe(true);
    expect(childrenStarted(whilePaused)).toEqual([]);
    expect(scheduledActivities(history.slice(resumedAt))[0]).toBe('trainIteration');
    expect(childrenStarted(history.slice(0, resumedAt))).toEqual([]);
  });

  test('a pause while a stage runs holds its new batches; the batches in flight finish', async () => {
    // Iteration 2's probe: its first two batches (concurrency 2) are scheduled and kept failing by the rate limit.
    await waitFor('iteration 2’s first probe batches to be held by the rate limit', async () => {
      const status = await f.loops.status(name);
      if (status.iteration !== 2 || status.stage !== 'probe') return undefined;
      const events = await historyOf(probe2());
      return (
        scheduledActivities(events).filter((type) => type === 'probeBatch').length === 2 &&
        (f.sim.stats().requests.byModel[iteration2Model] ?? 0) > 0
      );
    });
    const paused = await cli('loop', 'pause', name);
    expect(paused.stdout).toMatch(/steered: iteration 2, stage probe, paused/);
    // The pause update returns once the loop has signalled the stage child, so the child is paused now; let the
    // batches in flight through.
    f.sim.faults.clear();

    // Wait until both have completed and the child has had a workflow task since: it had its chance to start more.
    const history = await waitFor('the batches in flight to finish', async () => {
      const events = await historyOf(probe2());
      const completed = events.flatMap((e, index) =>
        completedActivities([e], events).includes('probeBatch') ? [index] : [],
      );
      return completed.length === 2 && workflowTaskCompletedAfter(events, completed[1]!) ? events : undefined;
    });
    const pauses = signalsReceived(history, 'stagePaused');
    expect(pauses.map((s) => s.args)).toEqual([[true]]);
    const after = history.slice(pauses[0]!.index);
    expect(completedActivities(after, history)).toEqual(['probeBatch', 'probeBatch']);
    expect(scheduledActivities(after)).toEqual([]);

    const status = JSON.parse((await cli('loop', 'status', name, '--json')).stdout);
    expect(status).toMatchObject({
      paused: true,
      iteration: 2,
      stage: 'probe',
      workflowStatus: 'RUNNING',
      running: { done: 2 },
    });
    // There was more to start: the stage has more batches than the two that ran.
    expect(status.running.total).toBeGreaterThan(2);
  });

  test('stop sent during iteration 2 ends the loop after iteration 2', async () => {
    // The loop is paused inside iteration 2 (previous test), so this is certainly iteration 2's stop.
    const stopped = await cli('loop', 'stop', name);
    expect(stopped.code).toBe(0);
    expect(stopped.stdout).toMatch(/steered: iteration 2, stage probe, paused, stopping after this iteration/);
    const resumed = await cli('loop', 'resume', name);
    expect(resumed.stdout).toMatch(/steered: iteration 2, stage probe, running, stopping after this iteration/);

    const result = await loop().result();
    // Configured for 3 iterations; the stop ended it after the one it was sent in.
    expect(result.iterations).toBe(2);
    expect(result.history.map((h) => h.iteration)).toEqual([1, 2]);
    const versions = await f.db.pool.query(
      `SELECT max(iteration)::int AS last FROM dataset_versions WHERE loop_name = $1`,
      [name],
    );
    expect(versions.rows[0].last).toBe(2);
    expect(f.sim.stats().requests.byModel[`${name}-iter-3`]).toBeUndefined();

    // The held batches started after the resume, and the probe finished all of them.
    const events = await historyOf(probe2());
    const [pause, resume] = signalsReceived(events, 'stagePaused');
    expect([pause?.args, resume?.args]).toEqual([[true], [false]]);
    expect(scheduledActivities(events.slice(pause!.index, resume!.index))).toEqual([]);
    expect(scheduledActivities(events.slice(resume!.index)).length).toBeGreaterThan(0);
  });

  test('the injected file landed once, in D_2, with role injected', async () => {
    const roles = await f.db.pool.query(
      `SELECT v.iteration, m.role, count(*)::int AS n FROM dataset_versions v JOIN dataset_members m ON m.version_id = v.id
       WHERE v.loop_name = $1 GROUP BY 1, 2`,
      [name],
    );
    expect(roles.rows.filter((r) => r.role === 'injected')).toEqual([{ iteration: 2, role: 'injected', n: 12 }]);
    expect((await f.loops.status(name)).pendingInjections).toEqual([]);
  });

  test('one loop, one config hash: the one `loop start` printed, in the loop row, every dataset version and the memo', async () => {
    const { rows } = await f.db.pool.query<{ hash: string }>(
      `SELECT config_hash AS hash FROM loops WHERE name = $1 UNION SELECT config_hash FROM dataset_versions WHERE loop_name = $1`,
      [name],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]!.hash).toBe(contentHash(loadLoopConfig(configFile).config));
    expect(rows[0]!.hash.slice(0, 12)).toBe(printedHash);
    expect((await loop().describe()).memo?.configHash).toBe(rows[0]!.hash);
  });

  test('report writes HTML, JSON and PNG charts; list shows the loop completed', async () => {
    const reportDir = path.join(scratch, `report-${randomBytes(3).toString('hex')}`);
    const reported = await cli('loop', 'report', name, '--out', reportDir);
    expect(reported.code).toBe(0);
    // CI installs Chromium (.ci/run), so the PNG charts are made; each starts with the PNG signature.
    expect(reported.stdout).toMatch(/PNG charts: accuracy\.png, composition\.png, judgements\.png, expansions\.png/);
    expect(readFileSync(path.join(reportDir, 'accuracy.png')).subarray(1, 4).toString()).toBe('PNG');
    const html = readFileSync(path.join(reportDir, 'report.html'), 'utf8');
    expect(html).toContain('<h2>Dataset composition (Table 3)</h2>');
    expect(html).toMatch(/<svg[^>]*>.*Held-out accuracy/s);
    const report = JSON.parse(readFileSync(path.join(reportDir, 'report.json'), 'utf8'));
    expect(report.composition.map((c: { iteration: number }) => c.iteration)).toEqual([1, 2]);
    expect(report.composition[1].byRole.injected).toBe(12);
    // The probe's outcomes per iteration: iteration 1 probed every member of D_1. The stop arrived while iteration 2
    // probed, which made it the last: its judge and expand were skipped, since no D_3 would use them.
    expect(html).toContain('<h2>Probe outcomes (GCP)</h2>');
    const probed = (report.probes as { iteration: number; n: number }[]).filter((p) => p.iteration === 1);
    expect(probed.reduce((sum, p) => sum + p.n, 0)).toBe(report.composition[0].total);
    expect((report.judgements as { iteration: number }[]).filter((j) => j.iteration === 2)).toEqual([]);
    expect((report.expansions as { iteration: number }[]).filter((e) => e.iteration === 2)).toEqual([]);
    // The seed pool's held-out slice was scored for the base model and both iterations, beside the evaluation sets.
    const heldOut = (report.accuracy as { evalSet: string; iteration: number }[]).filter(
      (a) => a.evalSet === 'held-out',
    );
    expect(heldOut.map((a) => a.iteration)).toEqual([0, 1, 2]);
    const list = await cli('loop', 'list');
    expect(list.stdout).toMatch(/steered\s+completed\s+2/);
  });

  test('every run of the loop and its stage children replays against today’s workflow bundle', async () => {
    // A non-deterministic change to workflows/ fails here.
    const bundle = { code: readFileSync(inject('workflowBundlePath'), 'utf8') };
    const client = f.loops.client;
    let replayed = 0;
    for await (const execution of client.workflow.list({ query: `WorkflowId STARTS_WITH 'loop/steered'` })) {
      const history = await client.workflow.getHandle(execution.workflowId, execution.runId).fetchHistory();
      await Worker.runReplayHistory({ workflowBundle: bundle }, history, execution.workflowId);
      replayed++;
    }
    // Two loop runs and the three stage children of iteration 1 (the last iteration runs no stages).
    expect(replayed).toBeGreaterThanOrEqual(2 + 3);
  });
});
