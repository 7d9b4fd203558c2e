import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { type ChildProcess, spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { inject } from 'vitest';
import { LoopConfig } from '../../core/config.js';
import { taskQueues } from '../../core/constants.js';
import { contentHash } from '../../core/hash.js';
import { stageFile, versionFromImport } from '../../datasets/import.js';
import { LoopClient } from '../../client/loop-client.js';
import { startSimServer, type SimServer } from '../../sim/server.js';
import { writeSeedData } from '../../sim/seed-data.js';
import { LOOPTOOL_BIN } from './cli.js';
import { createTestDatabase, type TestDatabase } from './db.js';

/**
 * Everything a loop test needs on the suite's real servers: its own database, its own simulated model stack, seed
 * data imported as a dataset, task queues nobody else polls, and worker processes it can start and kill.
 */
export interface LoopFixture {
  db: TestDatabase;
  sim: SimServer;
  loops: LoopClient;
  suffix: string;
  seedDataset: string;
  env: NodeJS.ProcessEnv;
  config(overrides: { name: string } & Partial<Record<string, unknown>>): LoopConfig;
  start(config: LoopConfig): Promise<void>;
  startWorker(): ChildProcess;
  close(): Promise<void>;
}

export async function createLoopFixture(
  options: {
    samples?: number;
    seed?: number;
    trainSeconds?: number;
    trainConcurrency?: number;
    /** The sim's BFCL data folder (bfcl-eval's `bfcl_eval/data/` for the harness backend); default data/bfcl. */
    bfclDir?: string;
  } = {},
): Promise<LoopFixture> {
  const db = await createTestDatabase();
  const sim = await startSimServer({
    port: 0,
    seed: options.seed ?? 7,
    ...(options.bfclDir ? { bfclDir: options.bfclDir } : {}),
    trainer: {
      jobSeconds: options.trainSeconds ?? 0.5,
      ...(options.trainConcurrency ? { concurrency: options.trainConcurrency } : {}),
    },
  });
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'looptool-loop-'));
  const seedFile = path.join(scratch, 'seed.jsonl');
  await writeSeedData(seedFile, { count: options.samples ?? 240, seed: options.seed ?? 7 });
  const seedDataset = 'fixture-seed';
  const staged = await stageFile({
    pool: db.pool,
    file: seedFile,
    format: 'openai',
    purpose: 'import',
    target: seedDataset,
  });
  await versionFromImport(db.pool, { dataset: seedDataset, batchId: staged.batchId });
  const suffix = `-t${randomBytes(4).toString('hex')}`;
  const loops = await LoopClient.connect(inject('temporalAddress'));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    DATABASE_URL: db.url,
    LOOPTOOL_TASK_QUEUE_SUFFIX: suffix,
    LOOPTOOL_ARTIFACTS_DIR: path.join(scratch, 'artifacts'),
    LOOPTOOL_SHUTDOWN_GRACE_SECONDS: '1',
    LOOPTOOL_MIGRATE_ON_START: 'false',
  };
  const workers: ChildProcess[] = [];
  return {
    db,
    sim,
    loops,
    suffix,
    seedDataset,
    env,
    config: ({ name, ...overrides }) =>
      LoopConfig.parse({
        name,
        seed: options.seed ?? 7,
        data: { seedDataset, initialSize: Math.round((options.samples ?? 240) * 0.6) },
        models: {
          policy: { baseUrls: [sim.baseURL], model: sim.policyModel, maxConcurrency: 8 },
          judge: { baseUrls: [sim.baseURL], model: sim.judgeModel, maxConcurrency: 8 },
          generator: { baseUrls: [sim.baseURL], model: sim.generatorModel, maxConcurrency: 8 },
        },
        training: { backend: 'sim', url: sim.url },
        iterations: 2,
        probe: { batchSize: 40 },
        judge: { votes: 3, batchSize: 40 },
        expand: { k: 2, batchSize: 20 },
        timeouts: { batchHeartbeatSeconds: 4, trainHeartbeatSeconds: 4 },
        concurrency: { batches: 2 },
        ...overrides,
      }),
    start: async (config) => {
      await loops.start({
        loopName: config.name!,
        config,
        configHash: contentHash(config),
        queues: taskQueues(suffix),
      });
    },
    startWorker: () => {
      const child = spawn(process.execPath, [LOOPTOOL_BIN, 'worker'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout?.resume();
      child.stderr?.resume();
      workers.push(child);
      return child;
    },
    close: async () => {
      for (const child of workers) if (child.exitCode === null) child.kill('SIGKILL');
      await loops.close();
      await sim.close();
      await db.drop();
      rmSync(scratch, { recursive: true, force: true });
    },
  };
}

/** Polls `check` until it returns a truthy value (or the deadline passes, which fails with `what`). */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  timeoutMs = 120_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A loop's datasets as comparable data: per iteration, its members' sample ids with roles, sorted. */
export async function loopDatasets(db: TestDatabase, loopName: string): Promise<Record<number, string[]>> {
  const { rows } = await db.pool.query<{ iteration: number; sample_id: string; role: string }>(
    `SELECT v.iteration, s.id AS sample_id, m.role FROM dataset_versions v
     JOIN dataset_members m ON m.version_id = v.id JOIN samples s ON s.seq = m.sample_seq
     WHERE v.loop_name = $1 ORDER BY v.iteration, s.id`,
    [loopName],
  );
  const out: Record<number, string[]> = {};
  for (const row of rows) (out[row.iteration] ??= []).push(`${row.sample_id}:${row.role}`);
  return out;
}
