import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { workflowIds } from '../../core/constants.js';
import type { StageWorkflowInput } from '../../core/inputs.js';
import { pauseUpdate, resumeUpdate, stageProgressQuery, statusQuery } from '../../core/messages.js';
import type { loopWorkflow } from '../../workflows/loop.js';
import type { stageWorkflow } from '../../workflows/stage.js';
import type { JudgeBatchResult } from '../../activities/judge.js';
import { connectTestTemporal, quietTemporalLogs, type TestTemporal } from '../helpers/temporal.js';
import {
  closedActivities,
  Gates,
  type HistoryEvent,
  loopInput,
  processedAfter,
  runInput,
  runsOf,
  scheduledActivities,
  signals,
  stubActivities,
  stubLoopConfig,
  uniqueLoopName,
  waitForHistory,
  withStubWorker,
} from '../helpers/workflow-stubs.js';

/**
 * The batched stage child (workflows/stage.ts) on the suite's dev server with stub activities: the loop's pause gate
 * reaching its batches, and its continue-as-new every `batchesPerRun` batches with totals folded in batch order.
 */

let temporal: TestTemporal;

beforeAll(async () => {
  quietTemporalLogs();
  temporal = await connectTestTemporal();
});
afterAll(async () => temporal?.close());

const batchNoOf = (input: unknown) => (input as { batch: { batchNo: number } }).batch.batchNo;

/** The batch numbers a run scheduled, and the order its batches finished in. */
function batchesOf(events: readonly HistoryEvent[], activity: string) {
  return {
    scheduled: scheduledActivities(events, activity).map((s) => batchNoOf(s.input)),
    finished: closedActivities(events)
      .filter((c) => c.scheduled.activity === activity && c.outcome === 'completed')
      .map((c) => batchNoOf(c.scheduled.input)),
  };
}

describe('stage workflow with stub activities', () => {
  test('a pause reaches the running stage: in-flight batches finish, no new batch starts until resume', async () => {
    const gates = new Gates();
    const stubs = stubActivities({
      planStageBatches: async (input) => (input.stage === 'probe' ? 4 : 1),
      probeBatch: async (input) => {
        const batchNo = batchNoOf(input);
        if (batchNo < 2) await gates.wait(`probe-${batchNo}`);
        return { probed: 10 + batchNo, match: 5, mismatch: 4 + batchNo, parseError: 1, tooLong: 0 };
      },
    });
    await withStubWorker(temporal, stubs, gates, async ({ taskQueue, track }) => {
      const loopName = uniqueLoopName('pause');
      const handle = await temporal.client.workflow.start<typeof loopWorkflow>('loopWorkflow', {
        taskQueue,
        workflowId: track(workflowIds.loop(loopName)),
        args: [loopInput(loopName, stubLoopConfig({ concurrency: { batches: 2 } }), taskQueue)],
      });
      const child = temporal.client.workflow.getHandle(workflowIds.stage(loopName, 1, 'probe'));
      await stubs.called('probeBatch', (i) => batchNoOf(i) === 0);
      await stubs.called('probeBatch', (i) => batchNoOf(i) === 1);

      expect(await handle.executeUpdate(pauseUpdate)).toMatchObject({ stage: 'probe', paused: true });
      // The pause update returns once the signal is in the child's history.
      expect(signals((await child.fetchHistory()).events ?? [], 'stagePaused').map((s) => s.args)).toEqual([[true]]);

      gates.open('probe-1');
      gates.open('probe-0');
      const held = await waitForHistory(child, 'both in-flight batches to finish and be seen', (events) => {
        const done = closedActivities(events).filter((c) => c.scheduled.activity === 'probeBatch');
        return done.length === 2 && processedAfter(events, Math.max(...done.map((d) => d.eventId)));
      });
      expect(batchesOf(held, 'probeBatch').scheduled).toEqual([0, 1]);
      expect(stubs.inputsOf('probeBatch').map(batchNoOf)).toEqual([0, 1]);
      expect(await child.query(stageProgressQuery)).toMatchObject({ done: 2, total: 4 });
      expect(await handle.query(statusQuery)).toMatchObject({ stage: 'probe', paused: true });

      expect(await handle.executeUpdate(resumeUpdate)).toMatchObject({ stage: 'probe', paused: false });
      const result = await handle.result();
      expect(result.history[0]!.probe).toEqual({
        probed: 10 + 11 + 12 + 13,
        match: 20,
        mismatch: 4 + 5 + 6 + 7,
        parseError: 4,
        tooLong: 0,
      });

      const events = (await child.fetchHistory()).events ?? [];
      const paused = signals(events, 'stagePaused');
      expect(paused.map((s) => s.args)).toEqual([[true], [false]]);
      const probes = scheduledActivities(events, 'probeBatch');
      expect(probes.filter((p) => p.eventId < paused[1]!.eventId).map((p) => batchNoOf(p.input))).toEqual([0, 1]);
      expect(
        probes
          .filter((p) => p.eventId > paused[1]!.eventId)
          .map((p) => batchNoOf(p.input))
          .sort((a, b) => a - b),
      ).toEqual([2, 3]);
      expect(
        stubs
          .inputsOf('probeBatch')
          .map(batchNoOf)
          .sort((a, b) => a - b),
      ).toEqual([0, 1, 2, 3]);
    });
  });

  test('a stage of 5 batches at 2 per run continues as new twice; every batch runs once; totals are summed in batch order', async () => {
    const results: JudgeBatchResult[] = [
      { judged: 3, byVerdict: { pred_wrong: 2, label_wrong: 1 }, relabeled: 1 },
      { judged: 2, byVerdict: { both_correct: 2 }, relabeled: 0 },
      { judged: 4, byVerdict: { label_wrong: 3, judge_failed: 1 }, relabeled: 3 },
      { judged: 1, byVerdict: { both_wrong: 1 }, relabeled: 0 },
      { judged: 5, byVerdict: { pred_wrong: 5 }, relabeled: 0 },
    ];
    const gates = new Gates();
    const stubs = stubActivities({
      planStageBatches: async () => results.length,
      judgeBatch: async (input) => {
        const batchNo = batchNoOf(input);
        if (batchNo < 4) await gates.wait(`judge-${batchNo}`);
        return results[batchNo]!;
      },
    });
    await withStubWorker(temporal, stubs, gates, async ({ taskQueue, track }) => {
      const loopName = uniqueLoopName('stage-can');
      const workflowId = track(workflowIds.stage(loopName, 1, 'judge'));
      const config = stubLoopConfig();
      const input: StageWorkflowInput = {
        stage: 'judge',
        loopName,
        iteration: 1,
        queues: { control: taskQueue, llm: taskQueue, gpu: taskQueue },
        batchSize: 10,
        concurrency: 2,
        batchesPerRun: 2,
        paused: false,
        timeouts: config.timeouts,
        settings: { judge: config.models.judge, seed: 7, votes: 3, voteTemperature: 0.7, parseRetries: 2 },
      };
      const handle = await temporal.client.workflow.start<typeof stageWorkflow>('stageWorkflow', {
        taskQueue,
        workflowId,
        args: [input],
      });
      const latest = temporal.client.workflow.getHandle(workflowId);
      // In each of the first two runs, the later batch finishes first.
      for (const [early, late] of [
        [0, 1],
        [2, 3],
      ] as const) {
        await stubs.called('judgeBatch', (i) => batchNoOf(i) === early);
        await stubs.called('judgeBatch', (i) => batchNoOf(i) === late);
        gates.open(`judge-${late}`);
        await waitForHistory(latest, `batch ${late} to finish`, (events) =>
          batchesOf(events, 'judgeBatch').finished.includes(late),
        );
        gates.open(`judge-${early}`);
      }
      const totals = await handle.result();

      // Summed per key; the verdicts flattened with their keys sorted, between `judged` and `relabeled`.
      expect(Object.entries(totals)).toEqual([
        ['judged', 15],
        ['both_correct', 2],
        ['both_wrong', 1],
        ['judge_failed', 1],
        ['label_wrong', 4],
        ['pred_wrong', 7],
        ['relabeled', 4],
      ]);

      const runs = await runsOf(temporal.client, workflowId, handle.firstExecutionRunId);
      expect(runs).toHaveLength(3);
      expect(runs.map((r) => r.events.filter((e) => e.workflowExecutionContinuedAsNewEventAttributes).length)).toEqual([
        1, 1, 0,
      ]);
      expect(runs[2]!.events.at(-1)?.workflowExecutionCompletedEventAttributes).toBeTruthy();
      expect(runs.map((r) => batchesOf(r.events, 'judgeBatch'))).toEqual([
        { scheduled: [0, 1], finished: [1, 0] },
        { scheduled: [2, 3], finished: [3, 2] },
        { scheduled: [4], finished: [4] },
      ]);
      // What each run carried: the next batch, and the totals so far in their nested shape.
      expect(runs.map((r) => (runInput(r.events) as StageWorkflowInput).resume)).toEqual([
        undefined,
        {
          nextBatch: 2,
          totals: { judged: 5, byVerdict: { pred_wrong: 2, label_wrong: 1, both_correct: 2 }, relabeled: 1 },
        },
        {
          nextBatch: 4,
          totals: {
            judged: 10,
            byVerdict: { pred_wrong: 2, label_wrong: 4, both_correct: 2, judge_failed: 1, both_wrong: 1 },
            relabeled: 4,
          },
        },
      ]);
      // Folded in batch order, not finishing order: batch 0's verdicts come first in the carried map although batch 1
      // finished first (finishing order would give both_correct first, and both_wrong before judge_failed in run 3).
      const verdictOrder = runs
        .slice(1)
        .map((r) =>
          Object.keys((runInput(r.events) as { resume: { totals: { byVerdict: object } } }).resume.totals.byVerdict),
        );
      expect(verdictOrder).toEqual([
        ['pred_wrong', 'label_wrong', 'both_correct'],
        ['pred_wrong', 'label_wrong', 'both_correct', 'judge_failed', 'both_wrong'],
      ]);
      expect(
        stubs
          .inputsOf('judgeBatch')
          .map(batchNoOf)
          .sort((a, b) => a - b),
      ).toEqual([0, 1, 2, 3, 4]);
    });
  });
});
