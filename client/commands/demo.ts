import { Client, Connection, WorkflowIdReusePolicy } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import type { Command } from 'commander';
import { SEARCH_ATTRIBUTES, TASK_QUEUES, workflowIds } from '../../core/constants.js';
import { migrate } from '../../db/migrate.js';
import { createPool } from '../../db/pool.js';
import { withClient } from '../../db/tx.js';
import type { helloLoopWorkflow } from '../../workflows/index.js';
import { createActivityDeps } from '../../activities/index.js';
import { createWorkers, runWorkers, WORKFLOWS_PATH } from '../../worker/workers.js';
import { localServicesSettings, servicesUp } from '../services/local-services.js';

/**
 * `looptool demo`: the main job on the embedded default. Brings up Temporal and PostgreSQL, runs a worker in this
 * process and drives a loop to completion, then leaves the services up so the run can be inspected in the UI.
 */
export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('Run a complete loop on the embedded default (embedded Temporal + PostgreSQL, simulated models)')
    .option('--name <loop>', 'loop name', 'demo')
    .option('--iterations <n>', 'iterations to run', (value) => Number.parseInt(value, 10), 3)
    .action(async (options: { name: string; iterations: number }) => {
      Runtime.install({ logger: new DefaultLogger('WARN') });
      const settings = localServicesSettings();
      console.log('Starting services (Temporal dev server, PostgreSQL)…');
      const services = await servicesUp(settings, (line) => console.log(line));
      const pool = createPool({ connectionString: services.database.url });
      const nativeConnection = await NativeConnection.connect({ address: services.temporal.address });
      const connection = await Connection.connect({ address: services.temporal.address });
      try {
        await withClient(pool, (client) => migrate(client));
        const workers = await createWorkers({
          connection: nativeConnection,
          namespace: 'default',
          deps: createActivityDeps({ pool }),
          config: {
            LOOPTOOL_TASK_QUEUES: ['control'],
            LOOPTOOL_LLM_CONCURRENCY: 16,
            LOOPTOOL_GPU_CONCURRENCY: 1,
            LOOPTOOL_SHUTDOWN_GRACE_SECONDS: 5,
          },
          workflowBundle: await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: new DefaultLogger('WARN') }),
        });
        const running = runWorkers(workers);
        const client = new Client({ connection });
        const workflowId = workflowIds.loop(options.name);
        try {
          const result = await client.workflow.execute<typeof helloLoopWorkflow>('helloLoopWorkflow', {
            taskQueue: TASK_QUEUES.control,
            workflowId,
            args: [{ loopName: options.name, iterations: options.iterations }],
            // A demo may be run again after it finished; a still-running one is joined rather than duplicated.
            workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
            typedSearchAttributes: [{ key: SEARCH_ATTRIBUTES.loopName, value: options.name }],
          });
          console.log(`Loop ${result.loopName}: ${result.iterationsRun} iterations done (config ${result.configHash.slice(0, 12)}).`);
        } finally {
          for (const worker of workers) worker.shutdown();
          await running;
        }
        if (services.temporal.uiUrl) {
          console.log(`Temporal UI: ${services.temporal.uiUrl}/namespaces/default/workflows/${encodeURIComponent(workflowId)}`);
        }
        console.log(`Database:    ${services.database.url}`);
        console.log('The services keep running for inspection; stop them with `npm run services:down`.');
      } finally {
        await connection.close();
        await nativeConnection.close();
        await pool.end();
      }
    });
}
