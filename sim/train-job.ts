/**
 * One simulated GRPO job, in the two places it runs: behind the sim server's trainer API (`SimTrainer`, jobs in
 * memory) and in the foreground as a recipe runs on a training engine (`looptool sim train <spec.json>`, a process a
 * Ray or Slurm job starts). Both compute the checkpoint with `simulateTraining`, so the same dataset, base checkpoint
 * and epochs give the same student whichever way the job ran, and a loop trained on an engine builds the same
 * datasets as one trained by the sim server.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ModelReply } from '../core/checker/index.js';
import { stringifyJson } from '../core/json.js';
import type { Target } from '../core/schemas/sample.js';
import {
  CHECKPOINT_MANIFEST_FILE,
  TRAINING_PROGRESS_FILE,
  TrainingJobSpec,
  type CheckpointManifest,
} from '../core/training.js';
import { CHECKPOINT_FORMAT, exposureOf, readCheckpoint, writeCheckpoint, type SimCheckpoint } from './checkpoint.js';
import { addExposure, type Exposure } from './skills.js';
import { readTrainingData } from './training-data.js';
import { TruthResolver } from './truth.js';
import { getWorld } from './world.js';

/** Samples per simulated optimizer step: sets a job's step count (the trainer API's `batchSize` overrides it). */
export const SIM_BATCH_SIZE = 32;
/** The folder under a job's output folder where `looptool sim train` writes the simulated adapter. */
export const SIM_ADAPTER_DIR = 'adapter';

/** What one simulated job trains on. */
export interface SimTrainingInput {
  /** Recorded in the checkpoint's `training` block (not part of its id). */
  jobKey: string;
  datasetPath: string;
  /** A checkpoint directory (or its checkpoint.json) to continue from; null for the base model. */
  baseCheckpoint: string | null;
  epochs: number;
  batchSize?: number;
}

/** The label counts of a job's dataset, as the trainer API reports them in `metrics`. */
export interface SimTrainingMetrics {
  samples: number;
  correct_labels: number;
  wrong_labels: number;
  unknown_labels: number;
  rejected_rows: number;
}

/** A simulated job's outcome, known as soon as its data is read; the job then only takes its simulated time. */
export interface SimTrainingResult {
  checkpoint: SimCheckpoint;
  metrics: SimTrainingMetrics;
  totalSteps: number;
  /** One log line describing the data, as a trainer prints it before its first step. */
  summary: string;
}

function replyForTarget(target: Target): ModelReply | undefined {
  if (target.kind === 'acceptable') return undefined;
  if (target.kind === 'text') return target.text ?? '';
  return {
    content: null,
    tool_calls: target.calls.map((c) => ({
      type: 'function',
      function: { name: c.name, arguments: stringifyJson(c.arguments) },
    })),
  };
}

/**
 * Reads the dataset (verl parquet or JSONL) and the base checkpoint, judges each label against the world's truth, and
 * adds each sample's skills × epochs to the base's exposure. The checkpoint id is a hash of (base id, dataset SHA-256,
 * epochs): the same inputs give the same student. Throws when the dataset or the base cannot be read.
 */
export async function simulateTraining(resolver: TruthResolver, input: SimTrainingInput): Promise<SimTrainingResult> {
  const data = await readTrainingData(path.resolve(input.datasetPath));
  const base = input.baseCheckpoint ? await readCheckpoint(path.resolve(input.baseCheckpoint)) : undefined;
  const exposure: Exposure = exposureOf(base);
  let correct = 0;
  let wrong = 0;
  let unknown = 0;
  for (const sample of data.samples) {
    const truth = resolver.resolve(sample.tools, sample.messages);
    const reply = replyForTarget(sample.target);
    if (!truth || reply === undefined) {
      unknown++;
      continue;
    }
    const right = resolver.isCorrect(truth, sample.tools, reply);
    if (right) correct++;
    else wrong++;
    addExposure(exposure, resolver.skills(truth, sample.tools), right, input.epochs);
  }
  const metrics: SimTrainingMetrics = {
    samples: data.samples.length,
    correct_labels: correct,
    wrong_labels: wrong,
    unknown_labels: unknown,
    rejected_rows: data.rejected,
  };
  const totalSteps = Math.max(1, Math.ceil((data.samples.length * input.epochs) / (input.batchSize ?? SIM_BATCH_SIZE)));
  const baseId = base?.id ?? null;
  const id = `ckpt-${createHash('sha256')
    .update(`${baseId ?? 'base'}|${data.sha256}|${input.epochs}`)
    .digest('hex')
    .slice(0, 16)}`;
  const checkpoint: SimCheckpoint = {
    format: CHECKPOINT_FORMAT,
    id,
    base: baseId,
    lineage: [...(base?.lineage ?? []), id],
    exposure: { good: { ...exposure.good }, bad: { ...exposure.bad } },
    training: {
      job_key: input.jobKey,
      dataset_path: input.datasetPath,
      dataset_sha256: data.sha256,
      epochs: input.epochs,
      samples: data.samples.length,
      correct_labels: correct,
      wrong_labels: wrong,
      unknown_labels: unknown,
    },
  };
  const summary = `${data.format}: ${data.samples.length} samples (${correct} correct labels, ${wrong} wrong, ${unknown} unknown, ${data.rejected} rejected rows); ${totalSteps} steps`;
  return { checkpoint, metrics, totalSteps, summary };
}

/**
 * The log line of a point in training: the epoch and a reward curve that rises as the share of clean labels allows,
 * as the real trainer's logs would show it.
 */
export function progressLogLine(
  metrics: SimTrainingMetrics,
  at: { fraction: number; step: number; totalSteps: number; epochs: number },
): string {
  const epoch = Math.min(at.epochs, 1 + Math.floor(at.fraction * at.epochs));
  const { correct_labels: correct, wrong_labels: wrong } = metrics;
  const reward = (0.55 + 0.4 * at.fraction * (correct / Math.max(1, correct + wrong))).toFixed(3);
  return `epoch ${epoch}/${at.epochs} step ${at.step}/${at.totalSteps} reward ${reward}`;
}

/** Pacing and injected faults of a foreground job (`looptool sim train`). */
export interface SimTrainJobOptions {
  /** Simulated training time once the data is read, spread evenly over the steps. */
  secondsPerJob: number;
  /** Exit with an error right after reporting this step (0: before the first one), for tests of failed jobs. */
  failAfterStep?: number;
  /** Stop advancing after reporting this step and never end (until killed), for tests of hung jobs. */
  hangAfterStep?: number;
  /**
   * After the last step, stay running while this file exists, then finish: a test holds a job certainly running
   * (to kill the worker that watches it, say) and lets it end when it is done, as the sim server's `holdTraining`.
   */
  holdFile?: string;
  /** BFCL data folder of the truth oracle, or false for none. @default the project's data/bfcl, as the sim server */
  bfclDir?: string | false;
  /** Where log lines go. @default stdout */
  log?: (line: string) => void;
}

/** `looptool sim train`'s default `--seconds-per-job`: a short job, as the demo's sim trainer takes. */
export const SIM_TRAIN_DEFAULT_SECONDS = 1;

/**
 * The environment variables behind `sim train`'s flags: a training engine's job (a Ray runtime_env, a Slurm batch
 * script's environment) can inject a failure or a hang without changing the command the loop config names.
 */
export const SIM_TRAIN_ENV = {
  secondsPerJob: 'LOOPTOOL_SIM_TRAIN_SECONDS_PER_JOB',
  failAfterStep: 'LOOPTOOL_SIM_TRAIN_FAIL_AFTER_STEP',
  hangAfterStep: 'LOOPTOOL_SIM_TRAIN_HANG_AFTER_STEP',
  holdFile: 'LOOPTOOL_SIM_TRAIN_HOLD_FILE',
} as const;

/** A spec file that cannot be used, with the file and the field that is wrong. */
export class SpecFileError extends Error {
  override name = 'SpecFileError';
}

/** Reads and validates a job spec (`spec.json`); throws a SpecFileError naming the file and the field. */
export async function readTrainingJobSpec(file: string): Promise<TrainingJobSpec> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new SpecFileError(`${file}: cannot read the job spec (${(err as Error).message})`, { cause: err });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new SpecFileError(`${file}: not JSON (${(err as Error).message})`, { cause: err });
  }
  const parsed = TrainingJobSpec.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new SpecFileError(`${file}: ${issue?.path.join('.') || '(spec)'}: ${issue?.message ?? 'invalid job spec'}`);
  }
  return parsed.data;
}

/** Writes a JSON file atomically (temp file, then rename): a poller on a shared filesystem never reads half of one. */
async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, `${JSON.stringify(value, null, 2)}\n`, 'utf8');
  await rename(temp, file);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs one job in the foreground, as a recipe does on a training engine: reads the job spec, computes the simulated
 * checkpoint, steps through its simulated time writing `<outputDir>/progress.json` (`{step, total_steps}`), writes the
 * sim checkpoint into `<outputDir>/adapter/` (what the sim server's `/v1/load_lora_adapter` loads) and last
 * `<outputDir>/checkpoint.json`, the manifest (core/training.ts). The manifest is written last and atomically, so
 * its presence means the adapter is complete.
 */
export async function runSimTrainJob(specFile: string, options: SimTrainJobOptions): Promise<CheckpointManifest> {
  const log = options.log ?? ((line: string) => console.log(line));
  const spec = await readTrainingJobSpec(specFile);
  const resolver = new TruthResolver({
    world: getWorld(),
    ...(options.bfclDir !== undefined ? { bfclDir: options.bfclDir } : {}),
  });
  const epochs = spec.grpo.epochs;
  log(`job ${spec.jobKey}: dataset ${spec.dataset.path}, base ${spec.init?.path ?? spec.baseModel}, ${epochs} epochs`);
  const result = await simulateTraining(resolver, {
    jobKey: spec.jobKey,
    datasetPath: spec.dataset.path,
    baseCheckpoint: spec.init?.path ?? null,
    epochs,
  });
  log(result.summary);
  const outputDir = path.resolve(spec.outputDir);
  const manifestFile = path.join(outputDir, CHECKPOINT_MANIFEST_FILE);
  await mkdir(outputDir, { recursive: true });
  // A manifest left by an earlier run of this spec would read as this run's success if this one fails.
  await rm(manifestFile, { force: true });
  const progressFile = path.join(outputDir, TRAINING_PROGRESS_FILE);
  const stepMs = (options.secondsPerJob * 1000) / result.totalSteps;
  for (let step = 0; step <= result.totalSteps; step++) {
    if (step > 0) {
      await sleep(stepMs);
      log(
        progressLogLine(result.metrics, {
          fraction: step / result.totalSteps,
          step,
          totalSteps: result.totalSteps,
          epochs,
        }),
      );
    }
    await writeJsonAtomic(progressFile, { step, total_steps: result.totalSteps });
    if (step === options.failAfterStep)
      throw new Error(`injected failure after step ${step}/${result.totalSteps} (--fail-after-step)`);
    if (step === options.hangAfterStep) {
      log(`hanging after step ${step}/${result.totalSteps} (--hang-after-step) until killed`);
      // A pending timer keeps the process alive, as a trainer stuck in a collective would stay.
      await new Promise<never>(() => setInterval(() => {}, 60_000));
    }
  }
  if (options.holdFile && existsSync(options.holdFile)) {
    log(`held at step ${result.totalSteps}/${result.totalSteps} while ${options.holdFile} exists`);
    while (existsSync(options.holdFile)) await sleep(100);
  }
  const adapterDir = path.join(outputDir, SIM_ADAPTER_DIR);
  await writeCheckpoint(adapterDir, result.checkpoint);
  const manifest: CheckpointManifest = {
    kind: 'lora',
    path: adapterDir,
    baseModel: spec.baseModel,
    steps: result.totalSteps,
    metrics: { ...result.metrics },
  };
  await writeJsonAtomic(manifestFile, manifest);
  log(`checkpoint ${result.checkpoint.id} written to ${adapterDir}`);
  return manifest;
}
