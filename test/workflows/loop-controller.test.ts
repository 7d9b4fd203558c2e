import { randomUUID } from 'node:crypto';
import { CancelledFailure, Context, sleep } from '@temporalio/activity';
import { ApplicationFailure, WorkflowFailedError, WorkflowUpdateFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { workflowIds } from '../../core/constants.js';
import { ErrorType } from '../../core/errors.js';
import type { LoopState, StageWorkflowInput } from '../../core/inputs.js';
import {
  injectDataUpdate,
  pauseUpdate,
  resumeUpdate,
  statusQuery,
  stopAfterIterationUpdate,
} from '../../core/messages.js';
import type { LoopResult, loopWorkflow } from '../../workflows/loop.js';
import type { stageWorkflow } from '../../workflows/stage.js';
import { connectTestTemporal, quietTemporalLogs, type TestTemporal } from '../helpers/temporal.js';
import {
  acceptedUpdates,
  checkpointOf,
  manifestOf,
  closedActivities,
  eventId,
  Gates,
  loopInput,
  processedAfter,
  runInput,
  runsOf,
  scheduledActivities,
  cannedResults,
  stubActivities,
  stubLoopConfig,
  uniqueLoopName,
  updateEvents,
  waitForHistory,
  withStubWorker,
} from '../helpers/workflow-stubs.js';

/**
 * The loop controller (workflows/loop.ts) on the suite's dev server with stub activities: its message handlers, its
 * validators, its input check, its continue-as-new and its cancellation cleanup, asserted on results, queries, update
 * replies and history, never on elapsed time.
 */

let temporal: TestTemporal;

beforeAll(async () => {
  quietTemporalLogs();
  temporal = await connectTestTemporal();
});
afterAll(async () => temporal?.close());

const injectionId = () => `injection-${randomUUID()}`;

/** The error a rejected update surfaces with (the validator's ApplicationFailure), as text. */
async function rejection(update: Promise<unknown>): Promise<string> {
  const err = await update.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'the update was accepted').toBeInstanceOf(WorkflowUpdateFailedError);
  const cause = (err as WorkflowUpdateFailedError).cause;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  return cause!.message;
}

describe('loop controller with stub activities', () => {
  test('a loop still in setup answers status, pause, stop and injectData; it holds at the train gate until resumed, then ends after the iteration', async () => {
    const gates = new Gates();
    // "A loop whose data store is slow": D_1 is not drawn until the test opens the gate.
    const stubs = stubActivities({
      createInitialVersion: async (input) => {
        await gates.wait('setup');
        return cannedResults.createInitialVersion(input);
      },
    });
    await withStubWorker(temporal, stubs, gates, async ({ taskQueue, track }) => {
      const loopName = uniqueLoopName('setup');
      const config = stubLoopConfig({ iterations: 3, probeLastIteration: false });
      const handle = await temporal.client.workflow.start<typeof loopWorkflow>('loopWorkflow', {
        taskQueue,
        workflowId: track(workflowIds.loop(loopName)),
        args: [loopInput(loopName, config, taskQueue)],
      });
      await stubs.called('createInitialVersion');

      expect(await handle.query(statusQuery)).toMatchObject({
        loopName,
        stage: 'setup',
        iteration: 1,
        iterations: 3,
        paused: false,
        stopAfterIteration: false,
      });
      expect(await handle.executeUpdate(pauseUpdate)).toMatchObject({ stage: 'setup', paused: true });
      const batch = injectionId();
      const first = await handle.executeUpdate(injectDataUpdate, {
        args: [{ stagingBatchId: batch, idempotencyKey: 'inject-once' }],
      });
      expect(first.pendingInjections).toEqual([batch]);
      expect(await handle.executeUpdate(stopAfterIterationUpdate)).toMatchObject({
        stage: 'setup',
        paused: true,
        stopAfterIteration: true,
      });
      // The same idempotency key again (a retried `looptool inject`): taken once, even now that this is the last iteration.
      const again = await handle.executeUpdate(injectDataUpdate, {
        args: [{ stagingBatchId: batch, idempotencyKey: 'inject-once' }],
      });
      expect(again.pendingInjections).toEqual([batch]);
      // New data now would never be used (no dataset is assembled after the last iteration): refused, not queued.
      expect(
        await rejection(
          handle.executeUpdate(injectDataUpdate, {
            args: [{ stagingBatchId: injectionId(), idempotencyKey: 'too-late' }],
          }),
        ),
      ).toMatch(/is in its last iteration \(1 of 3, stopping after it\): no dataset is assembled after it/);

      gates.open('setup');
      // Setup finishes; the loop has acted on it (a workflow task after the activity's completion) and holds.
      const held = await waitForHistory(handle, 'setup to finish', (events) => {
        const done = closedActivities(events).find((a) => a.scheduled.activity === 'createInitialVersion');
        return done !== undefined && processedAfter(events, done.eventId);
      });
      expect(scheduledActivities(held, 'trainIteration')).toEqual([]);
      expect(stubs.inputsOf('trainIteration')).toEqual([]);
      expect(await handle.query(statusQuery)).toMatchObject({
        paused: true,
        stopAfterIteration: true,
        pendingInjections: [batch],
      });

      expect(await handle.executeUpdate(resumeUpdate)).toMatchObject({ paused: false });
      const result: LoopResult = await handle.result();
      expect(result).toMatchObject({
        loopName,
        iterations: 1,
        finalDataset: `${loopName}-d@1`,
        baselineAccuracy: null,
      });
      expect(result.history).toEqual([
        expect.objectContaining({
          iteration: 1,
          dataset: `${loopName}-d@1`,
          checkpoint: checkpointOf(loopName, 1),
          heldOutAccuracy: 1,
        }),
      ]);
      expect(result.history[0]!.nextDataset).toBeUndefined();
      // A stop asked for before probing makes this the last iteration: no D_2, so no probe, judge or expand either.
      expect(result.history[0]!.probe).toBeUndefined();
      expect(stubs.inputsOf('planStageBatches')).toEqual([]);

      // Training was scheduled only after the resume was accepted; the pause was accepted while setup still ran.
      const events = (await handle.fetchHistory()).events ?? [];
      const updates = acceptedUpdates(events);
      // The refused injection never reached history.
      expect(updates.map((u) => u.name)).toEqual(['pause', 'injectData', 'stopAfterIteration', 'injectData', 'resume']);
      const resumedAt = updates.find((u) => u.name === 'resume')!.eventId;
      const trains = scheduledActivities(events, 'trainIteration');
      expect(trains).toHaveLength(1);
      expect(trains[0]!.eventId).toBeGreaterThan(resumedAt);
      const setupDone = closedActivities(events).find((a) => a.scheduled.activity === 'createInitialVersion')!;
      expect(updates[0]!.eventId).toBeLessThan(setupDone.eventId);

      // Stopped after iteration 1 of 3: no D_2 was assembled, so the injection is still waiting (never lost, never merged).
      expect(stubs.inputsOf('assembleNextVersion')).toEqual([]);
      expect(await handle.query(statusQuery)).toMatchObject({ stage: 'done', pendingInjections: [batch] });
    });
  });

  test('validators reject resume on a running loop and malformed injections, naming the problem, and leave no trace in history', async () => {
    const gates = new Gates();
    const stubs = stubActivities({
      registerLoop: async (input) => {
        await gates.wait('register');
        return { created: true, configHash: input.configHash };
      },
    });
    await withStubWorker(temporal, stubs, gates, async ({ taskQueue, track }) => {
      const loopName = uniqueLoopName('validators');
      const handle = await temporal.client.workflow.start<typeof loopWorkflow>('loopWorkflow', {
        taskQueue,
        workflowId: track(workflowIds.loop(loopName)),
        args: [loopInput(loopName, stubLoopConfig(), taskQueue)],
      });
      await stubs.called('registerLoop');
      const before = (await handle.fetchHistory()).events ?? [];

      expect(await rejection(handle.executeUpdate(resumeUpdate))).toMatch(new RegExp(`loop ${loopName} is not paused`));
      expect(
        await rejection(
          handle.executeUpdate(injectDataUpdate, {
            args: [{ stagingBatchId: 'import-not-an-injection', idempotencyKey: 'k' }],
          }),
        ),
      ).toMatch(/invalid injectData input: stagingBatchId: must name a batch staged by `looptool inject`/);
      expect(
        await rejection(
          handle.executeUpdate(injectDataUpdate, { args: [{ stagingBatchId: injectionId(), idempotencyKey: '' }] }),
        ),
      ).toMatch(/invalid injectData input: idempotencyKey:/);

      const after = (await handle.fetchHistory()).events ?? [];
      expect(updateEvents(after)).toEqual([]);
      expect(after.length).toBe(before.length);
      expect(await handle.query(statusQuery)).toMatchObject({ stage: 'setup', paused: false, pendingInjections: [] });

      // The rejections changed nothing: the loop runs its iteration and ends as if they had never been sent.
      gates.open('register');
      expect(await handle.result()).toMatchObject({ loopName, iterations: 1 });
      expect(updateEvents((await handle.fetchHistory()).events ?? [])).toEqual([]);
    });
  });

  test('invalid workflow input fails the workflow at once, non-retryably, naming the field', async () => {
    const stubs = stubActivities();
    await withStubWorker(temporal, stubs, new Gates(), async ({ taskQueue, track }) => {
      const config = stubLoopConfig();
      const good = loopInput(uniqueLoopName('input'), config, taskQueue);
      const failures = [
        {
          what: 'a loop name with capitals and spaces',
          args: { ...good, loopName: 'Not A Name' },
          field: /invalid loopWorkflow input: loopName: lowercase letters/,
        },
        {
          what: 'a config hash that is not hex',
          args: { ...good, configHash: 'z'.repeat(64) },
          field: /invalid loopWorkflow input: configHash:/,
        },
      ];
      for (const { what, args, field } of failures) {
        const handle = await temporal.client.workflow.start<typeof loopWorkflow>('loopWorkflow', {
          taskQueue,
          workflowId: track(`bad-input-${randomUUID()}`),
          args: [args],
        });
        const err = await handle.result().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err, what).toBeInstanceOf(WorkflowFailedError);
        const cause = (err as WorkflowFailedError).cause;
        expect(cause, what).toBeInstanceOf(ApplicationFailure);
        expect((cause as ApplicationFailure).message, what).toMatch(field);
        expect((cause as ApplicationFailure).type, what).toBe(ErrorType.ConfigInvalid);
        expect((cause as ApplicationFailure).nonRetryable, what).toBe(true);
        const events = (await handle.fetchHistory()).events ?? [];
        // One workflow task, no activity, then the failure: no retried task, nothing run on bad input.
        expect(
          events.filter((e) => e.workflowTaskStartedEventAttributes),
          what,
        ).toHaveLength(1);
        expect(scheduledActivities(events), what).toEqual([]);
        expect(events.at(-1)?.workflowExecutionFailedEventAttributes, what).toBeTruthy();
      }

      // The stage child checks its input the same way.
      const stage = await temporal.client.workflow.start<typeof stageWorkflow>('stageWorkflow', {
        taskQueue,
        workflowId: track(`bad-stage-${randomUUID()}`),
        args: [
          {
            stage: 'expand',
            loopName: good.loopName,
            iteration: 1,
            queues: good.queues!,
            batchSize: 10,
            concurrency: 2,
            batchesPerRun: 0,
            paused: false,
            timeouts: config.timeouts,
            settings: { generator: config.models.generator, seed: 7, k: 2, maxAttempts: 3 },
          } satisfies StageWorkflowInput,
        ],
      });
      const err = await stage.result().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      expect((err as WorkflowFailedError).cause?.message).toMatch(/invalid stageWorkflow input: batchesPerRun:/);
      expect(((err as WorkflowFailedError).cause as ApplicationFailure).nonRetryable).toBe(true);
      expect(stubs.calls).toEqual([]);
    });
  });

  test('a 2-iteration loop continues as new once, carrying dataset, checkpoint, history and taken injections', async () => {
    const gates = new Gates();
    const stubs = stubActivities({
      trainIteration: async (input) => {
        if (input.iteration === 1) await gates.wait('train-1');
        return {
          checkpoint: manifestOf(input.loopName, input.iteration, { reward: input.iteration }),
          externalId: `job-${input.iteration}`,
        };
      },
    });
    await withStubWorker(temporal, stubs, gates, async ({ taskQueue, track }) => {
      const loopName = uniqueLoopName('can');
      const workflowId = track(workflowIds.loop(loopName));
      const handle = await temporal.client.workflow.start<typeof loopWorkflow>('loopWorkflow', {
        taskQueue,
        workflowId,
        args: [loopInput(loopName, stubLoopConfig({ iterations: 2, probeLastIteration: false }), taskQueue)],
      });
      await stubs.called('trainIteration');
      const batch = injectionId();
      await handle.executeUpdate(injectDataUpdate, { args: [{ stagingBatchId: batch, idempotencyKey: 'k-1' }] });
      gates.open('train-1');
      const result = await handle.result();

      const d1 = { versionId: 11, ref: `${loopName}-d@1`, countsByRole: { seed: 10 } };
      const d2 = {
        versionId: 12,
        ref: `${loopName}-d@2`,
        countsByRole: { seed: 5, seed_new: 1, error_seed: 2, expanded: 2 },
      };
      expect(result).toMatchObject({ loopName, iterations: 2, finalDataset: d2.ref });
      expect(result.history.map((h) => [h.iteration, h.dataset, h.checkpoint, h.nextDataset])).toEqual([
        [1, d1.ref, checkpointOf(loopName, 1), d2.ref],
        [2, d2.ref, checkpointOf(loopName, 2), undefined],
      ]);

      const runs = await runsOf(temporal.client, workflowId, handle.firstExecutionRunId);
      expect(runs).toHaveLength(2);
      const carried = runs[0]!.events.at(-1)!.workflowExecutionContinuedAsNewEventAttributes;
      expect(carried).toBeTruthy();
      const secondInput = runInput(runs[1]!.events) as { state: LoopState; loopName: string };
      expect(secondInput.loopName).toBe(loopName);
      expect(secondInput.state).toMatchObject({
        iteration: 2,
        dataset: d2,
        seedVersionId: 1,
        budget: 10,
        checkpoint: manifestOf(loopName, 1, { reward: 1 }),
        paused: false,
        stopAfterIteration: false,
        pendingInjections: [],
        injectionKeys: ['k-1'],
      });
      expect(secondInput.state.history).toEqual([result.history[0]]);
      expect(runs[1]!.events.at(-1)?.workflowExecutionCompletedEventAttributes).toBeTruthy();

      // Setup ran once (not again in the second run); π_2 trained on D_2 from π_1; the injection went into D_2.
      expect(stubs.inputsOf('registerLoop')).toHaveLength(1);
      expect(stubs.inputsOf('createInitialVersion')).toHaveLength(1);
      expect(stubs.inputsOf('trainIteration').map((t) => [t.iteration, t.versionId, t.baseCheckpoint])).toEqual([
        [1, 11, null],
        [2, 12, manifestOf(loopName, 1, { reward: 1 })],
      ]);
      expect(stubs.inputsOf('assembleNextVersion')).toEqual([
        expect.objectContaining({
          iteration: 1,
          currentVersionId: 11,
          seedVersionId: 1,
          budget: 10,
          injectBatchIds: [batch],
        }),
      ]);
      expect(stubs.inputsOf('deployCheckpoint').map((d) => d.checkpoint.path)).toEqual([
        checkpointOf(loopName, 1),
        checkpointOf(loopName, 2),
      ]);
      // Nothing is assembled after the last iteration, so it neither probes, judges nor expands: π_2 is only scored.
      expect(stubs.inputsOf('planStageBatches').map((p) => [p.iteration, p.stage])).toEqual([
        [1, 'probe'],
        [1, 'judge'],
        [1, 'expand'],
      ]);
      // The seed pool's held-out slice is scored for the base model and every iteration's policy.
      expect(stubs.inputsOf('scoreHeldOut').map((h) => [h.iteration, h.policy.model])).toEqual([
        [0, 'policy'],
        [1, `${loopName}-iter-1`],
        [2, `${loopName}-iter-2`],
      ]);
      expect(result.history.map((h) => h.heldOutAccuracy)).toEqual([1, 1]);
    });
  });

  test('probeLastIteration keeps the last round probing, judging and expanding; heldOutFraction 0 scores no slice', async () => {
    const stubs = stubActivities({});
    await withStubWorker(temporal, stubs, new Gates(), async ({ taskQueue, track }) => {
      const loopName = uniqueLoopName('last');
      const config = stubLoopConfig({
        iterations: 1,
        probeLastIteration: true,
        data: { seedDataset: 'stub-seed', heldOutFraction: 0 },
      });
      const handle = await temporal.client.workflow.start<typeof loopWorkflow>('loopWorkflow', {
        taskQueue,
        workflowId: track(workflowIds.loop(loopName)),
        args: [loopInput(loopName, config, taskQueue)],
      });
      const result = await handle.result();
      expect(result.iterations).toBe(1);
      expect(stubs.inputsOf('planStageBatches').map((p) => [p.iteration, p.stage])).toEqual([
        [1, 'probe'],
        [1, 'judge'],
        [1, 'expand'],
      ]);
      expect(stubs.inputsOf('assembleNextVersion')).toEqual([]);
      expect(stubs.inputsOf('scoreHeldOut')).toEqual([]);
    });
  });

  test('cancelled during training: the trainer stub sees the cancellation and cancels its job before the loop closes, and the cleanup runs once', async () => {
    const stubs = stubActivities({
      // Written like the real trainIteration: poll with heartbeats; on cancellation cancel the job, then rethrow.
      trainIteration: async (input) => {
        const context = Context.current();
        try {
          for (let step = 0; ; step++) {
            context.heartbeat({ step });
            await sleep(100);
          }
        } catch (err) {
          if (err instanceof CancelledFailure) stubs.note(`job ${input.loopName}-iter-${input.iteration} cancelled`);
          throw err;
        }
      },
    });
    await withStubWorker(temporal, stubs, new Gates(), async ({ taskQueue, track }) => {
      const loopName = uniqueLoopName('cancel');
      // A short heartbeat timeout: heartbeats (and so the cancellation) go out every 0.8 × timeout. Not 2 s: the 0.2 ×
      // timeout margin must survive a loaded machine, or a heartbeat timeout would retry the activity instead.
      const config = stubLoopConfig({ timeouts: { batchHeartbeatSeconds: 30, trainHeartbeatSeconds: 4 } });
      const handle = await temporal.client.workflow.start<typeof loopWorkflow>('loopWorkflow', {
        taskQueue,
        workflowId: track(workflowIds.loop(loopName)),
        args: [loopInput(loopName, config, taskQueue)],
      });
      await stubs.called('trainIteration');
      expect(await handle.query(statusQuery)).toMatchObject({ stage: 'train' });
      await handle.cancel();
      const err = await handle.result().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);

      const events = (await handle.fetchHistory()).events ?? [];
      const train = scheduledActivities(events, 'trainIteration');
      expect(train).toHaveLength(1);
      const cancelRequested = events.find(
        (e) => Number(e.activityTaskCancelRequestedEventAttributes?.scheduledEventId) === train[0]!.eventId,
      );
      const trainClosed = closedActivities(events).find((a) => a.scheduled.eventId === train[0]!.eventId);
      const cleanups = scheduledActivities(events, 'cancelTrainingJob');
      const cleanupClosed = closedActivities(events).find((a) => a.scheduled.activity === 'cancelTrainingJob');
      const closed = events.at(-1)!;
      expect(cancelRequested).toBeDefined();
      expect(trainClosed?.outcome).toBe('canceled');
      expect(cleanups).toHaveLength(1);
      expect(cleanupClosed?.outcome).toBe('completed');
      expect(closed.workflowExecutionCanceledEventAttributes).toBeTruthy();
      // Cancel requested → the activity confirmed its cancellation → cleanup ran → only then the loop closed.
      expect(eventId(cancelRequested!)).toBeLessThan(trainClosed!.eventId);
      expect(trainClosed!.eventId).toBeLessThan(cleanups[0]!.eventId);
      expect(cleanupClosed!.eventId).toBeLessThan(eventId(closed));

      expect(stubs.inputsOf('cancelTrainingJob')).toEqual([{ loopName, iteration: 1, training: config.training }]);
      expect(stubs.timeline.filter((t) => !t.startsWith('call:') || t === 'call:cancelTrainingJob')).toEqual([
        `job ${loopName}-iter-1 cancelled`,
        'call:cancelTrainingJob',
      ]);
      expect(stubs.inputsOf('deployCheckpoint')).toEqual([]);
    });
  });
});
