import { describe, expect, test } from 'vitest';
import {
  activitySpans,
  analyseOverhead,
  type HistoryEvent,
  kindOf,
  toHistoryEvents,
  unionOf,
} from '../../../bench/lib/overhead.js';

/** A protobuf timestamp for epoch milliseconds. */
const at = (ms: number) => ({ seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 });

describe('toHistoryEvents', () => {
  test('reads the type from the attributes field and names activity events by their scheduled event', () => {
    const events = toHistoryEvents('loop', [
      { eventId: 1, eventTime: at(1_000), workflowExecutionStartedEventAttributes: {} },
      {
        eventId: 5,
        eventTime: at(1_010),
        activityTaskScheduledEventAttributes: { activityType: { name: 'probeBatch' } },
      },
      { eventId: 6, eventTime: at(1_020), activityTaskStartedEventAttributes: { scheduledEventId: 5 } },
      { eventId: 7, eventTime: at(1_500), activityTaskCompletedEventAttributes: { scheduledEventId: 5 } },
      {
        eventId: 8,
        eventTime: at(1_600),
        childWorkflowExecutionStartedEventAttributes: { workflowExecution: { workflowId: 'loop/x/iter-1/probe' } },
      },
      { eventId: 9, eventTime: at(1_700), timerStartedEventAttributes: { timerId: '3' } },
    ]);
    expect(events.map((e) => [e.type, e.time, e.subject])).toEqual([
      ['WorkflowExecutionStarted', 1_000, undefined],
      ['ActivityTaskScheduled', 1_010, 'probeBatch'],
      ['ActivityTaskStarted', 1_020, 'probeBatch'],
      ['ActivityTaskCompleted', 1_500, 'probeBatch'],
      ['ChildWorkflowExecutionStarted', 1_600, 'loop/x/iter-1/probe'],
      ['TimerStarted', 1_700, '3'],
    ]);
    expect(events[3]!.scheduledEventId).toBe(5);
  });
});

describe('unionOf', () => {
  test('merges overlapping and touching intervals and clips them to the window', () => {
    expect(
      unionOf(
        [
          { start: 5, end: 20 },
          { start: 0, end: 3 },
          { start: 10, end: 30 },
          { start: 30, end: 35 },
          { start: 50, end: 200 },
        ],
        { start: 1, end: 100 },
      ),
    ).toEqual([
      { start: 1, end: 3 },
      { start: 5, end: 35 },
      { start: 50, end: 100 },
    ]);
  });
});

/** Shorthand for a synthetic history event. */
function ev(workflow: string, eventId: number, time: number, type: string, extra: Partial<HistoryEvent> = {}) {
  return { workflow, eventId, time, type, ...extra };
}

describe('analyseOverhead', () => {
  // A loop run from 0 to 1,000 ms: one activity 100–400 in the loop, two overlapping ones in a child 450–700 and
  // 500–900; the gaps are 0–100, 400–450 and 900–1,000.
  const events: HistoryEvent[] = [
    ev('loop', 1, 0, 'WorkflowExecutionStarted'),
    ev('loop', 2, 0, 'WorkflowTaskScheduled'),
    ev('loop', 3, 60, 'WorkflowTaskStarted'),
    ev('loop', 4, 90, 'WorkflowTaskCompleted'),
    ev('loop', 5, 90, 'ActivityTaskScheduled', { subject: 'train' }),
    ev('loop', 6, 100, 'ActivityTaskStarted', { subject: 'train', scheduledEventId: 5 }),
    ev('loop', 7, 400, 'ActivityTaskCompleted', { subject: 'train', scheduledEventId: 5 }),
    ev('loop', 8, 400, 'WorkflowTaskScheduled'),
    ev('loop', 9, 410, 'WorkflowTaskStarted'),
    ev('loop', 10, 430, 'WorkflowTaskCompleted'),
    ev('probe', 5, 440, 'ActivityTaskScheduled', { subject: 'probeBatch' }),
    ev('probe', 6, 450, 'ActivityTaskStarted', { subject: 'probeBatch', scheduledEventId: 5 }),
    ev('probe', 7, 460, 'ActivityTaskScheduled', { subject: 'probeBatch' }),
    ev('probe', 8, 500, 'ActivityTaskStarted', { subject: 'probeBatch', scheduledEventId: 7 }),
    ev('probe', 9, 700, 'ActivityTaskCompleted', { subject: 'probeBatch', scheduledEventId: 5 }),
    ev('probe', 10, 900, 'ActivityTaskFailed', { subject: 'probeBatch', scheduledEventId: 7 }),
    ev('loop', 11, 900, 'WorkflowTaskScheduled'),
    ev('loop', 12, 950, 'WorkflowTaskStarted'),
    ev('loop', 13, 990, 'WorkflowTaskCompleted'),
    ev('loop', 14, 1_000, 'WorkflowExecutionCompleted'),
  ];
  const report = analyseOverhead(events, { start: 0, end: 1_000 });

  test('busy is the union of activity executions; overhead is the rest of the window', () => {
    expect(report.activities).toBe(3);
    expect(report.busyMs).toBe(300 + 450);
    expect(report.overheadMs).toBe(250);
    expect(report.overheadPercent).toBeCloseTo(25);
  });

  test('gaps come largest first with the events that bound them', () => {
    expect(report.gaps.map((g) => [g.start, g.end])).toEqual([
      [0, 100],
      [900, 1_000],
      [400, 450],
    ]);
    expect(report.gaps[2]!.before).toMatchObject({ type: 'ActivityTaskCompleted', subject: 'train' });
    expect(report.gaps[2]!.after).toMatchObject({ workflow: 'probe', type: 'ActivityTaskStarted' });
  });

  test('gap time is charged to the transition that ends each piece', () => {
    const kinds = Object.fromEntries(report.byKind.map((k) => [k.kind, k.ms]));
    // 0–60 and 400–410, 900–950: waits for a workflow task; 60–90, 410–430, 950–990: the worker ran it.
    expect(kinds['workflow task schedule-to-start (task queue, pollers)']).toBe(60 + 10 + 50);
    expect(kinds['workflow task on the worker (activation, commands)']).toBe(30 + 20 + 40);
    // 90–100 and 440–450: scheduled to started.
    expect(kinds['activity schedule-to-start (task queue, pollers)']).toBe(10 + 10);
    expect(report.byKind.reduce((n, k) => n + k.ms, 0)).toBe(report.overheadMs);
    expect(report.byTransition[0]).toEqual({
      transition: 'loop:WorkflowTaskScheduled → loop:WorkflowTaskStarted',
      ms: 120,
      count: 3,
    });
  });

  test('an activity without a close event is busy until the window ends', () => {
    expect(activitySpans([events[5]!], 777)).toEqual([{ workflow: 'loop', activity: 'train', start: 100, end: 777 }]);
  });

  test('kinds of steps', () => {
    expect(kindOf(undefined, ev('loop', 1, 0, 'TimerFired'))).toBe('timer');
    expect(kindOf(undefined, ev('loop', 1, 0, 'ChildWorkflowExecutionCompleted'))).toBe(
      'child workflow completion to the parent',
    );
    expect(kindOf(undefined, ev('probe', 1, 0, 'WorkflowExecutionStarted'))).toBe('child workflow start');
  });
});
