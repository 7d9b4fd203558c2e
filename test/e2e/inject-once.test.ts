import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { LoopClient } from '../../client/loop-client.js';
import { workflowIds } from '../../core/constants.js';
import { stageFile } from '../../datasets/import.js';
import { injectionBatchId } from '../../datasets/staging.js';
import { writeSeedData } from '../../sim/seed-data.js';
import type { loopWorkflow } from '../../workflows/loop.js';
import { runLooptool } from '../helpers/cli.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { connectTestTemporal, type TestTemporal } from '../helpers/temporal.js';
import {
  cannedResults,
  Gates,
  loopInput,
  stubActivities,
  stubLoopConfig,
  uniqueLoopName,
  withStubWorker,
} from '../helpers/workflow-stubs.js';

/**
 * `looptool inject` twice with the same file: the batch id, and so the update's idempotency key, comes from the content
 * and the loop, so the loop queues the content once and the CLI says so. The loop is the real loop workflow held in its
 * setup by a stub activity (its handlers answer from its first workflow task); the CLI is the real one.
 */
describe('injecting the same content twice', () => {
  let temporal: TestTemporal;
  let db: TestDatabase;
  let scratch: string;

  beforeAll(async () => {
    temporal = await connectTestTemporal();
    db = await createTestDatabase();
    scratch = mkdtempSync(path.join(os.tmpdir(), 'looptool-inject-once-'));
  });
  afterAll(async () => {
    await db?.drop();
    await temporal?.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  test('is merged once: the second run (and a copy under another name) finds the same batch and queues nothing', async () => {
    const gates = new Gates();
    const stubs = stubActivities({
      createInitialVersion: async (input) => {
        await gates.wait('setup');
        return cannedResults.createInitialVersion(input);
      },
    });
    await withStubWorker(temporal, stubs, gates, async ({ taskQueue, track }) => {
      const loopName = uniqueLoopName('inject-once');
      await temporal.client.workflow.start<typeof loopWorkflow>('loopWorkflow', {
        taskQueue,
        workflowId: track(workflowIds.loop(loopName)),
        args: [loopInput(loopName, stubLoopConfig({ iterations: 2 }), taskQueue)],
      });
      await stubs.called('createInitialVersion');
      const env = { ...process.env, DATABASE_URL: db.url, TEMPORAL_ADDRESS: temporal.address };
      const inject = (file: string) => runLooptool(['inject', loopName, file, '--format', 'openai'], { env });
      const loops = await LoopClient.connect(temporal.address);
      try {
        const file = path.join(scratch, 'more.jsonl');
        await writeSeedData(file, { count: 6, seed: 41 });
        const { batchId } = await injectionBatchId({ loopName, file, format: 'openai' });

        const first = await inject(file);
        expect(first.code, first.stderr).toBe(0);
        const again = await inject(file);
        expect(again.code, again.stderr).toBe(0);
        // Queued once (with a random batch id per run, the same file used to be queued twice).
        expect((await loops.status(loopName)).pendingInjections).toHaveLength(1);
        expect(first.stdout).toContain(
          `Injected 6 samples (batch ${batchId}) into ${loopName}; they join the next dataset (1 batch(es) waiting).`,
        );
        expect(again.stdout).toContain(
          `Already injected: ${file} has the same content as batch ${batchId} (6 samples), injected before; it waits for the next dataset and is not queued again (1 batch(es) waiting).`,
        );
        // The same bytes under another name are the same content.
        const copy = path.join(scratch, 'copy-of-more.jsonl');
        copyFileSync(file, copy);
        expect((await inject(copy)).stdout).toContain(
          `Already injected: ${copy} has the same content as batch ${batchId}`,
        );

        expect((await loops.status(loopName)).pendingInjections).toEqual([batchId]);
        const { rows } = await db.pool.query<{ id: string; status: string }>(
          `SELECT id, status FROM staging_batches WHERE purpose = 'injection'`,
        );
        expect(rows).toEqual([{ id: batchId, status: 'ready' }]);

        // Other content is another batch, queued next to the first.
        const other = path.join(scratch, 'other.jsonl');
        await writeSeedData(other, { count: 4, seed: 42 });
        const otherBatch = (await injectionBatchId({ loopName, file: other, format: 'openai' })).batchId;
        const third = await inject(other);
        expect(third.stdout).toContain(`Injected 4 samples (batch ${otherBatch}) into ${loopName}`);
        expect((await loops.status(loopName)).pendingInjections).toEqual([batchId, otherBatch]);
      } finally {
        await loops.close();
      }
    });
  });

  test('content staged whose update never reached the loop is sent again, once, and the CLI says so', async () => {
    const gates = new Gates();
    const stubs = stubActivities({
      createInitialVersion: async (input) => {
        await gates.wait('setup');
        return cannedResults.createInitialVersion(input);
      },
    });
    await withStubWorker(temporal, stubs, gates, async ({ taskQueue, track }) => {
      const loopName = uniqueLoopName('inject-resend');
      await temporal.client.workflow.start<typeof loopWorkflow>('loopWorkflow', {
        taskQueue,
        workflowId: track(workflowIds.loop(loopName)),
        args: [loopInput(loopName, stubLoopConfig({ iterations: 2 }), taskQueue)],
      });
      await stubs.called('createInitialVersion');
      const file = path.join(scratch, 'staged-only.jsonl');
      await writeSeedData(file, { count: 3, seed: 43 });
      // What a first `inject` leaves when the loop could not be reached: the batch staged, no update sent.
      const { batchId } = await injectionBatchId({ loopName, file, format: 'openai' });
      const staged = await stageFile({
        pool: db.pool,
        file,
        format: 'openai',
        purpose: 'injection',
        target: loopName,
        batchId,
      });
      expect(staged.staged).toBe(3);

      const env = { ...process.env, DATABASE_URL: db.url, TEMPORAL_ADDRESS: temporal.address };
      const result = await runLooptool(['inject', loopName, file, '--format', 'openai'], { env });
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toContain(
        `Already staged: ${file} has the same content as batch ${batchId} (3 samples), injected before; sent to ${loopName} again, which merges a batch once (1 batch(es) waiting).`,
      );
      const loops = await LoopClient.connect(temporal.address);
      try {
        expect((await loops.status(loopName)).pendingInjections).toEqual([batchId]);
      } finally {
        await loops.close();
      }
    });
  });
});
