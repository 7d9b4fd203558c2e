import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, describe, expect, inject, test } from 'vitest';
import { isAlive } from '../../services/process.js';
import {
  startTemporalDevServer,
  stopTemporalDevServer,
  type TemporalDevServer,
} from '../../services/temporal-dev-server.js';
import { finishSignal, type waitForFinishWorkflow } from '../fixtures/restart-workflow/index.js';
import { freeTemporalPorts } from '../helpers/ports.js';
import { quietTemporalLogs } from '../helpers/temporal.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/restart-workflow/index.ts', import.meta.url));

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
    const started = await new Client({ connection }).workflow.start<typeof waitForFinishWorkflow>(
      'waitForFinishWorkflow',
      {
        taskQueue,
        workflowId,
        args: [{ label: 'restart' }],
      },
    );
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

    const nativeConnection = await NativeConnection.connect({ address: second.address });
    try {
      const worker = await Worker.create({
        connection: nativeConnection,
        taskQueue,
        workflowBundle: await bundleWorkflowCode({ workflowsPath: FIXTURE, logger: new DefaultLogger('WARN') }),
      });
      const result = await worker.runUntil(async () => {
        await handle.signal(finishSignal);
        return (await handle.result()) as Awaited<ReturnType<typeof waitForFinishWorkflow>>;
      });
      expect(result).toEqual({ label: 'restart', finished: true });
    } finally {
      await nativeConnection.close();
      await connection.close();
    }
  });
});
