import { DefaultLogger, NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import type pg from 'pg';
import { gpuPoolQueue } from '../core/constants.js';
import { createActivities, createActivityDeps } from '../activities/index.js';
import { openDatabase } from '../db/open.js';
import { projectPath } from '../services/paths.js';
import { ConfigError, loadWorkerConfig, type WorkerConfig } from './config.js';

/** The workflows' entry module; the worker bundles it (from the TypeScript sources) at start. */
export const WORKFLOWS_PATH = projectPath('workflows', 'index.ts');

export interface StartWorkerOptions {
  /** A prebuilt bundle (`bundleWorkflowCode`); without one the control worker bundles `workflows/` at start. */
  workflowBundle?: { code: string };
  log?: (line: string) => void;
}

/** A running worker process's parts: one Temporal `Worker` per served queue, their connection and database pool. */
export interface LooptoolWorker {
  readonly workers: Worker[];
  /** Settles when every worker has stopped (after {@link LooptoolWorker.shutdown}, or a fatal error in one). */
  readonly done: Promise<void>;
  /** Stops polling; in-flight activities get the configured grace time, then the connection and pool close. */
  shutdown(): Promise<void>;
}

/**
 * The one worker composition, used by `looptool worker` and the demo: the database opened (and migrated, unless
 * turned off), one connection, and one Temporal `Worker` per task queue this process serves. The control worker runs
 * workflows and database activities; the llm and gpu workers run the same activities under their own concurrency
 * caps, so a slow model server never starves a training dispatch and vice versa.
 */
export async function startWorker(config: WorkerConfig, options: StartWorkerOptions = {}): Promise<LooptoolWorker> {
  const log = options.log ?? (() => {});
  const pool: pg.Pool = await openDatabase({
    url: config.database.url,
    applicationName: 'looptool-worker',
    migrate: config.migrateOnStart,
    log: (line) => log(`[migrate] ${line}`),
  });
  let connection: NativeConnection | undefined;
  try {
    connection = await NativeConnection.connect({ address: config.temporal.address });
    const activities = createActivities(
      createActivityDeps({
        pool,
        artifactsDir: config.artifactsDir,
        defaultBaseUrls: config.defaultBaseUrls,
        apiKeys: config.apiKeys,
        ...(config.rewardUrl ? { rewardUrl: config.rewardUrl } : {}),
      }),
    );
    const common: Partial<WorkerOptions> = {
      connection,
      namespace: config.temporal.namespace,
      activities,
      // In-flight activities get this long to finish and flush their last heartbeat before a shutdown cancels them.
      shutdownGraceTime: `${config.shutdownGraceSeconds}s`,
    };
    const workers: Worker[] = [];
    for (const queue of config.serve) {
      workers.push(
        await Worker.create(
          queue === 'control'
            ? {
                ...common,
                taskQueue: config.queues.control,
                ...(options.workflowBundle
                  ? { workflowBundle: options.workflowBundle }
                  : { workflowsPath: WORKFLOWS_PATH }),
              }
            : {
                ...common,
                taskQueue: config.queues[queue],
                maxConcurrentActivityTaskExecutions: queue === 'llm' ? config.llmConcurrency : config.gpuConcurrency,
              },
        ),
      );
    }
    if (config.serve.includes('gpu')) {
      for (const pool of config.gpuPools) {
        workers.push(
          await Worker.create({
            ...common,
            taskQueue: gpuPoolQueue(config.queues, pool.name),
            maxConcurrentActivityTaskExecutions: pool.concurrency,
          }),
        );
      }
    }
    const runs = workers.map((worker) => worker.run());
    const stopAll = () => {
      for (const worker of workers) if (worker.getState() === 'RUNNING') worker.shutdown();
    };
    const openConnection = connection;
    const done = (async () => {
      try {
        await Promise.all(runs);
      } catch (err) {
        stopAll();
        await Promise.allSettled(runs);
        throw err;
      } finally {
        await openConnection.close();
        await pool.end();
      }
    })();
    return {
      workers,
      done,
      async shutdown() {
        stopAll();
        await done;
      },
    };
  } catch (err) {
    await connection?.close();
    await pool.end();
    throw err;
  }
}

/**
 * `looptool worker`: config parsed once from the environment, then {@link startWorker} until SIGINT/SIGTERM start a
 * graceful shutdown: no new tasks are polled and in-flight activities get LOOPTOOL_SHUTDOWN_GRACE_SECONDS to finish
 * and flush their heartbeats; a retry on another worker resumes from them.
 */
export async function runWorkerProcess(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const config = loadWorkerConfig(env);
  Runtime.install({ logger: new DefaultLogger('WARN'), shutdownSignals: [] });
  const worker = await startWorker(config, { log: (line) => console.log(line) });
  const shutdown = (signal: string) => {
    console.log(`[worker] ${signal}: shutting down gracefully`);
    void worker.shutdown().catch(() => {});
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  console.log(
    `[worker] serving ${config.serve.join(', ')}${config.queueSuffix ? ` (queue suffix ${config.queueSuffix})` : ''} on ${config.temporal.address} ` +
      `(namespace ${config.temporal.namespace}), database ${redactedUrl(config.database.url)}`,
  );
  await worker.done;
}

/** A database URL fit for a log line: the password replaced. */
function redactedUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}

export { ConfigError };
