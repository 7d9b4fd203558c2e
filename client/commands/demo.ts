import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import type { Command } from 'commander';
import { LoopConfig } from '../../core/config.js';
import { contentHash } from '../../core/hash.js';
import type { LoopStatus } from '../../core/messages.js';
import { migrate } from '../../db/migrate.js';
import { createPool } from '../../db/pool.js';
import { withClient } from '../../db/tx.js';
import { createActivityDeps } from '../../activities/index.js';
import { startSimServer } from '../../sim/server.js';
import { writeSeedData } from '../../sim/seed-data.js';
import { createWorkers, runWorkers, WORKFLOWS_PATH } from '../../worker/workers.js';
import { versionFromImport } from '../io/dataset-import.js';
import { stageFile } from '../io/import.js';
import { LoopClient } from '../loops.js';
import { buildLoopReport, writeReport } from '../report.js';
import { localServicesSettings, servicesUp } from '../services/local-services.js';
import { renderStatus } from './loop.js';

const BFCL_EVAL_FILES = ['simple_python', 'multiple', 'parallel', 'parallel_multiple', 'irrelevance'].map((category) => ({
  questions: `data/bfcl/BFCL_v4_${category}.json`,
  ...(category === 'irrelevance' ? {} : { answers: `data/bfcl/possible_answer/BFCL_v4_${category}.json` }),
}));

/** The demo loop's config: the simulated stack for every role, BFCL's non-live files as the held-out set. */
export function demoConfig(input: { name: string; simUrl: string; seedDataset: string; iterations: number; seed: number; initialSize: number }): LoopConfig {
  const v1 = `${input.simUrl}/v1`;
  return LoopConfig.parse({
    name: input.name,
    seed: input.seed,
    data: { seedDataset: input.seedDataset, initialSize: input.initialSize },
    models: {
      policy: { baseUrls: [v1], model: 'sim-student', maxConcurrency: 64 },
      judge: { baseUrls: [v1], model: 'sim-judge', maxConcurrency: 64 },
      generator: { baseUrls: [v1], model: 'sim-generator', maxConcurrency: 64 },
    },
    training: { backend: 'sim', url: input.simUrl },
    iterations: input.iterations,
    reward: 'exact',
    judge: { votes: 3 },
    expand: { k: 4 },
    evaluation: { sets: [{ name: 'bfcl', files: BFCL_EVAL_FILES }] },
    concurrency: { batches: 4 },
  });
}

/**
 * `looptool demo`: the main job on the embedded default. Brings up Temporal and PostgreSQL, the simulated model stack
 * (student, judge, generator, trainer) and a worker in this process; generates and imports seed data with a known
 * share of wrong labels; runs the loop with live progress; prints what each iteration did. The services stay up so
 * the run can be inspected in the UI and with `looptool data …`.
 */
export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('Run a complete LoopTool loop on the embedded default (embedded Temporal + PostgreSQL, simulated models)')
    .option('--name <loop>', 'loop name (default: demo-s<seed>-<time>)')
    .option('--iterations <n>', 'iterations to run', (value) => Number.parseInt(value, 10), 3)
    .option('--seed <n>', 'seed of the simulated world and of the loop', (value) => Number.parseInt(value, 10), 7)
    .option('--samples <n>', 'seed samples to generate', (value) => Number.parseInt(value, 10), 800)
    .action(async (options: { name?: string; iterations: number; seed: number; samples: number }) => {
      Runtime.install({ logger: new DefaultLogger('WARN') });
      const started = Date.now();
      const settings = localServicesSettings();
      console.log('Starting services (Temporal dev server, PostgreSQL)…');
      const services = await servicesUp(settings, (line) => console.log(line));
      const pool = createPool({ connectionString: services.database.url });
      const sim = await startSimServer({ seed: options.seed, trainer: { jobSeconds: 1 } });
      const nativeConnection = await NativeConnection.connect({ address: services.temporal.address });
      const loops = await LoopClient.connect(services.temporal.address);
      let workersRun: Promise<void> | undefined;
      let workers: Awaited<ReturnType<typeof createWorkers>> = [];
      try {
        await withClient(pool, (client) => migrate(client));
        console.log(`Simulated model stack at ${sim.url} (student, judge, generator, trainer).`);

        const demoDir = path.join(settings.dataDir, 'demo');
        mkdirSync(demoDir, { recursive: true });
        const seedFile = path.join(demoDir, `seed-${options.seed}-${options.samples}.jsonl`);
        const summary = await writeSeedData(seedFile, { count: options.samples, seed: options.seed });
        const seedDataset = `demo-seed-s${options.seed}-n${options.samples}`;
        const staged = await stageFile({ pool, file: seedFile, format: 'openai', purpose: 'import', target: seedDataset });
        await versionFromImport(pool, { dataset: seedDataset, batchId: staged.batchId, note: `simulated seed data, seed ${options.seed}` });
        console.log(`Seed data: ${staged.staged} samples (${summary.corrupted} with wrong labels) imported as ${seedDataset}.`);

        workers = await createWorkers({
          connection: nativeConnection,
          namespace: 'default',
          deps: createActivityDeps({ pool, artifactsDir: path.join(settings.dataDir, 'artifacts') }),
          config: { LOOPTOOL_TASK_QUEUES: ['control', 'llm', 'gpu'], LOOPTOOL_LLM_CONCURRENCY: 16, LOOPTOOL_GPU_CONCURRENCY: 1, LOOPTOOL_SHUTDOWN_GRACE_SECONDS: 5 },
          workflowBundle: await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: new DefaultLogger('WARN') }),
        });
        workersRun = runWorkers(workers);

        const loopName = options.name ?? `demo-s${options.seed}-${new Date().toISOString().slice(0, 19).replace(/[-:T]/g, '').toLowerCase()}`;
        const config = demoConfig({ name: loopName, simUrl: sim.url, seedDataset, iterations: options.iterations, seed: options.seed, initialSize: Math.round(options.samples * 0.65) });
        const start = await loops.start({ loopName, config, configHash: contentHash(config) });
        console.log(`${start.started ? 'Started' : 'Joined'} loop ${loopName}; UI: ${services.temporal.uiUrl ?? services.temporal.address}/namespaces/default/workflows/${encodeURIComponent(start.workflowId)}`);

        const handle = loops.handle(loopName);
        const result = handle.result();
        let lastLine = '';
        let finished = false;
        void result.finally(() => (finished = true)).catch(() => {});
        while (!finished) {
          await new Promise((resolve) => setTimeout(resolve, 1_000));
          if (finished) break;
          const status = await loops.status(loopName).catch(() => undefined);
          if (!status) continue;
          const line = progressLine(status);
          if (line !== lastLine) console.log(line);
          lastLine = line;
        }
        await result;
        const final = await loops.status(loopName);
        console.log(`\n${renderStatus(final)}`);
        const corrections = await pool.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM judgements WHERE loop_name = $1 AND corrected_sample_id IS NOT NULL`,
          [loopName],
        );
        const expansions = await pool.query<{ status: string; n: number }>(
          `SELECT status, count(*)::int AS n FROM expansions WHERE loop_name = $1 GROUP BY status ORDER BY status`,
          [loopName],
        );
        console.log(`\nLabels corrected: ${corrections.rows[0]?.n ?? 0}. Expansions: ${expansions.rows.map((r) => `${r.status} ${r.n}`).join(', ') || 'none'}.`);
        const report = writeReport(await buildLoopReport(pool, loopName), path.join(settings.dataDir, 'reports', loopName));
        console.log(`Done in ${Math.round((Date.now() - started) / 1000)} s.`);
        console.log(`Report:      ${report.html}${report.pngNote ? ` (${report.pngNote})` : ''}`);
        if (services.temporal.uiUrl) console.log(`Temporal UI: ${services.temporal.uiUrl}/namespaces/default/workflows/${encodeURIComponent(start.workflowId)}`);
        console.log(`Datasets:    looptool data versions --loop ${loopName}`);
        console.log('The services keep running for inspection; stop them with `npm run services:down`.');
      } finally {
        for (const worker of workers) if (worker.getState() === 'RUNNING') worker.shutdown();
        await workersRun?.catch(() => {});
        await loops.close();
        await nativeConnection.close();
        await sim.close();
        await pool.end();
      }
    });
}

function progressLine(status: LoopStatus & { running?: { done: number; total: number; counts: Record<string, number> } }): string {
  const running = status.running ? ` ${status.running.done}/${status.running.total} batches` : '';
  const accuracy = status.history.at(-1)?.accuracy;
  return `  iteration ${status.iteration}/${status.iterations}: ${status.stage}${running}${status.paused ? ' (paused)' : ''}${
    accuracy !== undefined && accuracy !== null ? `, last accuracy ${(accuracy * 100).toFixed(1)}%` : ''
  }`;
}

