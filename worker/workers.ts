import { fileURLToPath } from 'node:url';
import { type NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { taskQueues } from '../core/constants.js';
import { type ActivityDeps, createActivities } from '../activities/index.js';
import type { WorkerConfig } from './config.js';

export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

export interface CreateWorkersInput {
  connection: NativeConnection;
  namespace: string;
  deps: ActivityDeps;
  config: Pick<WorkerConfig, 'LOOPTOOL_TASK_QUEUES' | 'LOOPTOOL_LLM_CONCURRENCY' | 'LOOPTOOL_GPU_CONCURRENCY' | 'LOOPTOOL_SHUTDOWN_GRACE_SECONDS'> &
    Partial<Pick<WorkerConfig, 'LOOPTOOL_TASK_QUEUE_SUFFIX'>>;
  /** A prebuilt bundle (`bundleWorkflowCode`); without one the control worker bundles `workflows/` at start. */
  workflowBundle?: { code: string };
}

/**
 * One Temporal `Worker` per task queue this process serves. The control worker runs workflows and database
 * activities; the llm and gpu workers run the same activity set under their own concurrency caps, so a slow model
 * server never starves a training dispatch and vice versa. All share one connection and one database pool.
 */
export async function createWorkers(input: CreateWorkersInput): Promise<Worker[]> {
  const activities = createActivities(input.deps);
  const common: Partial<WorkerOptions> = {
    connection: input.connection,
    namespace: input.namespace,
    activities,
    // In-flight activities get this long to finish and flush their last heartbeat before a shutdown cancels them.
    shutdownGraceTime: `${input.config.LOOPTOOL_SHUTDOWN_GRACE_SECONDS}s`,
  };
  const queues = taskQueues(input.config.LOOPTOOL_TASK_QUEUE_SUFFIX ?? '');
  const workers: Worker[] = [];
  for (const queue of input.config.LOOPTOOL_TASK_QUEUES) {
    if (queue === 'control') {
      workers.push(
        await Worker.create({
          ...common,
          taskQueue: queues.control,
          ...(input.workflowBundle ? { workflowBundle: input.workflowBundle } : { workflowsPath: WORKFLOWS_PATH }),
        }),
      );
    } else {
      workers.push(
        await Worker.create({
          ...common,
          taskQueue: queues[queue],
          maxConcurrentActivityTaskExecutions:
            queue === 'llm' ? input.config.LOOPTOOL_LLM_CONCURRENCY : input.config.LOOPTOOL_GPU_CONCURRENCY,
        }),
      );
    }
  }
  return workers;
}

/** Runs every worker until all have shut down (after `shutdown()` on each, or a fatal error in one). */
export async function runWorkers(workers: Worker[]): Promise<void> {
  const runs = workers.map((worker) => worker.run());
  try {
    await Promise.all(runs);
  } catch (err) {
    for (const worker of workers) if (worker.getState() === 'RUNNING') worker.shutdown();
    await Promise.allSettled(runs);
    throw err;
  }
}
