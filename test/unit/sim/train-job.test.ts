import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Grpo, LoraConfig } from '../../../core/config.js';
import { sampleToVerlRow } from '../../../core/formats/verl.js';
import { CheckpointManifest, TrainingJobSpec } from '../../../core/training.js';
import { writeVerlParquet } from '../../../datasets/writers.js';
import { readCheckpoint } from '../../../sim/checkpoint.js';
import { generateSeedData } from '../../../sim/seed-data.js';
import { startSimServer, type SimServer } from '../../../sim/server.js';
import { runSimTrainJob, SIM_ADAPTER_DIR } from '../../../sim/train-job.js';
import type { TrainerJob } from '../../../sim/trainer.js';

/**
 * `looptool sim train`'s job (runSimTrainJob) against the sim server's HTTP trainer: one student for the same dataset,
 * base and epochs, whichever way the job ran, and an adapter the sim policy server loads.
 */

const scratch = mkdtempSync(path.join(os.tmpdir(), 'sim-train-job-'));
let sim: SimServer;
let dataset: string;
beforeAll(async () => {
  sim = await startSimServer({ bfclDir: false, trainer: { jobSeconds: 0 } });
  dataset = path.join(scratch, 'train.parquet');
  const rows = generateSeedData({ count: 120, seed: 5, wrongLabelRate: 0.2 }).map((s, index) => {
    const row = sampleToVerlRow({ sample: s.sample, index });
    if (!row.ok) throw new Error(row.rejection.reason);
    return row.value;
  });
  await writeVerlParquet(dataset, rows);
});
afterAll(async () => {
  await sim?.close();
  rmSync(scratch, { recursive: true, force: true });
});

/** A job spec as trainIteration writes it, into its own job folder. */
function writeSpec(name: string, init: CheckpointManifest | null, extra: Record<string, unknown> = {}): string {
  const spec = TrainingJobSpec.parse({
    jobKey: `loop-a-iter-${name}`,
    loopName: 'loop-a',
    iteration: 1,
    seed: 7,
    dataset: { path: dataset, format: 'verl-parquet', rows: 120 },
    baseModel: 'sim-student',
    init,
    weights: 'lora',
    lora: LoraConfig.parse({}),
    grpo: Grpo.parse({ epochs: 2 }),
    reward: { mode: 'exact' },
    outputDir: path.join(scratch, name, 'checkpoint'),
    ...extra,
  });
  const dir = path.join(scratch, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'spec.json');
  writeFileSync(file, JSON.stringify(spec));
  return file;
}

/** Trains the same job through the sim server's trainer API and returns its checkpoint folder. */
async function trainOverHttp(jobKey: string, baseCheckpoint: string | null, outputDir: string): Promise<TrainerJob> {
  const response = await fetch(`${sim.trainerURL}/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      job_key: jobKey,
      dataset_path: dataset,
      base_checkpoint: baseCheckpoint,
      output_dir: outputDir,
      epochs: 2,
    }),
  });
  expect(response.status).toBe(201);
  let job = (await response.json()) as TrainerJob;
  while (job.status === 'queued' || job.status === 'running') {
    await new Promise((resolve) => setTimeout(resolve, 10));
    job = (await (await fetch(`${sim.trainerURL}/jobs/${job.id}`)).json()) as TrainerJob;
  }
  expect(job.status, job.error).toBe('succeeded');
  return job;
}

describe('looptool sim train (one simulated job in the foreground)', () => {
  test('writes progress, the adapter and the manifest; the adapter equals the HTTP trainer checkpoint, also warm-started', async () => {
    const lines: string[] = [];
    const specFile = writeSpec('one', null);
    const manifest = await runSimTrainJob(specFile, { secondsPerJob: 0, bfclDir: false, log: (l) => lines.push(l) });
    const outputDir = path.join(scratch, 'one', 'checkpoint');
    const written = CheckpointManifest.parse(JSON.parse(readFileSync(path.join(outputDir, 'checkpoint.json'), 'utf8')));
    expect(written).toEqual(manifest);
    expect(manifest).toMatchObject({
      kind: 'lora',
      path: path.join(outputDir, SIM_ADAPTER_DIR),
      baseModel: 'sim-student',
      steps: Math.ceil((120 * 2) / 32),
      metrics: { samples: 120, correct_labels: 96, wrong_labels: 24, unknown_labels: 0, rejected_rows: 0 },
    });
    expect(JSON.parse(readFileSync(path.join(outputDir, 'progress.json'), 'utf8'))).toEqual({
      step: manifest.steps,
      total_steps: manifest.steps,
    });
    expect(lines.join('\n')).toContain(`step ${manifest.steps}/${manifest.steps}`);

    const http = await trainOverHttp('loop-a-iter-one', null, path.join(scratch, 'http-one'));
    const adapter = await readCheckpoint(manifest.path);
    expect(adapter).toEqual(await readCheckpoint(http.checkpoint_uri as string));
    expect(manifest.metrics).toEqual(http.metrics);

    // Iteration 2 warm-starts from iteration 1's manifest (spec.init), as the HTTP trainer from its checkpoint folder.
    const second = await runSimTrainJob(writeSpec('two', manifest, { jobKey: 'loop-a-iter-two' }), {
      secondsPerJob: 0,
      bfclDir: false,
      log: () => {},
    });
    const httpTwo = await trainOverHttp('loop-a-iter-two', http.checkpoint_uri as string, path.join(scratch, 'h2'));
    const two = await readCheckpoint(second.path);
    expect(two).toEqual(await readCheckpoint(httpTwo.checkpoint_uri as string));
    expect(two.lineage).toEqual([adapter.id, two.id]);
  });

  test('the adapter folder loads into the sim policy server as a LoRA adapter', async () => {
    const manifest = await runSimTrainJob(writeSpec('served', null), {
      secondsPerJob: 0,
      bfclDir: false,
      log: () => {},
    });
    const load = await fetch(`${sim.baseURL}/load_lora_adapter`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ lora_name: 'iter-1', lora_path: manifest.path }),
    });
    expect(load.status, await load.text()).toBe(200);
    const models = (await (await fetch(`${sim.baseURL}/models`)).json()) as { data: { id: string; root: string }[] };
    expect(models.data.find((m) => m.id === 'iter-1')?.root).toBe(manifest.path);
    expect(sim.stats().adapters).toContain('iter-1');
  });

  test('--fail-after-step fails after reporting that step, leaving no manifest (not even an earlier run of it)', async () => {
    const specFile = writeSpec('fails', null);
    await runSimTrainJob(specFile, { secondsPerJob: 0, bfclDir: false, log: () => {} });
    await expect(
      runSimTrainJob(specFile, { secondsPerJob: 0, failAfterStep: 2, bfclDir: false, log: () => {} }),
    ).rejects.toThrow('injected failure after step 2/8 (--fail-after-step)');
    const outputDir = path.join(scratch, 'fails', 'checkpoint');
    expect(JSON.parse(readFileSync(path.join(outputDir, 'progress.json'), 'utf8'))).toEqual({
      step: 2,
      total_steps: 8,
    });
    expect(existsSync(path.join(outputDir, 'checkpoint.json'))).toBe(false);
  });

  test('with a hold file it stays running after its last step until the file is gone, then finishes', async () => {
    const hold = path.join(scratch, 'hold');
    writeFileSync(hold, '');
    const lines: string[] = [];
    const job = runSimTrainJob(writeSpec('held', null), {
      secondsPerJob: 0,
      holdFile: hold,
      bfclDir: false,
      log: (l) => lines.push(l),
    });
    const manifestFile = path.join(scratch, 'held', 'checkpoint', 'checkpoint.json');
    while (!lines.some((l) => l.startsWith('held at step 8/8'))) await new Promise((r) => setTimeout(r, 10));
    expect(existsSync(manifestFile)).toBe(false);
    rmSync(hold);
    expect((await job).steps).toBe(8);
    expect(existsSync(manifestFile)).toBe(true);
  });

  test('a spec that is not a job spec is refused naming the file and the field', async () => {
    const file = path.join(scratch, 'bad-spec.json');
    writeFileSync(file, JSON.stringify({ jobKey: 'x', dataset: { path: dataset } }));
    await expect(runSimTrainJob(file, { secondsPerJob: 0, log: () => {} })).rejects.toThrow(`${file}: loopName:`);
    writeFileSync(file, '{not json');
    await expect(runSimTrainJob(file, { secondsPerJob: 0, log: () => {} })).rejects.toThrow(`${file}: not JSON`);
  });
});
