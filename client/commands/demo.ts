import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { LoopConfig } from '../../core/config.js';
import { contentHash } from '../../core/hash.js';
import type { LoopStatus } from '../../core/messages.js';
import type { TrainingProgress } from '../../core/training.js';
import { stageFile, versionFromImport } from '../../datasets/import.js';
import { openDatabase } from '../../db/open.js';
import { countExpansionsByStatus } from '../../db/queries/expansions.js';
import { countCorrectedLabels } from '../../db/queries/judgements.js';
import { servicesUp } from '../../services/local-services.js';
import { PROJECT_ROOT } from '../../services/paths.js';
import { startRayHead } from '../../services/ray-head.js';
import { startSlurmCluster } from '../../services/slurm-cluster.js';
import { writeSeedData } from '../../sim/seed-data.js';
import { startSimServer } from '../../sim/server.js';
import { loadWorkerConfig } from '../../worker/config.js';
import { type LooptoolWorker, startWorker } from '../../worker/worker.js';
import { LoopClient } from '../loop-client.js';
import { integerOption, nameOption } from '../options.js';
import { buildLoopReport, writeReport } from '../report.js';
import { cliSettings } from '../settings.js';
import { renderStatus } from './loop.js';

const BFCL_EVAL_FILES = ['simple_python', 'multiple', 'parallel', 'parallel_multiple', 'irrelevance'].map(
  (category) => ({
    questions: `data/bfcl/BFCL_v4_${category}.json`,
    ...(category === 'irrelevance' ? {} : { answers: `data/bfcl/possible_answer/BFCL_v4_${category}.json` }),
  }),
);

/** The demo loop's config: the simulated stack for every role, BFCL's non-live files as the held-out set. */
export function demoConfig(input: {
  name: string;
  simUrl: string;
  seedDataset: string;
  iterations: number;
  seed: number;
  initialSize: number;
  /** Where the loop trains. @default the sim server's trainer */
  training?: Record<string, unknown>;
}): LoopConfig {
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
    training: input.training ?? { backend: 'sim', url: input.simUrl },
    iterations: input.iterations,
    reward: 'exact',
    judge: { votes: 3 },
    expand: { k: 4 },
    evaluation: { sets: [{ name: 'bfcl', files: BFCL_EVAL_FILES }] },
    concurrency: { batches: 4 },
  });
}

/** The options of `looptool demo`. */
interface DemoOptions {
  name?: string;
  iterations?: number;
  seed: number;
  samples?: number;
  real?: boolean;
  training: DemoTraining;
}

/** Where `looptool demo --training` trains: each engine runs `looptool sim train {spec}` as its job, except `sim`. */
const DEMO_TRAINING = ['sim', 'ray', 'slurm'] as const;
type DemoTraining = (typeof DEMO_TRAINING)[number];

/** A training engine the demo started for its loop: the loop's training config, and how to stop the engine. */
interface DemoEngine {
  training: Record<string, unknown>;
  stop(): Promise<void>;
}

/**
 * Starts the engine `--training` names, whose jobs run the simulated trainer as a recipe runs on a cluster
 * (`looptool sim train {spec}`): the same checkpoints as the sim server's trainer, so the same seed builds the same
 * datasets on every engine. `sim` starts nothing (the sim server's trainer API).
 */
async function startDemoEngine(kind: DemoTraining, input: { simUrl: string; dir: string }): Promise<DemoEngine> {
  const job = [process.execPath, path.join(PROJECT_ROOT, 'bin', 'looptool.js'), 'sim', 'train', '{spec}'];
  switch (kind) {
    case 'sim':
      return { training: { backend: 'sim', url: input.simUrl }, stop: async () => {} };
    case 'ray': {
      const head = await startRayHead({ log: (line) => console.log(line) });
      console.log(`Ray head at ${head.address} (dashboard and Jobs API); jobs run \`looptool sim train {spec}\`.`);
      // The worker in this process finds the token where every worker does, in its environment.
      const tokenBefore = process.env.RAY_AUTH_TOKEN;
      process.env.RAY_AUTH_TOKEN = head.token;
      return {
        training: { backend: 'ray', address: head.address, command: job, workDir: path.join(input.dir, 'ray') },
        stop: async () => {
          if (tokenBefore === undefined) delete process.env.RAY_AUTH_TOKEN;
          else process.env.RAY_AUTH_TOKEN = tokenBefore;
          await head.stop();
        },
      };
    }
    case 'slurm': {
      // Kept under the data dir, so later demos continue its job ids; stopped (jobs cancelled) when the demo ends.
      const cluster = await startSlurmCluster({
        dir: path.join(input.dir, 'slurm-cluster'),
        log: (line) => console.log(line),
      });
      console.log(`Slurm jobs run \`looptool sim train {spec}\` through sbatch; SLURM_CONF=${cluster.conf}.`);
      // The worker in this process runs Slurm's client commands, which find the cluster through SLURM_CONF.
      const confBefore = process.env.SLURM_CONF;
      process.env.SLURM_CONF = cluster.conf;
      return {
        training: { backend: 'slurm', command: job, workDir: path.join(input.dir, 'slurm') },
        stop: async () => {
          if (confBefore === undefined) delete process.env.SLURM_CONF;
          else process.env.SLURM_CONF = confBefore;
          await cluster.stop();
        },
      };
    }
  }
}

/**
 * `looptool demo`: the main job on the embedded default. Brings up Temporal and PostgreSQL, the simulated model stack
 * (student, judge, generator, trainer) and a worker in this process; generates and imports seed data with a known
 * share of wrong labels; runs the loop with live progress; prints what each iteration did. The services stay up so
 * the run can be inspected in the UI and with `looptool data …`. With `--real`, the policy is a real model on CPU,
 * trained by real GRPO steps and redeployed by restarting its server (see `runRealDemo`).
 */
export function register(program: Command): void {
  program
    .command('demo')
    .description(
      'Run a complete LoopTool loop on the embedded default (embedded Temporal + PostgreSQL, simulated models)',
    )
    .option('--name <loop>', 'loop name (default: demo-s<seed>-<time>)', nameOption('loop'))
    .option('--iterations <n>', 'iterations to run (default: 3; 2 with --real)', integerOption(1, 100))
    .option('--seed <n>', 'seed of the simulated world and of the loop', integerOption(0, 2 ** 31), 7)
    .option(
      '--samples <n>',
      'seed samples to generate (default: 800); with --real, |D_1| drawn from data/real-path/seed.jsonl (default: 12)',
      integerOption(1, 10_000_000),
    )
    .option(
      '--real',
      'a real policy on CPU: Qwen2.5-Coder-0.5B-Instruct served by transformers, trained by TRL GRPO, redeployed by restart',
    )
    .addOption(
      new Option(
        '--training <engine>',
        "where the loop trains: the sim server's trainer, or a local engine whose job is `looptool sim train` (same datasets)",
      )
        .choices(DEMO_TRAINING)
        .default('sim'),
    )
    .action(async (options: DemoOptions) => {
      Runtime.install({ logger: new DefaultLogger('WARN') });
      if (options.real && options.training !== 'sim')
        throw new InvalidArgumentError(
          `--training ${options.training} runs the simulated trainer; --real trains with TRL`,
        );
      if (options.real) {
        const { runRealDemo } = await import('./demo-real.js');
        await runRealDemo(options);
      } else await runSimDemo(options);
    });
}

/** What a demo needs while its loop runs: the services, the database, the loop client. */
export interface DemoContext {
  settings: ReturnType<typeof cliSettings>;
  services: Awaited<ReturnType<typeof servicesUp>>;
  pool: Awaited<ReturnType<typeof openDatabase>>;
  loops: LoopClient;
  started: number;
}

/** Starts the services, the database pool and the loop client, runs `body`, and closes what it opened. */
export async function withDemoServices(body: (demo: DemoContext) => Promise<void>): Promise<void> {
  const started = Date.now();
  const settings = cliSettings();
  console.log('Starting services (Temporal dev server, PostgreSQL)…');
  const services = await servicesUp(settings, (line) => console.log(line));
  const pool = await openDatabase({ url: services.database.url, applicationName: 'looptool-demo' });
  const loops = await LoopClient.connect(services.temporal.address, settings.temporal.namespace);
  try {
    await body({ settings, services, pool, loops, started });
  } finally {
    await loops.close();
    await pool.end();
  }
}

/** Generates the simulated seed data and imports it as a dataset; returns its name. */
export async function importSeedData(
  demo: DemoContext,
  options: { seed: number; samples: number; dir: string },
): Promise<string> {
  const seedFile = path.join(options.dir, `seed-${options.seed}-${options.samples}.jsonl`);
  const summary = await writeSeedData(seedFile, { count: options.samples, seed: options.seed });
  const seedDataset = `demo-seed-s${options.seed}-n${options.samples}`;
  const staged = await stageFile({
    pool: demo.pool,
    file: seedFile,
    format: 'openai',
    purpose: 'import',
    target: seedDataset,
  });
  await versionFromImport(demo.pool, {
    dataset: seedDataset,
    batchId: staged.batchId,
    note: `simulated seed data, seed ${options.seed}`,
  });
  console.log(
    `Seed data: ${staged.staged} samples (${summary.corrupted} with wrong labels) imported as ${seedDataset}.`,
  );
  return seedDataset;
}

/** The default loop name of a demo: `<prefix>-s<seed>-<utc time>`. */
export function demoLoopName(prefix: string, seed: number): string {
  return `${prefix}-s${seed}-${new Date().toISOString().slice(0, 19).replace(/[-:T]/g, '').toLowerCase()}`;
}

/**
 * Starts the loop with a worker in this process (the same worker `looptool worker` runs, configured by the same
 * environment), prints progress until it ends, then its status, the label and expansion counts, and the report.
 */
export async function runDemoLoop(demo: DemoContext, loopName: string, config: LoopConfig): Promise<void> {
  const { settings, services, pool, loops } = demo;
  const worker: LooptoolWorker = await startWorker(loadWorkerConfig());
  try {
    const start = await loops.start({ loopName, config, configHash: contentHash(config), queues: settings.queues });
    const uiUrl = `${services.temporal.uiUrl ?? services.temporal.address}/namespaces/${settings.temporal.namespace}/workflows/${encodeURIComponent(start.workflowId)}`;
    console.log(`${start.started ? 'Started' : 'Joined'} loop ${loopName}; UI: ${uiUrl}`);

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
    const corrected = await countCorrectedLabels(pool, loopName);
    const expansions = await countExpansionsByStatus(pool, loopName);
    console.log(
      `\nLabels corrected: ${corrected}. Expansions: ${expansions.map((r) => `${r.status} ${r.n}`).join(', ') || 'none'}.`,
    );
    const report = writeReport(await buildLoopReport(pool, loopName), path.join(settings.dataDir, 'reports', loopName));
    console.log(`Done in ${Math.round((Date.now() - demo.started) / 1000)} s.`);
    console.log(`Report:      ${report.html}${report.pngNote ? ` (${report.pngNote})` : ''}`);
    if (services.temporal.uiUrl) console.log(`Temporal UI: ${uiUrl}`);
    console.log(`Datasets:    looptool data versions --loop ${loopName}`);
    console.log('The services keep running for inspection; stop them with `npm run services:down`.');
  } finally {
    await worker.shutdown().catch(() => {});
  }
}

async function runSimDemo(options: DemoOptions): Promise<void> {
  const samples = options.samples ?? 800;
  await withDemoServices(async (demo) => {
    const sim = await startSimServer({ seed: options.seed, trainer: { jobSeconds: 1 } });
    let engine: DemoEngine | undefined;
    try {
      console.log(`Simulated model stack at ${sim.url} (student, judge, generator, trainer).`);
      const demoDir = path.join(demo.settings.dataDir, 'demo');
      mkdirSync(demoDir, { recursive: true });
      engine = await startDemoEngine(options.training, { simUrl: sim.url, dir: demoDir });
      const seedDataset = await importSeedData(demo, { seed: options.seed, samples, dir: demoDir });
      const loopName = options.name ?? demoLoopName('demo', options.seed);
      const config = demoConfig({
        name: loopName,
        simUrl: sim.url,
        seedDataset,
        iterations: options.iterations ?? 3,
        seed: options.seed,
        initialSize: Math.round(samples * 0.65),
        training: engine.training,
      });
      await runDemoLoop(demo, loopName, config);
    } finally {
      await engine?.stop();
      await sim.close();
    }
  });
}

function progressLine(
  status: LoopStatus & {
    running?: { done: number; total: number; counts: Record<string, number> };
    training?: TrainingProgress;
  },
): string {
  // A stage that has not planned its batches yet has none to count.
  const running = status.running?.total
    ? ` ${status.running.done}/${status.running.total} batches`
    : status.training && status.stage === 'train'
      ? ` ${status.training.engine} ${status.training.status}, step ${status.training.step}/${status.training.totalSteps}`
      : '';
  const accuracy = status.history.at(-1)?.accuracy;
  return `  iteration ${status.iteration}/${status.iterations}: ${status.stage}${running}${status.paused ? ' (paused)' : ''}${
    accuracy !== undefined && accuracy !== null ? `, last accuracy ${(accuracy * 100).toFixed(1)}%` : ''
  }`;
}
