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
import { resumeFromHistory, runEnding, type RunEnding } from './loop-resume.js';

/** Workflow statuses of a loop whose latest run ended without completing: `loop resume` continues these. */
const ENDED_UNFINISHED = new Set(['FAILED', 'TERMINATED', 'TIMED_OUT', 'CANCELLED']);

/** The typed client API the CLI is built on: start a loop, watch it, steer it. */
export class LoopClient {
  constructor(readonly client: Client) {}

  /**
   * Connects to the Temporal frontend at `address`. A server that does not answer fails within `connectTimeoutMs`
   * (the SDK's own default waits 10 s and then says only "Failed to connect before the deadline") with the address,
   * the variable that sets it and what to do about it.
   */
  static async connect(
    address: string,
    namespace = 'default',
    options: { connectTimeoutMs?: number } = {},
  ): Promise<LoopClient & { close(): Promise<void> }> {
    let connection: Connection;
    try {
      connection = await Connection.connect({ address, connectTimeout: options.connectTimeoutMs ?? 5_000 });
    } catch (err) {
      const cause = err instanceof Error ? err.message : String(err);
      // The cause's text is in the message; as a `cause` the CLI would print it a second time.
      // eslint-disable-next-line preserve-caught-error
      throw new Error(
        `cannot reach Temporal at ${address} (TEMPORAL_ADDRESS): ${cause}. Start the local services with \`npm run services\` or point TEMPORAL_ADDRESS at your server`,
      );
    }
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

  /** How the loop's latest run ended, when it ended without completing (failed, terminated, timed out, cancelled). */
  async ending(loopName: string): Promise<RunEnding | undefined> {
    const description = await this.handle(loopName).describe();
    if (!ENDED_UNFINISHED.has(description.status.name)) return undefined;
    return this.endingOf(description.workflowId, description.runId);
  }

  /** How one run ended, from its last history event (read backwards, so just that one is fetched). */
  private async endingOf(workflowId: string, runId: string): Promise<RunEnding | undefined> {
    const { history } = await this.client.workflowService.getWorkflowExecutionHistoryReverse({
      namespace: this.client.options.namespace,
      execution: { workflowId, runId },
      maximumPageSize: 1,
    });
    return runEnding(history?.events?.[0] ?? undefined);
  }

  /**
   * Continues a loop whose latest run failed, was terminated, timed out or was cancelled: a new run of `loop/<name>`
   * that starts the interrupted iteration again from the state that run started with, taking over what it was told
   * afterwards and the checkpoint it trained (see client/loop-resume.ts). The stages it had finished find their rows
   * stored and do not call a model again.
   */
  async resumeEnded(loopName: string): Promise<{ runId: string; iteration: number; ending: RunEnding }> {
    const workflowId = workflowIds.loop(loopName);
    const ended = this.handle(loopName);
    const description = await ended.describe();
    if (!ENDED_UNFINISHED.has(description.status.name))
      throw new Error(
        `loop ${loopName} is ${description.status.name.toLowerCase()}: only a loop that failed, was terminated, timed out or was cancelled can be resumed`,
      );
    const events = (await this.client.workflow.getHandle(workflowId, description.runId).fetchHistory()).events ?? [];
    const { input, resume, ending } = resumeFromHistory(description.runId, events);
    const iteration = input.state?.iteration ?? 1;
    const handle = await this.client.workflow.start<typeof loopWorkflow>('loopWorkflow', {
      workflowId,
      taskQueue: (input.queues ?? taskQueues()).control,
      args: [{ ...input, resume }],
      // Only this path reuses a loop's id: `start` refuses, so a loop is never restarted from scratch by accident.
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
      typedSearchAttributes: [
        { key: SEARCH_ATTRIBUTES.loopName, value: loopName },
        { key: SEARCH_ATTRIBUTES.loopIteration, value: iteration },
        { key: SEARCH_ATTRIBUTES.loopStage, value: input.state ? 'train' : 'setup' },
        { key: SEARCH_ATTRIBUTES.loopPaused, value: resume.paused },
      ],
      memo: { configHash: input.configHash, resumedFrom: description.runId },
      staticSummary: `LoopTool loop ${loopName}: ${input.config.iterations} iterations (resumed at iteration ${iteration})`,
    });
    return { runId: handle.firstExecutionRunId, iteration, ending };
  }

  /** Terminates the loop's running workflow with a reason (its training job is left to `loop resume` to re-attach). */
  async terminate(loopName: string, reason: string): Promise<void> {
    await this.handle(loopName).terminate(reason);
  }

  /** Loops known to the server, newest first, found by their LoopName search attribute. */
  async list(limit = 50): Promise<
    {
      loopName: string;
      status: string;
      iteration?: number;
      stage?: string;
      accuracy?: number;
      waitingFor?: string;
      /** How the loop ended, when it did not complete. */
      ending?: RunEnding | undefined;
      startTime: Date;
    }[]
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
        ...(execution.typedSearchAttributes.get(SEARCH_ATTRIBUTES.loopWaitingFor)
          ? { waitingFor: String(execution.typedSearchAttributes.get(SEARCH_ATTRIBUTES.loopWaitingFor)) }
          : {}),
        ...(ENDED_UNFINISHED.has(execution.status.name)
          ? { ending: await this.endingOf(execution.workflowId, execution.runId).catch(() => undefined) }
          : {}),
        startTime: execution.startTime,
      });
      if (loops.length >= limit) break;
    }
    return loops;
  }
}
