import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { policyPrompt } from '../../../core/formats/policy-prompt.js';
import { sampleToVerlRow } from '../../../core/formats/verl.js';
import type { JsonValue } from '../../../core/json.js';
import { exportSamples, writeJsonLines, writeVerlParquet } from '../../../datasets/writers.js';
import { readCheckpoint } from '../../../sim/checkpoint.js';
import { generateSeedData } from '../../../sim/seed-data.js';
import { readTrainingData } from '../../../sim/training-data.js';
import { SimTrainer, type TrainerJob } from '../../../sim/trainer.js';
import { TruthResolver } from '../../../sim/truth.js';
import { getWorld } from '../../../sim/world.js';

const scratch = mkdtempSync(path.join(os.tmpdir(), 'sim-trainer-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const resolver = new TruthResolver({ world: getWorld(), bfclDir: false });

async function verlFile(
  name: string,
  options: { count: number; seed: number; wrongLabelRate: number },
): Promise<string> {
  const file = path.join(scratch, name);
  const rows = generateSeedData(options).map((s, index) => {
    const row = sampleToVerlRow({ sample: s.sample, index });
    if (!row.ok) throw new Error(row.rejection.reason);
    return row.value;
  });
  await writeVerlParquet(file, rows);
  return file;
}

/** Polls a job until `done` (the deadline only turns a hang into a failure; nothing is asserted on time). */
async function until(
  trainer: SimTrainer,
  id: string,
  done: (job: TrainerJob) => boolean,
  what: string,
): Promise<TrainerJob> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const job = trainer.get(id) as TrainerJob;
    if (done(job)) return job;
    if (Date.now() > deadline) throw new Error(`job ${id}: timed out waiting for ${what} (${job.status})`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const settled = (trainer: SimTrainer, id: string): Promise<TrainerJob> =>
  until(trainer, id, (job) => !['queued', 'running'].includes(job.status), 'the job to finish');

describe('the simulated trainer', () => {
  test('trains on a verl parquet file: counts right and wrong labels, accumulates exposure, writes the checkpoint', async () => {
    const trainer = new SimTrainer({ resolver, jobSeconds: 0.05 });
    const dataset = await verlFile('noisy.parquet', { count: 200, seed: 3, wrongLabelRate: 0.25 });
    const output = path.join(scratch, 'ckpt-1');
    const submitted = trainer.submit({
      job_key: 'loop/a/iter-1/train',
      dataset_path: dataset,
      base_checkpoint: null,
      output_dir: output,
      epochs: 2,
    });
    expect(submitted.kind).toBe('created');
    const job = await settled(trainer, submitted.job.id);
    expect(job).toMatchObject({
      status: 'succeeded',
      step: job.total_steps,
      checkpoint_uri: output,
      metrics: { samples: 200, correct_labels: 150, wrong_labels: 50, unknown_labels: 0 },
    });
    expect(job.total_steps).toBe(Math.ceil((200 * 2) / 32));
    const checkpoint = await readCheckpoint(output);
    expect(checkpoint.id).toBe(job.checkpoint_id);
    expect(checkpoint.base).toBeNull();
    expect(checkpoint.exposure.good.call! + (checkpoint.exposure.good.no_call ?? 0)).toBe(150 * 2);
    expect(checkpoint.exposure.bad.call! + (checkpoint.exposure.bad.no_call ?? 0)).toBe(50 * 2);
    expect(trainer.logs(job.id)?.join('\n')).toMatch(/200 samples \(150 correct labels, 50 wrong/);
    trainer.close();
  });

  test('continues from a base checkpoint: exposure adds up, lineage grows, and the id depends only on base, data and epochs', async () => {
    const trainer = new SimTrainer({ resolver, jobSeconds: 0.02 });
    const dataset = await verlFile('clean.parquet', { count: 100, seed: 4, wrongLabelRate: 0 });
    const first = trainer.submit({ job_key: 'k1', dataset_path: dataset, output_dir: path.join(scratch, 'c1') });
    const one = await settled(trainer, first.job.id);
    const second = trainer.submit({
      job_key: 'k2',
      dataset_path: dataset,
      base_checkpoint: one.checkpoint_uri as string,
      output_dir: path.join(scratch, 'c2'),
    });
    const two = await settled(trainer, second.job.id);
    const c1 = await readCheckpoint(path.join(scratch, 'c1'));
    const c2 = await readCheckpoint(path.join(scratch, 'c2', 'checkpoint.json'));
    expect(c2.base).toBe(c1.id);
    expect(c2.lineage).toEqual([c1.id, c2.id]);
    expect(c2.exposure.good.call).toBe(2 * (c1.exposure.good.call as number));
    const again = new SimTrainer({ resolver, jobSeconds: 0.02 });
    const replay = await settled(
      again,
      again.submit({ job_key: 'other-key', dataset_path: dataset, output_dir: path.join(scratch, 'c3') }).job.id,
    );
    expect(replay.checkpoint_id).toBe(one.checkpoint_id);
    expect(two.checkpoint_id).not.toBe(one.checkpoint_id);
    trainer.close();
    again.close();
  });

  test('reads OpenAI chat JSONL too', async () => {
    const trainer = new SimTrainer({ resolver, jobSeconds: 0 });
    const file = path.join(scratch, 'data.jsonl');
    await writeJsonLines(
      file,
      generateSeedData({ count: 40, seed: 8, wrongLabelRate: 0.1 }).map((s) => s.record as JsonValue),
    );
    const job = await settled(
      trainer,
      trainer.submit({ job_key: 'jsonl', dataset_path: file, output_dir: path.join(scratch, 'c4') }).job.id,
    );
    expect(job).toMatchObject({ status: 'succeeded', metrics: { samples: 40, correct_labels: 36, wrong_labels: 4 } });
    trainer.close();
  });

  test('reads the TRL GRPO export: the same samples as the verl export of the same data, each rendering its prompt again', async () => {
    const seeds = generateSeedData({ count: 40, seed: 8, wrongLabelRate: 0.1 });
    const trl = path.join(scratch, 'export.trl.jsonl');
    const verl = path.join(scratch, 'export.parquet');
    for (const [file, format] of [
      [trl, 'trl-jsonl'],
      [verl, 'verl-parquet'],
    ] as const)
      expect(await exportSamples({ samples: seeds.map((s) => s.sample), format, file })).toEqual({
        written: 40,
        rejected: [],
      });
    const fromTrl = await readTrainingData(trl);
    const fromVerl = await readTrainingData(verl);
    expect(fromTrl).toMatchObject({ format: 'jsonl', rejected: 0 });
    expect(fromVerl).toMatchObject({ format: 'verl-parquet', rejected: 0 });
    expect(fromTrl.samples).toEqual(fromVerl.samples);
    // What comes back is what the trainer showed the policy: the same chat and label (tool-call ids are not in it).
    expect(fromTrl.samples.map(policyPrompt)).toEqual(seeds.map((s) => policyPrompt(s.sample)));
    expect(fromTrl.samples.map((s) => s.target)).toEqual(seeds.map((s) => s.sample.target));

    const trainer = new SimTrainer({ resolver, jobSeconds: 0 });
    const job = await settled(
      trainer,
      trainer.submit({ job_key: 'trl', dataset_path: trl, output_dir: path.join(scratch, 'c-trl') }).job.id,
    );
    expect(job).toMatchObject({ status: 'succeeded', metrics: { samples: 40, correct_labels: 36, wrong_labels: 4 } });
    trainer.close();
  });

  test('the same job key returns the same job; the same key with other parameters is a conflict', async () => {
    const trainer = new SimTrainer({ resolver, jobSeconds: 0.02 });
    const dataset = await verlFile('small.parquet', { count: 20, seed: 5, wrongLabelRate: 0 });
    const request = { job_key: 'same', dataset_path: dataset, output_dir: path.join(scratch, 'c5') };
    const first = trainer.submit(request);
    const second = trainer.submit(request);
    expect(second).toMatchObject({ kind: 'existing', job: { id: first.job.id } });
    expect(trainer.submit({ ...request, epochs: 7 }).kind).toBe('conflict');
    expect(trainer.list('same').map((j) => j.id)).toEqual([first.job.id]);
    await settled(trainer, first.job.id);
    expect(trainer.submit(request)).toMatchObject({ kind: 'existing', job: { status: 'succeeded' } });
    trainer.close();
  });

  test('an unreadable or empty dataset fails the job with the reason', async () => {
    const trainer = new SimTrainer({ resolver, jobSeconds: 0 });
    const missing = await settled(
      trainer,
      trainer.submit({
        job_key: 'missing',
        dataset_path: path.join(scratch, 'nope.parquet'),
        output_dir: path.join(scratch, 'x'),
      }).job.id,
    );
    expect(missing.status).toBe('failed');
    expect(missing.error).toMatch(/ENOENT/);
    const junk = path.join(scratch, 'junk.jsonl');
    writeFileSync(junk, 'not json\n{"a": 1}\n');
    const empty = await settled(
      trainer,
      trainer.submit({ job_key: 'junk', dataset_path: junk, output_dir: path.join(scratch, 'y') }).job.id,
    );
    expect(empty).toMatchObject({
      status: 'failed',
      error: expect.stringMatching(/no trainable samples \(2 rows rejected/) as unknown,
    });
    trainer.close();
  });

  test('cancelling stops a running job and a queued one, and writes no checkpoint', async () => {
    const trainer = new SimTrainer({ resolver, jobSeconds: 30 });
    const dataset = await verlFile('cancel.parquet', { count: 20, seed: 6, wrongLabelRate: 0 });
    const running = trainer.submit({
      job_key: 'long',
      dataset_path: dataset,
      output_dir: path.join(scratch, 'c6'),
    }).job;
    const queued = trainer.submit({ job_key: 'next', dataset_path: dataset, output_dir: path.join(scratch, 'c7') }).job;
    // Jobs run one at a time: the first has read its data and is stepping (its step count is known), the second waits.
    await until(
      trainer,
      running.id,
      (job) => job.status === 'running' && job.total_steps > 0,
      'the first job to be training',
    );
    expect(trainer.get(queued.id)?.status).toBe('queued');
    expect(trainer.cancel(queued.id)?.status).toBe('cancelled');
    expect(trainer.cancel(running.id)?.status).toBe('cancelled');
    // A job submitted now starts only once the cancelled one's run has ended (one at a time): when it is running, the
    // cancelled run is over, and it neither finished nor wrote a checkpoint.
    const after = trainer.submit({ job_key: 'after', dataset_path: dataset, output_dir: path.join(scratch, 'c8') }).job;
    await until(trainer, after.id, (job) => job.status === 'running', 'the next job to start');
    expect(trainer.get(running.id)?.status).toBe('cancelled');
    expect(trainer.get(queued.id)?.status).toBe('cancelled');
    await expect(readCheckpoint(path.join(scratch, 'c6'))).rejects.toThrow();
    await expect(readCheckpoint(path.join(scratch, 'c7'))).rejects.toThrow();
    trainer.close();
  });

  test('held, a running job does not finish until released', async () => {
    const trainer = new SimTrainer({ resolver, jobSeconds: 0 });
    const dataset = await verlFile('held.parquet', { count: 20, seed: 9, wrongLabelRate: 0 });
    trainer.hold(true);
    const job = trainer.submit({ job_key: 'held', dataset_path: dataset, output_dir: path.join(scratch, 'c9') }).job;
    // With no training time at all, the job is through its steps as soon as it has read its data; held, it waits there
    // (and says so in its log) instead of writing its checkpoint.
    await until(
      trainer,
      job.id,
      () => (trainer.logs(job.id) ?? []).some((line) => /held at step (\d+)\/\1 until the hold is released/.test(line)),
      'the job to be held',
    );
    expect(trainer.get(job.id)).toMatchObject({ status: 'running', step: trainer.get(job.id)!.total_steps });
    expect(trainer.get(job.id)?.checkpoint_uri).toBeUndefined();
    const next = trainer.submit({
      job_key: 'held-next',
      dataset_path: dataset,
      output_dir: path.join(scratch, 'c10'),
    }).job;
    expect(trainer.get(job.id)?.status).toBe('running');
    expect(trainer.get(next.id)?.status).toBe('queued');
    trainer.hold(false);
    expect(await settled(trainer, job.id)).toMatchObject({
      status: 'succeeded',
      checkpoint_uri: path.join(scratch, 'c9'),
    });
    expect(await settled(trainer, next.id)).toMatchObject({ status: 'succeeded' });
    trainer.close();
  });
});
