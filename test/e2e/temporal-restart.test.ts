import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, describe, expect, inject, test } from 'vitest';
import { isAlive } from '../../client/services/process.js';
import { startTemporalDevServer, stopTemporalDevServer, type TemporalDevServer } from '../../client/services/temporal-dev-server.js';
import { createActivities, createActivityDeps } from '../../activities/index.js';
import type { helloLoopWorkflow } from '../../workflows/index.js';
import { createTestDatabase } from '../helpers/db.js';
import { freeTemporalPorts } from '../helpers/ports.js';
import { quietTemporalLogs } from '../helpers/temporal.js';

describe('the Temporal dev server keeps its state in --db-filename', () => {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'looptool-restart-'));
  afterAll(async () => {
    await stopTemporalDevServer(stateDir);
    rmSync(stateDir, { recursive: true, force: true });
  });

  test('a workflow started before the server is killed is still there after a restart, and then completes', async () => {
    quietTemporalLogs();
    const ports = await freeTemporalPorts();
    const start = () => startTemporalDevServer({ cliPath: inject('temporalCliPath'), stateDir, ...ports });
    const first: TemporalDevServer = await start();
    expect(first.started).toBe(true);

    const taskQueue = `restart-${Date.now()}`;
    const workflowId = `loop/restart-${Date.now()}`;
    let connection = await Connection.connect({ address: first.address });
    const started = await new Client({ connection }).workflow.start<typeof helloLoopWorkflow>('helloLoopWorkflow', {
      taskQueue,
      workflowId,
      args: [{ loopName: 'restart', iterations: 2 }],
    });
    await connection.close();

    // A crash, not a shutdown: nothing gets a chance to flush.
    process.kill(first.pid, 'SIGKILL');
    while (isAlive(first.pid)) await new Promise((resolve) => setTimeout(resolve, 50));

    const second = await start();
    expect(second.started).toBe(true);
    expect(second.pid).not.toBe(first.pid);
    connection = await Connection.connect({ address: second.address });
    const client = new Client({ connection });
    const handle = client.workflow.getHandle(workflowId);
    const description = await handle.describe();
    expect(description.status.name).toBe('RUNNING');
    expect(description.runId).toBe(started.firstExecutionRunId);

    const db = await createTestDatabase();
    const nativeConnection = await NativeConnection.connect({ address: second.address });
    try {
      const worker = await Worker.create({
        connection: nativeConnection,
        taskQueue,
        workflowBundle: { code: readFileSync(inject('workflowBundlePath'), 'utf8') },
        activities: createActivities(createActivityDeps({ pool: db.pool })),
      });
      const result = await worker.runUntil(handle.result() as ReturnType<typeof helloLoopWorkflow>);
      expect(result).toMatchObject({ loopName: 'restart', iterationsRun: 2 });
    } finally {
      await nativeConnection.close();
      await connection.close();
      await db.drop();
    }
  });
});
