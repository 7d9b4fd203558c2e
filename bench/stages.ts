import { type ChildProcess, spawn } from 'node:child_process';
import { getEventListeners, once } from 'node:events';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import type pg from 'pg';
import { createActivityDeps } from '../activities/deps.js';
import { createProbeActivities, type ProbeBatchResult } from '../activities/probe.js';
import type { ProbeBatchInput, SeqRange } from '../core/inputs.js';
import { stageFile, versionFromImport } from '../datasets/import.js';
import { formatTable } from '../client/format.js';
import { startEmbeddedPostgres, stopEmbeddedPostgres } from '../services/embedded-postgres.js';
import { openDatabase } from '../db/open.js';
import { projectPath } from '../services/paths.js';
import { startSimServer } from '../sim/server.js';
import { measurePhase as phase } from './lib/measure.js';

/**
 * `stages` section: probe throughput (GCP) against the simulated model server with zero latency, on a fresh embedded
 * PostgreSQL, counting everything the activity does per sample: the page queries, the HTTP request and the sim's
 * answer, parsing, the checker, perplexity, and the batched writes of results and ledger rows. 100,000 seed samples are
 * generated (by the CLI, in a child process) and imported first: setup, not measured. Then `probeBatch` runs through
 * the SDK's activity Context (MockActivityEnvironment) the way the stage workflow runs it: seq-range batches, a few in
 * flight, one shared endpoint pool. Each run has its own loop name and a fresh sim server (no warm caches); this
 * process's RSS is sampled every 20 ms. The sim server runs in a child process (its own core, and RSS is the worker
 * side's alone); one run puts it in this process for comparison, and one runs 20,000 samples as a single activity.
 * Target (issue 5): at least 2,000 samples/s, memory flat from 20k to 100k samples.
 *
 * Knobs (environment): BENCH_STAGES_SAMPLES (default 100000), BENCH_STAGES_BATCH (samples per activity, default 1000),
 * BENCH_STAGES_BATCHES (activities in flight, default 2), BENCH_STAGES_CONCURRENCY (requests in flight, default 64),
 * BENCH_STAGES_PAGE (samples per page, default 250).
 */
const LOOPTOOL_BIN = projectPath('bin', 'looptool.js');

const TOTAL = Number(process.env.BENCH_STAGES_SAMPLES ?? 100_000);
const BATCH = Number(process.env.BENCH_STAGES_BATCH ?? 1000);
const BATCHES_IN_FLIGHT = Number(process.env.BENCH_STAGES_BATCHES ?? 2);
const CONCURRENCY = Number(process.env.BENCH_STAGES_CONCURRENCY ?? 64);
const PAGE = Number(process.env.BENCH_STAGES_PAGE ?? 250);

interface Run {
  label: string;
  size: number;
  sim: 'child' | 'in-process';
  /** Samples per activity. */
  batch: number;
  inFlight: number;
}

export async function run(): Promise<void> {
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'looptool-bench-stages-'));
  chmodSync(scratch, 0o755);
  const stateDir = path.join(scratch, 'pg');
  const server = await startEmbeddedPostgres({
    stateDir,
    port: 54100 + Math.floor(Math.random() * 400),
    database: 'bench',
  });
  const pool = await openDatabase({ url: server.url, applicationName: 'looptool-bench', max: 8 });
  const rows: (string | number)[][] = [];
  try {
    const setupStart = performance.now();
    const versionId = await importSeedData(pool, scratch, TOTAL);
    const seqs = (
      await pool.query<{ seq: string }>(
        'SELECT sample_seq AS seq FROM dataset_members WHERE version_id = $1::bigint ORDER BY sample_seq',
        [versionId],
      )
    ).rows.map((r) => Number(r.seq));
    console.log(
      `== stages: setup (${TOTAL.toLocaleString('en-US')} seed samples generated and imported) took ${((performance.now() - setupStart) / 1000).toFixed(1)} s`,
    );

    const small = Math.min(20_000, TOTAL);
    const runs: Run[] = [
      {
        label: `probe ${small.toLocaleString('en-US')}, sim in child process`,
        size: small,
        sim: 'child',
        batch: BATCH,
        inFlight: BATCHES_IN_FLIGHT,
      },
      ...(TOTAL > small
        ? [
            {
              label: `probe ${TOTAL.toLocaleString('en-US')}, sim in child process`,
              size: TOTAL,
              sim: 'child' as const,
              batch: BATCH,
              inFlight: BATCHES_IN_FLIGHT,
            },
          ]
        : []),
      {
        label: `probe ${small.toLocaleString('en-US')}, sim in this process`,
        size: small,
        sim: 'in-process',
        batch: BATCH,
        inFlight: BATCHES_IN_FLIGHT,
      },
      {
        label: `probe ${small.toLocaleString('en-US')} as one activity, sim in child`,
        size: small,
        sim: 'child',
        batch: small,
        inFlight: 1,
      },
    ];
    for (const spec of runs) rows.push(await probeRun(pool, versionId, seqs, spec));
  } finally {
    await pool.end();
    await stopEmbeddedPostgres(stateDir);
    rmSync(scratch, { recursive: true, force: true });
  }
  console.log(
    `== stages: probeBatch against the sim server (0 latency), embedded PostgreSQL 16; ${BATCH} samples per activity, ${BATCHES_IN_FLIGHT} activities and ${CONCURRENCY} requests in flight, ${PAGE} samples per page`,
  );
  console.log(
    formatTable(
      [
        'workload',
        'samples',
        'samples/s',
        'seconds',
        'DB query s (summed)',
        'RSS before MB',
        'peak RSS MB',
        'abort listeners left per activity',
      ],
      rows,
    ),
  );
}

/**
 * One measured run: its own loop name and a fresh sim server, batches of `spec.batch` members as seq ranges, at most
 * `spec.inFlight` activities at once over one endpoint pool. Also sums the wall time of the database queries (they
 * overlap, so this is load, not a share of the run) and counts the abort listeners each activity's cancellation
 * signal still holds when it returns.
 */
async function probeRun(
  pool: pg.Pool,
  versionId: number,
  seqs: readonly number[],
  spec: Run,
): Promise<(string | number)[]> {
  const loopName = `bench-${spec.size}-${spec.sim}-${spec.batch}`;
  await pool.query(
    `INSERT INTO loops (name, config, config_hash, workflow_id) VALUES ($1::text, '{}', 'bench', $2::text)`,
    [loopName, `loop/${loopName}`],
  );
  const sim = spec.sim === 'child' ? await startChildSim() : await inProcessSim();
  try {
    const db = timedPool(pool);
    // A fresh registry per run: one endpoint pool (and HTTP connections) for this run's server, shared by its batches.
    const probe = createProbeActivities(
      createActivityDeps({ pool: db.pool, artifactsDir: path.join(os.tmpdir(), 'looptool-bench-artifacts') }),
    ).probeBatch;
    const policy = { baseUrls: [sim.baseURL], maxConcurrency: CONCURRENCY, model: 'sim-student' };
    const ranges: SeqRange[] = [];
    for (let start = 0; start < spec.size; start += spec.batch) {
      ranges.push({
        afterSeq: start === 0 ? seqs[0]! - 1 : seqs[start - 1]!,
        lastSeq: seqs[Math.min(spec.size, start + spec.batch) - 1]!,
      });
    }
    let listeners = 0;
    const baseline = Math.round(process.memoryUsage().rss / 1e6);
    const { result, seconds, peakRssMb } = await phase(async () => {
      let probed = 0;
      let next = 0;
      await Promise.all(
        Array.from({ length: spec.inFlight }, async () => {
          while (next < ranges.length) {
            const batch = ranges[next++]!;
            const env = new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
            const input: ProbeBatchInput = {
              loopName,
              iteration: 1,
              versionId,
              batch,
              policy,
              checker: { mode: 'exact' },
              maxTokens: 1024,
              pageSize: PAGE,
            };
            const done = (await env.run(probe, input)) as ProbeBatchResult;
            probed += done.probed;
            listeners = Math.max(listeners, getEventListeners(env.context.cancellationSignal, 'abort').length);
          }
        }),
      );
      return probed;
    });
    if (result !== spec.size) throw new Error(`${spec.label}: probed ${result} of ${spec.size}`);
    return [
      spec.label,
      result,
      Math.round(result / seconds),
      Number(seconds.toFixed(1)),
      Number((db.queryMs() / 1000).toFixed(1)),
      baseline,
      peakRssMb,
      listeners,
    ];
  } finally {
    await sim.close();
  }
}

/** The pool with every query's wall time summed (pool.query and queries on checked-out clients). */
function timedPool(pool: pg.Pool): { pool: pg.Pool; queryMs(): number } {
  let total = 0;
  const timed = <T extends object>(target: T): T =>
    new Proxy(target, {
      get(obj, prop, receiver) {
        const value = Reflect.get(obj, prop, receiver) as unknown;
        if (prop === 'query' && typeof value === 'function') {
          return async (...args: unknown[]) => {
            const started = performance.now();
            try {
              return await (value as (...a: unknown[]) => Promise<unknown>).apply(obj, args);
            } finally {
              total += performance.now() - started;
            }
          };
        }
        if (prop === 'connect' && typeof value === 'function') {
          return async () => timed(await (value as () => Promise<pg.PoolClient>).apply(obj));
        }
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(obj) : value;
      },
    });
  return { pool: timed(pool), queryMs: () => total };
}

/** Seed data written by the CLI in a child process (its 100k samples never touch this process's heap), imported here. */
async function importSeedData(pool: pg.Pool, scratch: string, count: number): Promise<number> {
  const file = path.join(scratch, 'seed.jsonl');
  const child = spawn(
    process.execPath,
    [LOOPTOOL_BIN, 'sim', 'seed', '--out', file, '--count', String(count), '--seed', '7'],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`looptool sim seed exited with ${code}`);
  const staged = await stageFile({ pool, file, format: 'openai', purpose: 'import', target: 'bench-seed' });
  const { version } = await versionFromImport(pool, { dataset: 'bench-seed', batchId: staged.batchId });
  if (!version) throw new Error('the import made no version');
  return version.id;
}

interface SimHandle {
  baseURL: string;
  close(): Promise<void>;
}

/** `looptool sim serve --port 0` in a child process; resolves once it prints its URL. */
async function startChildSim(): Promise<SimHandle> {
  const child: ChildProcess = spawn(process.execPath, [LOOPTOOL_BIN, 'sim', 'serve', '--port', '0', '--seed', '7'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      const match = /Sim server: (\S+)/.exec(out);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`sim server exited with ${code} before it listened`)));
  });
  child.stdout!.resume();
  return {
    baseURL: `${url}/v1`,
    close: async () => {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    },
  };
}

async function inProcessSim(): Promise<SimHandle> {
  const server = await startSimServer({ port: 0, seed: 7 });
  return { baseURL: server.baseURL, close: () => server.close() };
}
