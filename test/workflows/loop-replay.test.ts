import { readFileSync } from 'node:fs';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { describe, expect, inject, test } from 'vitest';

/**
 * Loop runs recorded by the workflows before the `concurrent-held-out-scoring` patch (workflows/loop.ts): iteration 1
 * (setup, train, deploy, the three stages, assemble, evaluate) and iteration 2 (train, deploy, evaluate) of a 200-sample
 * loop with BFCL's non-live files as the held-out set (`npm run bench -- loop --samples=200 --train-seconds=2 --histories=…`). They
 * score one after another; replayed on the current code they must take that path again, not the concurrent one.
 */
const fixture = (name: string) =>
  temporal.api.history.v1.History.fromObject(
    JSON.parse(readFileSync(new URL(`../fixtures/loop-replay/${name}`, import.meta.url), 'utf8')),
  );

/** The activity types in the order the run scheduled them, and the workflow task each was scheduled in. */
function scheduled(history: ReturnType<typeof fixture>): { name: string; task: number }[] {
  return (history.events ?? []).flatMap((e) => {
    const attributes = e.activityTaskScheduledEventAttributes;
    return attributes
      ? [{ name: attributes.activityType?.name ?? '', task: Number(attributes.workflowTaskCompletedEventId) }]
      : [];
  });
}

describe('loop histories from before the concurrent-scoring patch', () => {
  for (const name of ['iteration-1.json', 'iteration-2.json']) {
    test(`${name} replays deterministically on the current workflows`, async () => {
      const history = fixture(name);
      // What makes the fixture a test of the patch: scored one after another, no patch marker.
      const order = scheduled(history);
      const slice = order.find((a) => a.name === 'scoreHeldOut')!;
      const sets = order.find((a) => a.name === 'evaluateFile')!;
      expect(sets.task).toBeGreaterThan(slice.task);
      expect((history.events ?? []).some((e) => e.markerRecordedEventAttributes)).toBe(false);
      const bundle = { code: readFileSync(inject('workflowBundlePath'), 'utf8') };
      await Worker.runReplayHistory({ workflowBundle: bundle }, history, 'loop/overhead');
    });
  }
});
