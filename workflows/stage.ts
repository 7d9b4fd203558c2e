import { condition, continueAsNew, getExternalWorkflowHandle, setHandler, workflowInfo } from '@temporalio/workflow';
import { parseInput, StageWorkflowInput, type StageTotals } from '../core/inputs.js';
import {
  stagePausedSignal,
  stageProgressQuery,
  type StageProgress,
  stageWaitingSignal,
  type Waiting,
} from '../core/messages.js';
import { loopActivities } from './activity-proxies.js';
import { Patience } from './patience.js';

/**
 * The stage's totals: batch results summed in batch order, keeping their shape (a nested map such as `byVerdict`
 * summed per key), then flattened with each map's keys sorted. So the totals, and the order people read them in, are
 * the same whichever batch happened to finish first.
 */
function stageTotals(
  carried: StageTotals,
  results: readonly object[],
): { totals: StageTotals; flat: Record<string, number> } {
  // A copy (the sandbox has no structuredClone): the carried totals stay as the run received them.
  const totals: StageTotals = JSON.parse(JSON.stringify(carried)) as StageTotals;
  for (const result of results) {
    for (const [key, value] of Object.entries(result)) {
      if (typeof value === 'number') totals[key] = ((totals[key] as number | undefined) ?? 0) + value;
      else if (value && typeof value === 'object') {
        const map = (totals[key] ??= {}) as Record<string, number>;
        for (const [inner, n] of Object.entries(value as Record<string, number>)) map[inner] = (map[inner] ?? 0) + n;
      }
    }
  }
  const flat: Record<string, number> = {};
  for (const [key, value] of Object.entries(totals)) {
    if (typeof value === 'number') flat[key] = value;
    else for (const inner of Object.keys(value).sort()) flat[inner] = value[inner]!;
  }
  return { totals, flat };
}

/**
 * One batched stage of one iteration (probe, judge or expand), as a child workflow with id
 * `loop/<name>/iter-<j>/<stage>`: plans seq-range batches once (stored in PostgreSQL), then runs one activity per
 * batch with at most `concurrency` in flight, holding new batches while paused. Every `batchesPerRun` batches it
 * continues as new, carrying only the next batch number and the counts, so a million-sample stage stays small in
 * history.
 */
export async function stageWorkflow(rawInput: StageWorkflowInput): Promise<Record<string, number>> {
  const input = parseInput(StageWorkflowInput, rawInput, 'stageWorkflow');
  let paused = input.paused;
  const carried: StageTotals = input.resume?.totals ?? {};
  const progress = { done: input.resume?.nextBatch ?? 0, total: 0 };
  // Batch results by number: the stage's totals are folded in batch order at the end, so they (and the order of their
  // keys) do not depend on which batch happened to finish first.
  const results = new Map<number, object>();
  // What the stage has counted so far, derived when asked: the carried totals plus this run's finished batches.
  // Batches wait out outages; the loop that started this stage is told what they wait for, so its status, details
  // and search attributes show it (one signal per change, not per retry round's failure).
  const parent = workflowInfo().parent;
  const tellParent = (waiting: Waiting[]) => {
    if (parent)
      void getExternalWorkflowHandle(parent.workflowId)
        .signal(stageWaitingSignal, waiting)
        .catch(() => {});
  };
  const patience = new Patience(input.timeouts.outageBackoffMaxSeconds, tellParent);
  setHandler(stageProgressQuery, (): StageProgress => ({
    ...progress,
    counts: stageTotals(carried, [...results.values()]).flat,
    waiting: patience.list(),
  }));
  setHandler(stagePausedSignal, (value) => {
    paused = value;
  });

  const { db, summarized } = loopActivities(input.queues, input.timeouts);
  progress.total = await patience.call(`plan ${input.stage} batches`, () =>
    db.planStageBatches({
      loopName: input.loopName,
      iteration: input.iteration,
      stage: input.stage,
      size: input.batchSize,
      ...(input.stage === 'probe' ? { versionId: input.versionId } : {}),
    }),
  );
  const key = { loopName: input.loopName, iteration: input.iteration };
  const runBatch = (batchNo: number): Promise<object> => {
    const batch = { batchNo };
    const what = `${input.stage} batch ${batchNo + 1}/${progress.total}, iteration ${input.iteration}`;
    const llm = summarized('llm', what);
    return patience.call<object>(what, () => {
      switch (input.stage) {
        case 'probe':
          return llm.probeBatch({ ...input.settings, ...key, batch });
        case 'judge':
          return llm.judgeBatch({ ...input.settings, ...key, batch });
        case 'expand':
          return llm.expandBatch({ ...input.settings, ...key, batch });
      }
    });
  };

  const first = input.resume?.nextBatch ?? 0;
  const last = Math.min(progress.total, first + input.batchesPerRun);
  let inFlight = 0;
  let failure: unknown;
  for (let batchNo = first; batchNo < last && failure === undefined; batchNo++) {
    await condition(() => (!paused && inFlight < input.concurrency) || failure !== undefined);
    if (failure !== undefined) break;
    inFlight++;
    runBatch(batchNo).then(
      (result) => {
        results.set(batchNo, result);
        progress.done++;
        inFlight--;
      },
      (err: unknown) => {
        failure ??= err;
        inFlight--;
      },
    );
  }
  await condition(() => inFlight === 0);
  if (failure !== undefined) throw failure;
  const { totals, flat } = stageTotals(
    carried,
    Array.from({ length: last - first }, (_, i) => results.get(first + i)!),
  );
  if (last < progress.total) {
    await continueAsNew<typeof stageWorkflow>({ ...rawInput, paused, resume: { nextBatch: last, totals } });
  }
  return flat;
}
