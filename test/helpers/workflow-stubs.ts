import { randomBytes } from 'node:crypto';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { Context } from '@temporalio/activity';
import { defaultPayloadConverter } from '@temporalio/common';
import type { Activities } from '../../activities/index.js';
import { LoopConfig, type LoopConfigInput } from '../../core/config.js';
import { contentHash } from '../../core/hash.js';
import type { LoopWorkflowInput } from '../../core/inputs.js';
import type { TestTemporal } from './temporal.js';

/**
 * The workflow test layer's tools: the real workflows run on the suite's Temporal dev server against STUB activities
 * that return canned results, record their calls, and block on gates the test opens. Nothing here waits on the wall
 * clock to decide an outcome; where a test must wait for the server (a history event), it polls with a generous
 * deadline that only bounds a broken run.
 */

export interface Deferred<T = void> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Named gates a stub waits on (`await gates.wait('probe-0')`) and the test opens (`gates.open('probe-0')`). */
export class Gates {
  private readonly gates = new Map<string, Deferred>();

  private gate(name: string): Deferred {
    let gate = this.gates.get(name);
    if (!gate) this.gates.set(name, (gate = deferred()));
    return gate;
  }

  /**
   * Waits for the gate; inside an activity, heartbeating meanwhile as real activities do (the `db` and batch groups
   * have heartbeat timeouts), so a gate held longer than those timeouts does not make Temporal retry the stub.
   */
  wait(name: string): Promise<void> {
    const promise = this.gate(name).promise;
    let context: Context;
    try {
      context = Context.current();
    } catch {
      return promise; // not called from an activity
    }
    const timer = setInterval(() => context.heartbeat(), 1_000);
    return promise.finally(() => clearInterval(timer));
  }

  open(name: string): void {
    this.gate(name).resolve();
  }

  /** Opens every gate, so no stub is left blocking a worker's shutdown when a test ends (or fails) early. */
  openAll(): void {
    for (const gate of this.gates.values()) gate.resolve();
  }
}

export type ActivityName = keyof Activities;
export type ActivityInput<K extends ActivityName> = Parameters<Activities[K]>[0];
export type ActivityResult<K extends ActivityName> = Awaited<ReturnType<Activities[K]>>;
export type StubImplementations = { [K in ActivityName]: (input: ActivityInput<K>) => Promise<ActivityResult<K>> };

/** The canned result of each activity: what the real one returns, shaped from its input. */
export const cannedResults: StubImplementations = {
  registerLoop: async (input) => ({ created: true, configHash: input.configHash }),
  createInitialVersion: async (input) => ({
    versionId: 11,
    ref: `${input.loopName}-d@1`,
    memberCount: 10,
    countsByRole: { seed: 10 },
    seedVersionId: 1,
    seedPoolSize: 16,
    heldOutSize: 1,
  }),
  assembleNextVersion: async (input) => ({
    versionId: 10 + input.iteration + 1,
    ref: `${input.loopName}-d@${input.iteration + 1}`,
    memberCount: 10,
    countsByRole: { seed: 5, seed_new: 1, error_seed: 2, expanded: 2 },
    skippedInjections: [],
  }),
  planStageBatches: async () => 1,
  decontaminateVersion: async (input) => ({
    indexId: 1,
    versionId: input.versionId,
    members: 10,
    toolNameOverlaps: 0,
    ngramOverlaps: 0,
    contaminated: 0,
    checkedNow: 10,
  }),
  checkAssemblyCandidates: async () => ({ indexId: 1, checked: 10, overlapping: 0 }),
  probeBatch: async () => ({ probed: 4, match: 2, mismatch: 1, parseError: 1, tooLong: 0 }),
  judgeBatch: async () => ({ judged: 1, byVerdict: { pred_wrong: 1 }, relabeled: 0 }),
  expandBatch: async () => ({ seeds: 1, byStatus: { accepted: 2 } }),
  evaluateFile: async () => [{ category: 'simple', correct: 3, total: 4 }],
  summarizeEvaluation: async () => ({ overall: 0.75, groups: { nonLive: 0.75 } }),
  evaluateWithHarness: async () => ({ overall: 0.5, groups: { nonLive: 0.6, live: 0.5, multiTurn: 0.4 } }),
  scoreHeldOut: async () => ({ total: 1, correct: 1, rejected: 0, accuracy: 1 }),
  trainIteration: async (input) => ({
    checkpoint: manifestOf(input.loopName, input.iteration),
    externalId: `job-${input.iteration}`,
  }),
  cancelTrainingJob: async () => ({ cancelled: false }),
  deployCheckpoint: async (input) => ({ model: `${input.loopName}-iter-${input.iteration}` }),
};

/** The checkpoint the default `trainIteration` stub returns for an iteration. */
export const checkpointOf = (loopName: string, iteration: number) => `ckpt://${loopName}/iter-${iteration}`;

/** The manifest a stub trainer reports for an iteration (its path is {@link checkpointOf}). */
export const manifestOf = (loopName: string, iteration: number, metrics: Record<string, number> = {}) => ({
  kind: 'lora' as const,
  path: checkpointOf(loopName, iteration),
  baseModel: 'policy',
  steps: iteration,
  metrics,
});

export interface StubCall {
  activity: ActivityName;
  input: unknown;
}

export interface StubActivities {
  /** What the worker registers: every activity of `createActivities`, stubbed. */
  activities: StubImplementations;
  /** Every call, in the order the stubs were entered. */
  calls: StubCall[];
  /** Calls and notes (`note(...)`) in the order they happened: `call:<activity>` or the note's text. */
  timeline: string[];
  note(text: string): void;
  inputsOf<K extends ActivityName>(activity: K): ActivityInput<K>[];
  /** Resolves with the input of the first call (made already or still to come) that matches. */
  called<K extends ActivityName>(
    activity: K,
    matches?: (input: ActivityInput<K>) => boolean,
  ): Promise<ActivityInput<K>>;
}

/** Stub activities: the canned results, with `overrides` where a test needs a gate or a different answer. */
export function stubActivities(overrides: Partial<StubImplementations> = {}): StubActivities {
  const calls: StubCall[] = [];
  const timeline: string[] = [];
  const waiters: { activity: ActivityName; matches: (input: unknown) => boolean; found: Deferred<unknown> }[] = [];
  const activities = {} as Record<ActivityName, (input: unknown) => Promise<unknown>>;
  for (const name of Object.keys(cannedResults) as ActivityName[]) {
    const implementation = (overrides[name] ?? cannedResults[name]) as (input: unknown) => Promise<unknown>;
    activities[name] = async (input: unknown) => {
      calls.push({ activity: name, input });
      timeline.push(`call:${name}`);
      for (const waiter of waiters.filter((w) => w.activity === name && w.matches(input))) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.found.resolve(input);
      }
      return implementation(input);
    };
  }
  const inputsOf = <K extends ActivityName>(activity: K) =>
    calls.filter((c) => c.activity === activity).map((c) => c.input as ActivityInput<K>);
  return {
    activities: activities as unknown as StubImplementations,
    calls,
    timeline,
    note: (text) => void timeline.push(text),
    inputsOf,
    called(activity, matches = () => true) {
      const earlier = inputsOf(activity).find(matches);
      if (earlier !== undefined) return Promise.resolve(earlier);
      const found = deferred<unknown>();
      waiters.push({ activity, matches: matches as (input: unknown) => boolean, found });
      return found.promise as Promise<ActivityInput<typeof activity>>;
    },
  };
}

/** A loop config for stubbed activities: nothing it names is ever contacted. */
export function stubLoopConfig(overrides: Partial<LoopConfigInput> = {}): LoopConfig {
  const model = (name: string) => ({ baseUrls: ['http://127.0.0.1:9/v1'], model: name });
  return LoopConfig.parse({
    seed: 7,
    data: { seedDataset: 'stub-seed' },
    models: { policy: model('policy'), judge: model('judge'), generator: model('generator') },
    training: { backend: 'sim', url: 'http://127.0.0.1:9' },
    iterations: 1,
    // Most stub tests watch the stages of their one iteration, which would otherwise be skipped as the last one.
    probeLastIteration: true,
    timeouts: { batchHeartbeatSeconds: 30, trainHeartbeatSeconds: 30 },
    ...overrides,
  });
}

export const uniqueLoopName = (prefix: string) => `${prefix}-${randomBytes(4).toString('hex')}`;

/** The loop's input with every activity on one task queue (the test worker's). */
export function loopInput(loopName: string, config: LoopConfig, taskQueue: string): LoopWorkflowInput {
  return {
    loopName,
    config,
    configHash: contentHash(config),
    queues: { control: taskQueue, llm: taskQueue, gpu: taskQueue },
  };
}

/**
 * Runs `body` with a worker on a task queue of its own, registering the stubs and the suite's workflow bundle. When the
 * body ends, every gate is opened and the workflows it names are terminated if still running, so a failing test can
 * neither hang the worker's shutdown nor leave work behind for another test.
 */
export async function withStubWorker<T>(
  temporal: TestTemporal,
  stubs: StubActivities,
  gates: Gates,
  body: (run: { taskQueue: string; track(workflowId: string): string }) => Promise<T>,
): Promise<T> {
  const taskQueue = temporal.uniqueTaskQueue('wf-stub');
  const worker = await temporal.createWorker({ taskQueue, activities: stubs.activities, withWorkflows: true });
  const tracked: string[] = [];
  const track = (workflowId: string) => (tracked.push(workflowId), workflowId);
  return worker.runUntil(async () => {
    try {
      return await body({ taskQueue, track });
    } finally {
      gates.openAll();
      for (const id of tracked)
        await temporal.client.workflow
          .getHandle(id)
          .terminate('test ended')
          .catch(() => {});
    }
  });
}

// ---- history ----------------------------------------------------------------------------------------------------

export type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;
export type HistoryEvent = NonNullable<History['events']>[number];

export const eventId = (event: HistoryEvent): number => Number(event.eventId);

/** Decodes a payload list (workflow input, activity input, signal arguments) with the default converter. */
export function decodePayloads(payloads: { payloads?: unknown[] | null } | null | undefined): unknown[] {
  return (payloads?.payloads ?? []).map((p) =>
    defaultPayloadConverter.fromPayload(p as Parameters<typeof defaultPayloadConverter.fromPayload>[0]),
  );
}

export interface ScheduledActivity {
  eventId: number;
  activity: string;
  input: unknown;
}

/** The activities a history scheduled, with their decoded first argument. */
export function scheduledActivities(events: readonly HistoryEvent[], activity?: string): ScheduledActivity[] {
  return events.flatMap((e) => {
    const attrs = e.activityTaskScheduledEventAttributes;
    if (!attrs || (activity && attrs.activityType?.name !== activity)) return [];
    return [{ eventId: eventId(e), activity: attrs.activityType?.name ?? '', input: decodePayloads(attrs.input)[0] }];
  });
}

/** Each finished activity (completed, failed, cancelled, timed out) with the scheduled event it belongs to. */
export function closedActivities(
  events: readonly HistoryEvent[],
): { eventId: number; scheduled: ScheduledActivity; outcome: 'completed' | 'failed' | 'canceled' | 'timedOut' }[] {
  const scheduled = new Map(scheduledActivities(events).map((s) => [s.eventId, s]));
  return events.flatMap((e) => {
    const outcomes = [
      ['completed', e.activityTaskCompletedEventAttributes],
      ['failed', e.activityTaskFailedEventAttributes],
      ['canceled', e.activityTaskCanceledEventAttributes],
      ['timedOut', e.activityTaskTimedOutEventAttributes],
    ] as const;
    const found = outcomes.find(([, attrs]) => attrs);
    if (!found) return [];
    const [outcome, attrs] = found;
    return [{ eventId: eventId(e), scheduled: scheduled.get(Number(attrs!.scheduledEventId))!, outcome }];
  });
}

/** The updates a history accepted, by name, with their accepted event's id. */
export function acceptedUpdates(events: readonly HistoryEvent[]): { eventId: number; name: string }[] {
  return events.flatMap((e) => {
    const attrs = e.workflowExecutionUpdateAcceptedEventAttributes;
    return attrs ? [{ eventId: eventId(e), name: attrs.acceptedRequest?.input?.name ?? '' }] : [];
  });
}

/** Events that mention updates at all (accepted, completed, admitted, rejected). */
export function updateEvents(events: readonly HistoryEvent[]): HistoryEvent[] {
  return events.filter(
    (e) =>
      e.workflowExecutionUpdateAcceptedEventAttributes ||
      e.workflowExecutionUpdateCompletedEventAttributes ||
      e.workflowExecutionUpdateAdmittedEventAttributes ||
      e.workflowExecutionUpdateRejectedEventAttributes,
  );
}

export function signals(events: readonly HistoryEvent[], name: string): { eventId: number; args: unknown[] }[] {
  return events.flatMap((e) => {
    const attrs = e.workflowExecutionSignaledEventAttributes;
    return attrs && attrs.signalName === name ? [{ eventId: eventId(e), args: decodePayloads(attrs.input) }] : [];
  });
}

/** Whether the workflow has run a workflow task after event `id`, i.e. it has seen that event and acted on it. */
export const processedAfter = (events: readonly HistoryEvent[], id: number): boolean =>
  events.some((e) => e.workflowTaskCompletedEventAttributes && eventId(e) > id);

/**
 * Polls a workflow's history until `ready` holds (server state has no push channel for tests). The deadline only
 * bounds a broken run; no assertion depends on how long this took.
 */
export async function waitForHistory(
  handle: Pick<WorkflowHandle, 'fetchHistory'>,
  what: string,
  ready: (events: HistoryEvent[]) => boolean,
  deadlineMs = 60_000,
): Promise<HistoryEvent[]> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    const events = (await handle.fetchHistory().catch(() => undefined))?.events ?? [];
    if (ready(events)) return events;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Every run of a workflow id in order, following its continue-as-new chain from the first run's id. */
export async function runsOf(
  client: Client,
  workflowId: string,
  firstRunId: string,
): Promise<{ runId: string; events: HistoryEvent[] }[]> {
  const runs: { runId: string; events: HistoryEvent[] }[] = [];
  for (let runId: string | undefined = firstRunId; runId;) {
    const events: HistoryEvent[] = (await client.workflow.getHandle(workflowId, runId).fetchHistory()).events ?? [];
    runs.push({ runId, events });
    runId = events.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
  }
  return runs;
}

/** The decoded first argument a run was started with. */
export const runInput = (events: readonly HistoryEvent[]): unknown =>
  decodePayloads(events[0]?.workflowExecutionStartedEventAttributes?.input)[0];
