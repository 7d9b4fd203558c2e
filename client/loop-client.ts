import { randomUUID } from 'node:crypto';
import {
  Client,
  Connection,
  WorkflowExecutionAlreadyStartedError,
  WorkflowIdReusePolicy,
  WorkflowNotFoundError,
} from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import type { LoopConfig } from '../core/config.js';
import type { TrainingProgress } from '../core/training.js';
import { SEARCH_ATTRIBUTES, type TaskQueues, taskQueues, workflowIds } from '../core/constants.js';
import {
  injectDataUpdate,
  type LoopStatus,
  pauseUpdate,
  resumeUpdate,
  stageProgressQuery,
  type StageProgress,
  statusQuery,
  stopAfterIterationUpdate,
} from '../core/messages.js';
import type { loopWorkflow } from '../workflows/index.js';

/** The typed client API the CLI is built on: start a loop, watch it, steer it. */
export class LoopClient {
  constructor(readonly client: Client) {}

  static async connect(address: string, namespace = 'default'): Promise<LoopClient & { close(): Promise<void> }> {
    const connection = await Connection.connect({ address });
    const loops = new LoopClient(new Client({ connection, namespace }));
    return Object.assign(loops, { close: () => connection.close() });
  }

  /**
   * Starts `loop/<name>`. Idempotent: a loop that exists (running or finished) is not started again; the result says
   * which it was. Loop names are never reused, since a loop's datasets are named after it.
   */
  async start(input: {
    loopName: string;
    config: LoopConfig;
    configHash: string;
    queues?: TaskQueues;
  }): Promise<{ started: boolean; workflowId: string; runId?: string; status?: string }> {
    const workflowId = workflowIds.loop(input.loopName);
    try {
      const handle = await this.client.workflow.start<typeof loopWorkflow>('loopWorkflow', {
        workflowId,
        taskQueue: (input.queues ?? taskQueues()).control,
        args: [
          {
            loopName: input.loopName,
            config: input.config,
            configHash: input.configHash,
            ...(input.queues ? { queues: input.queues } : {}),
          },
        ],
        workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
        typedSearchAttributes: [
          { key: SEARCH_ATTRIBUTES.loopName, value: input.loopName },
          { key: SEARCH_ATTRIBUTES.loopIteration, value: 1 },
          { key: SEARCH_ATTRIBUTES.loopStage, value: 'setup' },
          { key: SEARCH_ATTRIBUTES.loopPaused, value: false },
        ],
        memo: { configHash: input.configHash },
        staticSummary: `LoopTool loop ${input.loopName}: ${input.config.iterations} iterations`,
      });
      return { started: true, workflowId, runId: handle.firstExecutionRunId };
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) {
        const description = await this.client.workflow.getHandle(workflowId).describe();
        return { started: false, workflowId, status: description.status.name };
      }
      throw err;
    }
  }

  handle(loopName: string) {
    return this.client.workflow.getHandle<typeof loopWorkflow>(workflowIds.loop(loopName));
  }

  /**
   * The loop's status, plus the live progress of the stage child that is running (if any) and, while it trains, the
   * training activity's last heartbeat (engine, job id, state, step, log tail; see activities/train.ts).
   */
  async status(
    loopName: string,
  ): Promise<LoopStatus & { workflowStatus: string; running?: StageProgress; training?: TrainingProgress }> {
    const handle = this.handle(loopName);
    const description = await handle.describe();
    const status = await handle.query(statusQuery);
    let running: StageProgress | undefined;
    if (['probe', 'judge', 'expand'].includes(status.stage) && description.status.name === 'RUNNING') {
      running = await this.client.workflow
        .getHandle(workflowIds.stage(loopName, status.iteration, status.stage))
        .query(stageProgressQuery)
        .catch((err: unknown) => (err instanceof WorkflowNotFoundError ? undefined : Promise.reject(err)));
    }
    const trainPayload = description.raw.pendingActivities?.find(
      (activity) => activity.activityType?.name === 'trainIteration',
    )?.heartbeatDetails?.payloads?.[0];
    const training = trainPayload
      ? (defaultPayloadConverter.fromPayload(trainPayload as Payload) as TrainingProgress)
      : undefined;
    return {
      ...status,
      workflowStatus: description.status.name,
      ...(running ? { running } : {}),
      ...(training ? { training } : {}),
    };
  }

  pause(loopName: string): Promise<LoopStatus> {
    return this.handle(loopName).executeUpdate(pauseUpdate);
  }

  resume(loopName: string): Promise<LoopStatus> {
    return this.handle(loopName).executeUpdate(resumeUpdate);
  }

  stopAfterIteration(loopName: string): Promise<LoopStatus> {
    return this.handle(loopName).executeUpdate(stopAfterIterationUpdate);
  }

  inject(loopName: string, stagingBatchId: string, idempotencyKey: string = randomUUID()): Promise<LoopStatus> {
    return this.handle(loopName).executeUpdate(injectDataUpdate, { args: [{ stagingBatchId, idempotencyKey }] });
  }

  /** Loops known to the server, newest first, found by their LoopName search attribute. */
  async list(
    limit = 50,
  ): Promise<
    { loopName: string; status: string; iteration?: number; stage?: string; accuracy?: number; startTime: Date }[]
  > {
    const loops = [];
    for await (const execution of this.client.workflow.list({ query: `WorkflowType = 'loopWorkflow'` })) {
      loops.push({
        loopName: String(
          execution.typedSearchAttributes.get(SEARCH_ATTRIBUTES.loopName) ??
            execution.workflowId.replace(/^loop\//, ''),
        ),
        status: execution.status.name,
        ...(execution.typedSearchAttributes.get(SEARCH_ATTRIBUTES.loopIteration) !== undefined
          ? { iteration: Number(execution.typedSearchAttributes.get(SEARCH_ATTRIBUTES.loopIteration)) }
          : {}),
        ...(execution.typedSearchAttributes.get(SEARCH_ATTRIBUTES.loopStage) !== undefined
          ? { stage: String(execution.typedSearchAttributes.get(SEARCH_ATTRIBUTES.loopStage)) }
          : {}),
        ...(execution.typedSearchAttributes.get(SEARCH_ATTRIBUTES.loopAccuracy) !== undefined
          ? { accuracy: Number(execution.typedSearchAttributes.get(SEARCH_ATTRIBUTES.loopAccuracy)) }
          : {}),
        startTime: execution.startTime,
      });
      if (loops.length >= limit) break;
    }
    return loops;
  }
}
