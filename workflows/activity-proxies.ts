import { type ActivityOptions, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { NON_RETRYABLE_ERROR_TYPES } from '../core/errors.js';
import { taskQueues } from '../core/constants.js';

/** The task queues a loop's activities run on; tests override them to keep parallel test files apart. */
export type LoopQueues = ReturnType<typeof taskQueues>;

export const DEFAULT_QUEUES: LoopQueues = taskQueues();

/**
 * Short database activities on the control queue. Retries are unbounded in count but capped in interval: a database
 * that is briefly down (restart, failover) must not fail a week-long loop.
 */
export const dbActivities = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES },
});

/** Timeouts and retry caps per kind of work, for one loop's queues. */
function groupOptions(queues: LoopQueues, heartbeats: { batchSeconds: number; trainSeconds: number }) {
  return {
    /** Database work: dataset assembly over up to a million members, batch planning. */
    db: {
      taskQueue: queues.control,
      startToCloseTimeout: '10 minutes',
      retry: { initialInterval: '1 second', maximumInterval: '30 seconds', nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES },
    },
    /**
     * Model-calling batches. They heartbeat every page, so a dead worker is noticed within the heartbeat timeout; the
     * attempt cap bounds what a misbehaving model server can cost.
     */
    llm: {
      taskQueue: queues.llm,
      startToCloseTimeout: '2 hours',
      heartbeatTimeout: `${heartbeats.batchSeconds} seconds`,
      retry: { initialInterval: '2 seconds', maximumInterval: '1 minute', maximumAttempts: 10, nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES },
    },
    /**
     * GRPO training: days long, polled with heartbeats; a retry re-attaches to the job by its key. The heartbeat
     * timeout catches trainers that hang without an error.
     */
    train: {
      taskQueue: queues.gpu,
      startToCloseTimeout: '7 days',
      heartbeatTimeout: `${heartbeats.trainSeconds} seconds`,
      retry: { initialInterval: '5 seconds', maximumInterval: '5 minutes', maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES },
    },
    deploy: {
      taskQueue: queues.gpu,
      startToCloseTimeout: '30 minutes',
      heartbeatTimeout: '5 minutes',
      retry: { initialInterval: '5 seconds', maximumInterval: '1 minute', maximumAttempts: 20, nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES },
    },
  } satisfies Record<string, ActivityOptions>;
}

/**
 * The activity groups of one loop, on its queues. `summarized(group, text)` gives the same group with a one-line
 * summary that the UI shows on the activity ("probe batch 3/12 of D_2").
 */
export function loopActivities(queues: LoopQueues, heartbeats: { batchSeconds: number; trainSeconds: number } = { batchSeconds: 120, trainSeconds: 60 }) {
  const options = groupOptions(queues, heartbeats);
  return {
    db: proxyActivities<Activities>(options.db),
    llm: proxyActivities<Activities>(options.llm),
    train: proxyActivities<Activities>(options.train),
    deploy: proxyActivities<Activities>(options.deploy),
    summarized: (group: keyof typeof options, summary: string) => proxyActivities<Activities>({ ...options[group], summary }),
  };
}
