import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { createActivityDeps } from '../activities/index.js';
import { migrate } from '../db/migrate.js';
import { createPool } from '../db/pool.js';
import { withClient } from '../db/tx.js';
import { loadWorkerConfig } from './config.js';
import { createWorkers, runWorkers } from './workers.js';

/**
 * The looptool worker process: config parsed once, migrations applied, one Temporal worker per served task queue.
 * SIGINT/SIGTERM start a graceful shutdown: no new tasks are polled and in-flight activities get
 * LOOPTOOL_SHUTDOWN_GRACE_SECONDS to finish and flush their heartbeats; a retry on another worker resumes from them.
 */
export async function runWorkerProcess(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const config = loadWorkerConfig(env);
  Runtime.install({ logger: new DefaultLogger('WARN'), shutdownSignals: [] });
  const pool = createPool({ connectionString: config.DATABASE_URL, applicationName: 'looptool-worker' });
  let connection: NativeConnection | undefined;
  try {
    if (config.LOOPTOOL_MIGRATE_ON_START) {
      await withClient(pool, (client) => migrate(client, { log: (line) => console.log(`[migrate] ${line}`) }));
    }
    connection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
    const workers = await createWorkers({
      connection,
      namespace: config.TEMPORAL_NAMESPACE,
      deps: createActivityDeps({
        pool,
        ...(config.LOOPTOOL_LLM_API_KEY ? { llmApiKey: config.LOOPTOOL_LLM_API_KEY } : {}),
        ...(config.LOOPTOOL_ARTIFACTS_DIR ? { artifactsDir: config.LOOPTOOL_ARTIFACTS_DIR } : {}),
      }),
      config,
    });
    const shutdown = (signal: string) => {
      console.log(`[worker] ${signal}: shutting down gracefully`);
      for (const worker of workers) if (worker.getState() === 'RUNNING') worker.shutdown();
    };
    process.once('SIGINT', () => shutdown('SIGINT'));
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    const suffix = config.LOOPTOOL_TASK_QUEUE_SUFFIX ? ` (queue suffix ${config.LOOPTOOL_TASK_QUEUE_SUFFIX})` : '';
    console.log(`[worker] serving ${config.LOOPTOOL_TASK_QUEUES.join(', ')}${suffix} on ${config.TEMPORAL_ADDRESS} (namespace ${config.TEMPORAL_NAMESPACE})`);
    await runWorkers(workers);
  } finally {
    await connection?.close();
    await pool.end();
  }
}
