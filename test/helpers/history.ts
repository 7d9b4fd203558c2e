import type { WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';

/**
 * Reading Temporal histories in tests: what a workflow did, in order, as the server recorded it. Assertions about
 * "nothing started while paused" or "the kill landed in training" are made on these events, never on elapsed time.
 * Events are told apart by which attributes they carry (`activityTaskScheduledEventAttributes`, …), the same thing
 * as their `eventType`.
 */
export type HistoryEvent = NonNullable<Awaited<ReturnType<WorkflowHandle['fetchHistory']>>['events']>[number];

export async function historyOf(handle: WorkflowHandle): Promise<HistoryEvent[]> {
  return (await handle.fetchHistory()).events ?? [];
}

/** The activity type of every scheduled event, by event id. */
function scheduledTypes(events: readonly HistoryEvent[]): Map<string, string> {
  return new Map(
    events
      .filter((e) => e.activityTaskScheduledEventAttributes)
      .map((e) => [String(e.eventId), e.activityTaskScheduledEventAttributes!.activityType?.name ?? '']),
  );
}

/** The activity types scheduled among `events` (a slice of a history), in order. */
export function scheduledActivities(events: readonly HistoryEvent[]): string[] {
  return events.flatMap((e) =>
    e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes.activityType?.name ?? ''] : [],
  );
}

/** The activity types completed among `events`, in order; `all` is the whole history (to look up their scheduled events). */
export function completedActivities(events: readonly HistoryEvent[], all: readonly HistoryEvent[] = events): string[] {
  const types = scheduledTypes(all);
  return events.flatMap((e) =>
    e.activityTaskCompletedEventAttributes
      ? [types.get(String(e.activityTaskCompletedEventAttributes.scheduledEventId)) ?? '']
      : [],
  );
}

/** Each started event's activity type, attempt and the failure that made it a retry (the final attempt of each activity). */
export function activityAttempts(events: readonly HistoryEvent[]): {
  activity: string;
  attempt: number;
  lastFailure: NonNullable<HistoryEvent['activityTaskStartedEventAttributes']>['lastFailure'];
}[] {
  const types = scheduledTypes(events);
  return events.flatMap((e) => {
    const started = e.activityTaskStartedEventAttributes;
    return started
      ? [
          {
            activity: types.get(String(started.scheduledEventId)) ?? '',
            attempt: started.attempt ?? 1,
            lastFailure: started.lastFailure,
          },
        ]
      : [];
  });
}

/** Child workflows started among `events`, by workflow id. */
export function childrenStarted(events: readonly HistoryEvent[]): string[] {
  return events.flatMap((e) =>
    e.startChildWorkflowExecutionInitiatedEventAttributes
      ? [e.startChildWorkflowExecutionInitiatedEventAttributes.workflowId ?? '']
      : [],
  );
}

/** Indexes of the accepted events of the updates named `name`. */
export function updatesAccepted(events: readonly HistoryEvent[], name: string): number[] {
  return events.flatMap((e, index) =>
    e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name === name ? [index] : [],
  );
}

/** Indexes of the completed events of the updates named `name` (matched to their accepted events). */
export function updatesCompleted(events: readonly HistoryEvent[], name: string): number[] {
  const accepted = new Set(updatesAccepted(events, name).map((index) => String(events[index]!.eventId)));
  return events.flatMap((e, index) =>
    accepted.has(String(e.workflowExecutionUpdateCompletedEventAttributes?.acceptedEventId)) ? [index] : [],
  );
}

/** Signals named `name` received among `events`: their indexes and decoded arguments. */
export function signalsReceived(events: readonly HistoryEvent[], name: string): { index: number; args: unknown[] }[] {
  return events.flatMap((e, index) => {
    const signaled = e.workflowExecutionSignaledEventAttributes;
    if (signaled?.signalName !== name) return [];
    return [
      { index, args: (signaled.input?.payloads ?? []).map((payload) => defaultPayloadConverter.fromPayload(payload)) },
    ];
  });
}

/** Whether a workflow task completed after event index `index`: the workflow has since had its chance to act. */
export function workflowTaskCompletedAfter(events: readonly HistoryEvent[], index: number): boolean {
  return events.slice(index + 1).some((e) => e.workflowTaskCompletedEventAttributes);
}
