/**
 * Orchestration overhead from workflow histories: the share of a window (one loop run, i.e. one iteration) during
 * which no activity ran. Busy time is the union of every activity's execution, ActivityTaskStarted to its closing
 * event (Completed, Failed, TimedOut, Canceled), over the loop's history and its stage children's; everything else —
 * workflow tasks, schedule-to-start waits, child workflow starts and completions, timers — is overhead. Each gap is
 * cut at the events inside it (of every history, merged by time) and each piece charged to the transition that ends
 * it (`WorkflowTaskScheduled → WorkflowTaskStarted`: a workflow task waited for a poller), so the breakdown says where
 * the time went.
 */

/** One history event, reduced to what the analysis needs. */
export interface HistoryEvent {
  /** Which workflow's history (a short label: `loop`, `probe`, …). */
  workflow: string;
  eventId: number;
  /** Epoch milliseconds. */
  time: number;
  /** The event type, e.g. `ActivityTaskStarted`. */
  type: string;
  /** The activity type of activity events, the child's workflow id of child events, the timer id of timer events. */
  subject?: string;
  /** For activity events after the scheduled one: the ActivityTaskScheduled event's id. */
  scheduledEventId?: number;
}

/** What {@link toHistoryEvents} reads of an event (`temporal.api.history.v1.IHistoryEvent`). */
export interface RawHistoryEvent {
  eventId?: unknown;
  eventTime?: { seconds?: unknown; nanos?: number | null } | null;
  [attributes: string]: unknown;
}

const ACTIVITY_CLOSE = new Set([
  'ActivityTaskCompleted',
  'ActivityTaskFailed',
  'ActivityTaskTimedOut',
  'ActivityTaskCanceled',
]);

/** A history as {@link HistoryEvent}s: the type from the one `…EventAttributes` field set, activity names filled in. */
export function toHistoryEvents(workflow: string, events: readonly RawHistoryEvent[]): HistoryEvent[] {
  const activityNames = new Map<number, string>();
  return events.map((event) => {
    const key =
      Object.keys(event).find((k) => k.endsWith('EventAttributes') && event[k] != null) ?? 'unknownEventAttributes';
    const attributes = (event[key] ?? {}) as Record<string, unknown>;
    const type = key[0]!.toUpperCase() + key.slice(1, -'EventAttributes'.length);
    const eventId = Number(event.eventId ?? 0);
    const time = Number(event.eventTime?.seconds ?? 0) * 1000 + (event.eventTime?.nanos ?? 0) / 1e6;
    const out: HistoryEvent = { workflow, eventId, time, type };
    if (type === 'ActivityTaskScheduled') {
      const name = (attributes.activityType as { name?: string } | undefined)?.name ?? '?';
      activityNames.set(eventId, name);
      out.subject = name;
    } else if (type.startsWith('ActivityTask')) {
      out.scheduledEventId = Number(attributes.scheduledEventId ?? 0);
      out.subject = activityNames.get(out.scheduledEventId) ?? '?';
    } else if (type.startsWith('Timer')) {
      out.subject = String(attributes.timerId ?? '');
    } else {
      const child =
        (attributes.workflowExecution as { workflowId?: string } | undefined)?.workflowId ??
        (type === 'StartChildWorkflowExecutionInitiated' ? (attributes.workflowId as string | undefined) : undefined);
      if (child) out.subject = child;
    }
    return out;
  });
}

export interface Interval {
  start: number;
  end: number;
}

/** One activity's execution, as its history records it (the last attempt's start to its close). */
export interface ActivitySpan extends Interval {
  workflow: string;
  activity: string;
}

/** Every activity execution in the events; one still running (no close event) runs until `openUntil`. */
export function activitySpans(events: readonly HistoryEvent[], openUntil: number): ActivitySpan[] {
  const closes = new Map<string, HistoryEvent>();
  for (const e of events) if (ACTIVITY_CLOSE.has(e.type)) closes.set(`${e.workflow}#${e.scheduledEventId ?? 0}`, e);
  return events
    .filter((e) => e.type === 'ActivityTaskStarted')
    .map((e) => ({
      workflow: e.workflow,
      activity: e.subject ?? '?',
      start: e.time,
      end: closes.get(`${e.workflow}#${e.scheduledEventId ?? 0}`)?.time ?? openUntil,
    }));
}

/** The union of intervals, clipped to the window, as disjoint sorted intervals. */
export function unionOf(intervals: readonly Interval[], window: Interval): Interval[] {
  const clipped = intervals
    .map((i) => ({ start: Math.max(i.start, window.start), end: Math.min(i.end, window.end) }))
    .filter((i) => i.end > i.start)
    .sort((a, b) => a.start - b.start);
  const out: Interval[] = [];
  for (const i of clipped) {
    const last = out.at(-1);
    if (last && i.start <= last.end) last.end = Math.max(last.end, i.end);
    else out.push({ ...i });
  }
  return out;
}

/** A stretch of the window with no activity running, and the events that bound and fill it. */
export interface Gap extends Interval {
  ms: number;
  /** The last event at or before the gap's start (what ended the work before it). */
  before?: HistoryEvent;
  /** The events inside the gap, in time order. */
  inside: HistoryEvent[];
  /** The first event at or after the gap's end (what started the work after it). */
  after?: HistoryEvent;
}

export interface OverheadReport {
  window: Interval;
  wallMs: number;
  busyMs: number;
  overheadMs: number;
  /** overheadMs / wallMs, in percent. */
  overheadPercent: number;
  activities: number;
  /** Every gap, largest first. */
  gaps: Gap[];
  /** Gap time by the transition that ends each piece (`A → B`), largest first. */
  byTransition: { transition: string; ms: number; count: number }[];
  /** Gap time by kind of wait (see {@link kindOf}), largest first. */
  byKind: { kind: string; ms: number; count: number }[];
}

/** The kind of orchestration step a piece of a gap ending in `next` (after `previous`) is. */
export function kindOf(previous: HistoryEvent | undefined, next: HistoryEvent | undefined): string {
  switch (next?.type) {
    case 'ActivityTaskStarted':
      return 'activity schedule-to-start (task queue, pollers)';
    case 'WorkflowTaskScheduled':
      return 'server: event to workflow task scheduled';
    case 'WorkflowTaskStarted':
      return 'workflow task schedule-to-start (task queue, pollers)';
    case 'WorkflowTaskCompleted':
      return 'workflow task on the worker (activation, commands)';
    case 'StartChildWorkflowExecutionInitiated':
    case 'ChildWorkflowExecutionStarted':
    case 'WorkflowExecutionStarted':
      return 'child workflow start';
    case 'ChildWorkflowExecutionCompleted':
    case 'ChildWorkflowExecutionFailed':
      return 'child workflow completion to the parent';
    case 'TimerFired':
      return 'timer';
    case undefined:
      return previous ? 'after the last event' : 'other';
    default:
      return 'recording commands and other events';
  }
}

const label = (e: HistoryEvent | undefined) => (e ? `${e.workflow}:${e.type}` : '(window edge)');

/**
 * Overhead of one window: `events` are every history's events that belong to it (the loop run and its stage
 * children's runs), `window` the loop run's start and close.
 */
export function analyseOverhead(events: readonly HistoryEvent[], window: Interval): OverheadReport {
  const sorted = [...events].sort((a, b) => a.time - b.time || a.eventId - b.eventId);
  const spans = activitySpans(sorted, window.end);
  const busy = unionOf(spans, window);
  const busyMs = busy.reduce((n, i) => n + (i.end - i.start), 0);
  const wallMs = window.end - window.start;
  // The gaps: the window less the busy union.
  const gapIntervals: Interval[] = [];
  let cursor = window.start;
  for (const b of busy) {
    if (b.start > cursor) gapIntervals.push({ start: cursor, end: b.start });
    cursor = Math.max(cursor, b.end);
  }
  if (window.end > cursor) gapIntervals.push({ start: cursor, end: window.end });

  const transitions = new Map<string, { ms: number; count: number }>();
  const kinds = new Map<string, { ms: number; count: number }>();
  const charge = (map: Map<string, { ms: number; count: number }>, key: string, ms: number) => {
    const entry = map.get(key) ?? { ms: 0, count: 0 };
    entry.ms += ms;
    entry.count++;
    map.set(key, entry);
  };
  const gaps: Gap[] = gapIntervals.map((g) => {
    // What ended the work before the gap: of the events at its start, an activity's close if there is one, else the first.
    const upTo = sorted.filter((e) => e.time <= g.start);
    const atStart = upTo.filter((e) => e.time === upTo.at(-1)?.time);
    const before = atStart.find((e) => ACTIVITY_CLOSE.has(e.type)) ?? atStart[0];
    const after =
      sorted.find((e) => e.time >= g.end && e.type === 'ActivityTaskStarted') ?? sorted.find((e) => e.time >= g.end);
    const inside = sorted.filter(
      (e) => e.time >= g.start && e.time < g.end && e !== before && e !== after && !atStart.includes(e),
    );
    // The other events at the gap's start come first (in event order), then what happened in it.
    inside.unshift(...atStart.filter((e) => e !== before));
    // Pieces: gap start → each event inside → gap end, each charged to the event that ends it.
    let from = g.start;
    let previous = before;
    for (const next of [...inside, after]) {
      const to = next ? Math.min(next.time, g.end) : g.end;
      if (to > from) {
        charge(transitions, `${label(previous)} → ${label(next)}`, to - from);
        charge(kinds, kindOf(previous, next), to - from);
      }
      from = Math.max(from, to);
      previous = next;
    }
    return { ...g, ms: g.end - g.start, ...(before ? { before } : {}), inside, ...(after ? { after } : {}) };
  });
  const ranked = (map: Map<string, { ms: number; count: number }>) =>
    [...map].map(([key, v]) => ({ key, ...v })).sort((a, b) => b.ms - a.ms);
  return {
    window,
    wallMs,
    busyMs,
    overheadMs: wallMs - busyMs,
    overheadPercent: wallMs > 0 ? (100 * (wallMs - busyMs)) / wallMs : 0,
    activities: spans.length,
    gaps: gaps.sort((a, b) => b.ms - a.ms),
    byTransition: ranked(transitions).map(({ key, ms, count }) => ({ transition: key, ms, count })),
    byKind: ranked(kinds).map(({ key, ms, count }) => ({ kind: key, ms, count })),
  };
}

/** An event as one short phrase: `probe:ActivityTaskCompleted probeBatch`. */
export function describeEvent(e: HistoryEvent | undefined): string {
  if (!e) return '(window edge)';
  return `${e.workflow}:${e.type}${e.subject ? ` ${e.subject}` : ''}`;
}
