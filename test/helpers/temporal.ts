import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import { inject } from 'vitest';

let runtimeInstalled = false;

/** Quiet the SDK's own logging in tests: failures surface through assertions, not log spam. */
export function quietTemporalLogs(): void {
  if (runtimeInstalled) return;
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  runtimeInstalled = true;
}

export interface TestTemporal {
  address: string;
  client: Client;
  nativeConnection: NativeConnection;
  /** A task queue name unique to this test, so workers of parallel files never steal each other's tasks. */
  uniqueTaskQueue(prefix?: string): string;
  /** A worker on the suite's server, running the bundle built once in global setup. */
  createWorker(
    options: Omit<WorkerOptions, 'connection' | 'workflowBundle' | 'workflowsPath'> & { withWorkflows?: boolean },
  ): Promise<Worker>;
  close(): Promise<void>;
}

export async function connectTestTemporal(): Promise<TestTemporal> {
  quietTemporalLogs();
  const address = inject('temporalAddress');
  const connection = await Connection.connect({ address });
  const nativeConnection = await NativeConnection.connect({ address });
  const bundle = { code: readFileSync(inject('workflowBundlePath'), 'utf8') };
  return {
    address,
    client: new Client({ connection }),
    nativeConnection,
    uniqueTaskQueue: (prefix = 'test') => `${prefix}-${randomBytes(6).toString('hex')}`,
    createWorker: ({ withWorkflows = true, ...options }) =>
      Worker.create({ ...options, connection: nativeConnection, ...(withWorkflows ? { workflowBundle: bundle } : {}) }),
    async close() {
      await connection.close();
      await nativeConnection.close();
    },
  };
}
