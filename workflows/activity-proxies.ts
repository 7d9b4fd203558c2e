import { ActivityCancellationType, type ActivityOptions, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { TimeoutsConfig } from '../core/config.js';
import { NON_RETRYABLE_ERROR_TYPES } from '../core/errors.js';
import type { TaskQueues } from '../core/constants.js';

/**
 * Timeouts and retry policies per kind of work, for one loop's queues (training on `trainQueue`: its GPU pool's).
 * The attempt caps do not bound how long an outage may last: once an activity's attempts are spent on a transient
 * failure, the workflow's `Patience` shows what it waits for and calls it again (workflows/patience.ts). They bound
 * how long the loop takes to say so: about a minute of quick retries first.
 */
function groupOptions(queues: TaskQueues, timeouts: TimeoutsConfig, trainQueue: string) {
  const retry = (initialInterval: string, maximumInterval: string, maximumAttempts?: number) => ({
    initialInterval,
    maximumInterval,
    ...(maximumAttempts ? { maximumAttempts } : {}),
    nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
  });
  return {
    /**
     * Database work: dataset assembly over up to a million members, batch planning. It heartbeats every second
     * (activities/index.ts), so a worker that died in it is noticed in 30 s.
     */
    db: {
      taskQueue: queues.control,
      startToCloseTimeout: '10 minutes',
      heartbeatTimeout: '30 seconds',
      retry: retry('1 second', '30 seconds', 6),
    },
    /**
     * Decontamination: checks up to millions of samples against the evaluation sets, page by page, stored as it goes
     * (a retry continues where the last attempt stopped). It heartbeats every second.
     */
    decontam: {
      taskQueue: queues.control,
      startToCloseTimeout: '2 hours',
      heartbeatTimeout: '30 seconds',
      retry: retry('1 second', '30 seconds', 6),
    },
    /** Model-calling batches. They heartbeat every page, so a dead worker is noticed within the heartbeat timeout. */
    llm: {
      taskQueue: queues.llm,
      startToCloseTimeout: '2 hours',
      heartbeatTimeout: `${timeouts.batchHeartbeatSeconds} seconds`,
      retry: retry('2 seconds', '1 minute', 6),
    },
    /**
     * BFCL's own harness over the held-out categories (`evaluation.backend: bfcl-eval`): one activity for the whole
     * run, hours against a real model, heartbeating the questions answered; a retry resumes BFCL's result files.
     */
    harness: {
      taskQueue: queues.llm,
      startToCloseTimeout: '24 hours',
      heartbeatTimeout: `${timeouts.batchHeartbeatSeconds} seconds`,
      retry: retry('2 seconds', '1 minute', 6),
    },
    /**
     * GRPO training: days long, polled with heartbeats; a retry re-attaches to the job by its key. The heartbeat
     * timeout catches trainers that hang without an error. A cancelled loop waits until the activity has cancelled
     * the job on its backend, so no GPU job outlives its loop.
     */
    train: {
      taskQueue: trainQueue,
      startToCloseTimeout: '7 days',
      heartbeatTimeout: `${timeouts.trainHeartbeatSeconds} seconds`,
      retry: retry('5 seconds', '5 minutes', 5),
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    },
    /** Loading a checkpoint into the policy servers; a cancelled loop waits for the load to stop. */
    deploy: {
      taskQueue: queues.gpu,
      // Restarting several policy servers one after another may take `deploy.readyTimeoutSeconds` each; the heartbeat
      // timeout, not this, is what notices a dead worker. Deployment heartbeats at least every 30 s (its longest single
      // request; restarts and readiness polls beat more often).
      startToCloseTimeout: '6 hours',
      heartbeatTimeout: '90 seconds',
      retry: retry('5 seconds', '1 minute', 6),
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    },
    /** Cleanup after a cancellation (runs in a non-cancellable scope): short, retried until it gets through. */
    cleanup: { taskQueue: trainQueue, startToCloseTimeout: '5 minutes', retry: retry('1 second', '30 seconds') },
  } satisfies Record<string, ActivityOptions>;
}

/**
 * The activity groups of one loop, on its queues. `summarized(group, text)` gives the same group with a one-line
 * summary that the UI shows on the activity ("probe batch 3/12 of D_2").
 */
export function loopActivities(queues: TaskQueues, timeouts: TimeoutsConfig, trainQueue: string = queues.gpu) {
  const options = groupOptions(queues, timeouts, trainQueue);
  return {
    db: proxyActivities<Activities>(options.db),
    llm: proxyActivities<Activities>(options.llm),
    cleanup: proxyActivities<Activities>(options.cleanup),
    decontam: proxyActivities<Activities>(options.decontam),
    summarized: (group: keyof typeof options, summary: string) =>
      proxyActivities<Activities>({ ...options[group], summary }),
  };
}

export type LoopActivities = ReturnType<typeof loopActivities>;
