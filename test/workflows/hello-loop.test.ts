import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { SEARCH_ATTRIBUTES, workflowIds } from '../../core/constants.js';
import { getLoop } from '../../db/queries/loops.js';
import { createActivities, createActivityDeps } from '../../activities/index.js';
import type { helloLoopWorkflow } from '../../workflows/index.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { connectTestTemporal, type TestTemporal } from '../helpers/temporal.js';

describe('helloLoopWorkflow on the real dev server', () => {
  let temporal: TestTemporal;
  let db: TestDatabase;

  beforeAll(async () => {
    temporal = await connectTestTemporal();
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await temporal?.close();
    await db?.drop();
  });

  test('runs to completion through a real worker, writes the loop row and sets the search attributes', async () => {
    const taskQueue = temporal.uniqueTaskQueue('hello');
    const loopName = `hello-${taskQueue.slice(-6)}`;
    const worker = await temporal.createWorker({ taskQueue, activities: createActivities(createActivityDeps({ pool: db.pool })) });
    const handle = await worker.runUntil(async () => {
      const started = await temporal.client.workflow.start<typeof helloLoopWorkflow>('helloLoopWorkflow', {
        taskQueue,
        workflowId: workflowIds.loop(loopName),
        args: [{ loopName, iterations: 3 }],
      });
      const result = await started.result();
      expect(result).toMatchObject({ loopName, iterationsRun: 3, createdLoopRecord: true });
      return started;
    });

    const row = await getLoop(db.pool, loopName);
    expect(row).toMatchObject({ name: loopName, workflowId: `loop/${loopName}`, config: { iterations: 3 } });
    expect(row?.configHash).toMatch(/^[0-9a-f]{64}$/);

    const description = await handle.describe();
    expect(description.status.name).toBe('COMPLETED');
    expect(description.typedSearchAttributes.get(SEARCH_ATTRIBUTES.loopIteration)).toBe(3);
    expect(description.typedSearchAttributes.get(SEARCH_ATTRIBUTES.loopName)).toBe(loopName);
  });

  test('a second run with the same loop name finds the existing row instead of writing another', async () => {
    const taskQueue = temporal.uniqueTaskQueue('hello');
    const loopName = `again-${taskQueue.slice(-6)}`;
    const worker = await temporal.createWorker({ taskQueue, activities: createActivities(createActivityDeps({ pool: db.pool })) });
    const results = await worker.runUntil(async () => {
      const first = await temporal.client.workflow.execute<typeof helloLoopWorkflow>('helloLoopWorkflow', {
        taskQueue,
        workflowId: `${workflowIds.loop(loopName)}-1`,
        args: [{ loopName, iterations: 1 }],
      });
      const second = await temporal.client.workflow.execute<typeof helloLoopWorkflow>('helloLoopWorkflow', {
        taskQueue,
        workflowId: `${workflowIds.loop(loopName)}-2`,
        args: [{ loopName, iterations: 1 }],
      });
      return [first, second];
    });
    expect(results.map((r) => r.createdLoopRecord)).toEqual([true, false]);
    const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM loops WHERE name = $1', [loopName]);
    expect(rows[0].n).toBe(1);
  });
});
