import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { ErrorType } from '../core/errors.js';
import type { LoopResume, LoopWorkflowInput } from '../core/inputs.js';
import { CheckpointManifest } from '../core/training.js';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;
type Failure = temporal.api.failure.v1.IFailure;

/** How a loop's run ended, when it did not complete: what `loop status`, `loop list` and `loop resume` print. */
export interface RunEnding {
  status: 'FAILED' | 'TERMINATED' | 'TIMED_OUT' | 'CANCELLED';
  cause: string;
}

const decode = (payload: Payload | null | undefined): unknown =>
  payload ? defaultPayloadConverter.fromPayload(payload) : undefined;

/**
 * A failure chain as one line, outermost first, without the wrappers' generic words: "probe batch 3 …: Activity task
 * failed: PostgreSQL at db:5432 (DATABASE_URL): connect ECONNREFUSED" reads as the activity and the reason.
 */
export function describeFailure(failure: Failure | null | undefined): string {
  const parts: string[] = [];
  for (let f = failure; f; f = f.cause) {
    const where = f.activityFailureInfo?.activityType?.name
      ? `activity ${f.activityFailureInfo.activityType.name}`
      : f.childWorkflowExecutionFailureInfo?.workflowExecution?.workflowId
        ? `stage ${f.childWorkflowExecutionFailureInfo.workflowExecution.workflowId}`
        : undefined;
    const type = f.applicationFailureInfo?.type ? ` [${f.applicationFailureInfo.type}]` : '';
    const message = (f.message ?? '').split('\n')[0];
    if (where) parts.push(where);
    else if (message) parts.push(`${message}${type}`);
  }
  return parts.join(': ') || 'no failure recorded';
}

/** How a closed run ended, from its last history event; undefined when it completed or continued as new. */
export function runEnding(last: HistoryEvent | undefined): RunEnding | undefined {
  if (!last) return undefined;
  if (last.workflowExecutionFailedEventAttributes)
    return { status: 'FAILED', cause: describeFailure(last.workflowExecutionFailedEventAttributes.failure) };
  if (last.workflowExecutionTerminatedEventAttributes) {
    const { reason, identity } = last.workflowExecutionTerminatedEventAttributes;
    return { status: 'TERMINATED', cause: `terminated${identity ? ` by ${identity}` : ''}: ${reason || 'no reason'}` };
  }
  if (last.workflowExecutionTimedOutEventAttributes)
    return { status: 'TIMED_OUT', cause: 'timed out (the workflow execution timeout ran out)' };
  if (last.workflowExecutionCanceledEventAttributes) return { status: 'CANCELLED', cause: 'cancelled' };
  return undefined;
}

/** Whether a failure chain holds a failure of the given type. */
function hasType(failure: Failure | null | undefined, type: string): boolean {
  for (let f = failure; f; f = f.cause) if (f.applicationFailureInfo?.type === type) return true;
  return false;
}

/**
 * What a new run needs to continue a loop whose last run ended without completing, read from that run's history: the
 * input it started with (config, queues, the iteration's state) and what happened to it afterwards that the state does
 * not hold: injections, pause and stop requests it took, the checkpoint it trained, whether its training job failed.
 */
export function resumeFromHistory(
  runId: string,
  events: readonly HistoryEvent[],
): { input: LoopWorkflowInput; resume: LoopResume; ending: RunEnding } {
  const ending = runEnding(events.at(-1));
  if (!ending) throw new Error('the run did not end without completing; nothing to resume');
  const started = events[0]?.workflowExecutionStartedEventAttributes;
  const input = decode(started?.input?.payloads?.[0]) as LoopWorkflowInput | undefined;
  if (!input) throw new Error('the run history has no start input');
  const state = input.state;
  const previous = input.resume;
  const resume: LoopResume = {
    fromRunId: runId,
    cause: ending.cause,
    trainingJobAttempt: previous?.trainingJobAttempt ?? 1,
    pendingInjections: [...(previous?.pendingInjections ?? state?.pendingInjections ?? [])],
    injectionKeys: [...(previous?.injectionKeys ?? state?.injectionKeys ?? [])],
    paused: previous?.paused ?? state?.paused ?? false,
    stopAfterIteration: previous?.stopAfterIteration ?? state?.stopAfterIteration ?? false,
    ...(previous?.trained ? { trained: CheckpointManifest.parse(previous.trained) } : {}),
  };
  const scheduled = new Map<string, string>();
  for (const event of events) {
    const update = event.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input;
    const signal = event.workflowExecutionSignaledEventAttributes?.signalName;
    const name = update?.name ?? signal;
    if (name === 'injectData') {
      const injection = decode(update?.args?.payloads?.[0]) as { stagingBatchId: string; idempotencyKey: string };
      if (!resume.injectionKeys.includes(injection.idempotencyKey)) {
        resume.injectionKeys.push(injection.idempotencyKey);
        resume.pendingInjections.push(injection.stagingBatchId);
      }
    } else if (name === 'pause' || name === 'pauseSignal') resume.paused = true;
    else if (name === 'resume' || name === 'resumeSignal') resume.paused = false;
    else if (name === 'stopAfterIteration') resume.stopAfterIteration = true;

    const activity = event.activityTaskScheduledEventAttributes?.activityType?.name;
    if (activity) scheduled.set(String(event.eventId), activity);
    const completed = event.activityTaskCompletedEventAttributes;
    if (completed && scheduled.get(String(completed.scheduledEventId)) === 'trainIteration') {
      const result = decode(completed.result?.payloads?.[0]) as { checkpoint: CheckpointManifest };
      resume.trained = result.checkpoint;
    }
    const failed = event.activityTaskFailedEventAttributes;
    if (
      failed &&
      scheduled.get(String(failed.scheduledEventId)) === 'trainIteration' &&
      hasType(failed.failure, ErrorType.TrainingJobFailed)
    ) {
      // The job itself failed: the engine would re-attach to it by its key, so the next submission gets a new one.
      resume.trainingJobAttempt++;
    }
  }
  return { input, resume, ending };
}
