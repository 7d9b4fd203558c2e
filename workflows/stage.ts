import { condition, continueAsNew, setHandler } from '@temporalio/workflow';
import type { ExpandBatchInput } from '../activities/expand.js';
import type { JudgeBatchInput } from '../activities/judge.js';
import type { ProbeBatchInput } from '../activities/probe.js';
import { stagePausedSignal, stageProgressQuery, type StageProgress } from '../core/messages.js';
import { type LoopQueues, loopActivities } from './activity-proxies.js';

type Settings<T> = Omit<T, 'batch' | 'loopName' | 'iteration'>;

export type StageWorkflowInput = {
  loopName: string;
  iteration: number;
  queues: LoopQueues;
  /** Rows per batch (one activity each). */
  batchSize: number;
  /** Batches in flight at once. */
  concurrency: number;
  paused: boolean;
  /** Heartbeat timeout of each batch activity (see LoopConfig.timeouts). */
  batchHeartbeatSeconds?: number;
  /** Where a continued run picks up, and what it had counted. */
  resume?: { nextBatch: number; counts: Record<string, number> };
} & (
  | { stage: 'probe'; versionId: number; settings: Settings<ProbeBatchInput> }
  | { stage: 'judge'; settings: Settings<JudgeBatchInput> }
  | { stage: 'expand'; settings: Settings<ExpandBatchInput> }
);

/** Batches one run schedules before it continues as new, keeping each run's history far below Temporal's limits. */
const BATCHES_PER_RUN = 500;

/** Adds a batch result's numbers (flattening `byVerdict`/`byStatus` maps) into the running totals. */
function addCounts(totals: Record<string, number>, result: object): void {
  for (const [key, value] of Object.entries(result)) {
    if (typeof value === 'number') totals[key] = (totals[key] ?? 0) + value;
    else if (value && typeof value === 'object') addCounts(totals, value);
  }
}

/**
 * One batched stage of one iteration (probe, judge or expand), as a child workflow with id
 * `loop/<name>/iter-<j>/<stage>`: plans seq-range batches once (stored in PostgreSQL), then runs one activity per
 * batch with at most `concurrency` in flight, holding new batches while paused. Every few hundred batches it continues
 * as new, carrying only the next batch number and the counts, so a million-sample stage stays small in history.
 */
export async function stageWorkflow(input: StageWorkflowInput): Promise<Record<string, number>> {
  const { db, summarized } = loopActivities(input.queues, { batchSeconds: input.batchHeartbeatSeconds ?? 120, trainSeconds: 60 });
  let paused = input.paused;
  const counts: Record<string, number> = { ...(input.resume?.counts ?? {}) };
  const progress: StageProgress = { done: input.resume?.nextBatch ?? 0, total: 0, counts };
  setHandler(stagePausedSignal, (value) => {
    paused = value;
  });
  setHandler(stageProgressQuery, () => progress);

  progress.total = await db.planStageBatches({
    loopName: input.loopName,
    iteration: input.iteration,
    stage: input.stage,
    size: input.batchSize,
    ...(input.stage === 'probe' ? { versionId: input.versionId } : {}),
  });
  const base = { loopName: input.loopName, iteration: input.iteration };
  const runBatch = (batchNo: number): Promise<object> => {
    const batch = { batchNo };
    const llm = summarized('llm', `${input.stage} batch ${batchNo + 1}/${progress.total}, iteration ${input.iteration}`);
    switch (input.stage) {
      case 'probe':
        return llm.probeBatch({ ...input.settings, ...base, batch });
      case 'judge':
        return llm.judgeBatch({ ...input.settings, ...base, batch });
      case 'expand':
        return llm.expandBatch({ ...input.settings, ...base, batch });
    }
  };

  const first = input.resume?.nextBatch ?? 0;
  const last = Math.min(progress.total, first + BATCHES_PER_RUN);
  let inFlight = 0;
  let failure: unknown;
  for (let batchNo = first; batchNo < last && failure === undefined; batchNo++) {
    await condition(() => (!paused && inFlight < input.concurrency) || failure !== undefined);
    if (failure !== undefined) break;
    inFlight++;
    runBatch(batchNo).then(
      (result) => {
        addCounts(counts, result);
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
  if (last < progress.total) {
    await continueAsNew<typeof stageWorkflow>({ ...input, paused, resume: { nextBatch: last, counts } });
  }
  return counts;
}
