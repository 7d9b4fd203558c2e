import { spawn } from 'node:child_process';
import { getEventListeners, once } from 'node:events';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Session } from 'node:inspector/promises';
import { performance } from 'node:perf_hooks';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import type pg from 'pg';
import { createActivityDeps } from '../activities/deps.js';
import { createProbeActivities, type ProbeBatchResult } from '../activities/probe.js';
import { LoopConfig, ModelRoleConfig, ProbeConfig } from '../core/config.js';
import { ProbeBatchInput, type SeqRange } from '../core/inputs.js';
import { stageFile, versionFromImport } from '../datasets/import.js';
import { formatTable } from '../client/format.js';
import { startEmbeddedPostgres, stopEmbeddedPostgres } from '../services/embedded-postgres.js';
import { openDatabase } from '../db/open.js';
import { planSeqBatches } from '../db/queries/stage-batches.js';
import { createVersion, freezeVersion } from '../db/queries/versions.js';
import { projectPath } from '../services/paths.js';
import { startSimServer } from '../sim/server.js';
import { type Figure, perSecond } from './lib/figures.js';
import { startSim, stopChild } from './lib/stack.js';
import { measurePhase as phase } from './lib/measure.js';
import { postmasterPid, processCpuSeconds, processTreeCpuSeconds } from './lib/process-cpu.js';

/**
 * `stages` section: probe throughput (GCP) against the simulated model server with zero latency, on a fresh embedded
 * PostgreSQL, counting everything the activity does per sample: the page queries, the HTTP request and the sim's
 * answer, parsing, the checker, perplexity, and the batched writes of results and ledger rows. 100,000 seed samples are
 * generated (by the CLI, in a child process) and imported first: setup, not measured. Then `probeBatch` runs through
 * the SDK's activity Context (MockActivityEnvironment) the way the stage workflow runs it: seq-range batches, a few in
 * flight, one shared endpoint pool. Each run has its own loop name and a fresh sim server (no warm caches); this
 * process's RSS is sampled every 20 ms. The sim server runs in a child process (its own core, and RSS is the worker
 * side's alone); one run puts it in this process for comparison, and one runs 20,000 samples as a single activity.
 * Each run's CPU per sample is shown for the three processes sharing the 2 cores: this one (the worker's side), the
 * sim's, and PostgreSQL's (postmaster and backends; the pool's connections stay open across a run, so none is lost).
 *
 * The 1,000,000-sample run probes a version made by SQL, not by the CLI (generating and importing a million samples
 * takes about 15 minutes): the 100,000 imported samples are copied nine times under new ids (sha256 of the original id
 * and the copy number; the probe never recomputes an id from content), so every sample's prompt, answer and checker
 * work is one the 100k run also did. Runs go in the order 20k, 100k, 1M (all with the sim in a child process), so the
 * worker's peak RSS at 1M is compared with the same process at 20k.
 *
 * Targets (issue 14): at least 5,000 samples/s on the 100k run; worker RSS flat from 20k to 1M, judged as peak RSS
 * of the 1M run at most 1.25 × the 20k run's (growth that scales with the samples would be 50× from 20k).
 *
 * Knobs (environment): BENCH_STAGES_SAMPLES (default 100000), BENCH_STAGES_MILLION (samples of the large run, default
 * 1000000; 0 skips it, and the RSS figure then compares 20k with the largest run made), BENCH_STAGES_BATCH (samples per
 * activity), BENCH_STAGES_BATCHES (activities in flight), BENCH_STAGES_CONCURRENCY (requests in flight),
 * BENCH_STAGES_PAGE (samples per page), BENCH_STAGES_CONVERSATIONS (samples per request; 1: a request per sample):
 * unset, each is what a loop config gets by default (`probe.batchSize`, `concurrency.batches`, the policy's
 * `maxConcurrency`, the probe activity's page size, `probe.conversationsPerRequest`). BENCH_STAGES_PROFILE (a folder:
 * the first run's CPU profile of this process is written there; BENCH_SIM_NODE_FLAGS profiles the sim, see
 * bench/lib/stack.ts); BENCH_STAGES_RUNS (only the first n runs).
 */
const LOOPTOOL_BIN = projectPath('bin', 'looptool.js');

const TOTAL = Number(process.env.BENCH_STAGES_SAMPLES ?? 100_000);
const MILLION = Number(process.env.BENCH_STAGES_MILLION ?? 1_000_000);
const PROBE_DEFAULTS = ProbeConfig.parse({});
const BATCH = Number(process.env.BENCH_STAGES_BATCH ?? PROBE_DEFAULTS.batchSize);
const BATCHES_IN_FLIGHT = Number(
  process.env.BENCH_STAGES_BATCHES ?? LoopConfig.shape.concurrency.parse(undefined).batches,
);
const CONCURRENCY = Number(
  process.env.BENCH_STAGES_CONCURRENCY ?? ModelRoleConfig.shape.maxConcurrency.parse(undefined),
);
const PAGE = Number(process.env.BENCH_STAGES_PAGE ?? ProbeBatchInput.shape.pageSize.parse(undefined));
const CONVERSATIONS = Number(process.env.BENCH_STAGES_CONVERSATIONS ?? PROBE_DEFAULTS.conversationsPerRequest);
const PROFILE_DIR = process.env.BENCH_STAGES_PROFILE;
const RUNS = Number(process.env.BENCH_STAGES_RUNS ?? Infinity);

/** Probe rate target (issue 14) and the RSS flatness rule: peak RSS of the largest run ≤ this × the 20k run's. */
const RATE_TARGET = 5_000;
const RSS_FLAT_FACTOR = 1.25;

interface Run {
  label: string;
  /** The version probed (its first `size` members, in seq order). */
  versionId: number;
  size: number;
  sim: 'child' | 'in-process';
  /** Samples per activity. */
  batch: number;
  inFlight: number;
}

export async function run(): Promise<Figure[]> {
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'looptool-bench-stages-'));
  chmodSync(scratch, 0o755);
  const stateDir = path.join(scratch, 'pg');
  const server = await startEmbeddedPostgres({
    stateDir,
    port: 54100 + Math.floor(Math.random() * 400),
    database: 'bench',
  });
  const pool = await openDatabase({ url: server.url, applicationName: 'looptool-bench', max: 8 });
  const postgresPid = postmasterPid(server.pgdata);
  const results: RunResult[] = [];
  try {
    const setupStart = performance.now();
    const versionId = await importSeedData(pool, scratch, TOTAL);
    console.log(
      `== stages: setup (${TOTAL.toLocaleString('en-US')} seed samples generated and imported) took ${((performance.now() - setupStart) / 1000).toFixed(1)} s`,
    );
    const large = MILLION > TOTAL ? await copiedVersion(pool, versionId, TOTAL, MILLION) : undefined;
    // Setup's writes (a million rows with the large run) settled before anything is timed: without this, autovacuum
    // and the checkpoint after them ran during the first runs and halved their rate.
    const settling = performance.now();
    await pool.query('VACUUM ANALYZE');
    await pool.query('CHECKPOINT');
    console.log(
      `== stages: setup (VACUUM ANALYZE, CHECKPOINT) took ${((performance.now() - settling) / 1000).toFixed(1)} s`,
    );

    const small = Math.min(20_000, TOTAL);
    const child = (size: number, version = versionId): Run => ({
      label: `probe ${size.toLocaleString('en-US')}, sim in child process`,
      versionId: version,
      size,
      sim: 'child',
      batch: BATCH,
      inFlight: BATCHES_IN_FLIGHT,
    });
    const runs: Run[] = [
      child(small),
      ...(TOTAL > small ? [child(TOTAL)] : []),
      ...(large ? [child(MILLION, large)] : []),
      {
        label: `probe ${small.toLocaleString('en-US')}, sim in this process`,
        versionId,
        size: small,
        sim: 'in-process',
        batch: BATCH,
        inFlight: BATCHES_IN_FLIGHT,
      },
      {
        label: `probe ${small.toLocaleString('en-US')} as one activity, sim in child`,
        versionId,
        size: small,
        sim: 'child',
        batch: small,
        inFlight: 1,
      },
    ];
    for (const [index, spec] of runs.slice(0, RUNS).entries())
      results.push(await probeRun(pool, postgresPid, spec, index === 0 ? PROFILE_DIR : undefined));
  } finally {
    await pool.end();
    await stopEmbeddedPostgres(stateDir);
    rmSync(scratch, { recursive: true, force: true });
  }
  console.log(
    `== stages: probeBatch against the sim server (0 latency), embedded PostgreSQL 16; ${BATCH} samples per activity, ${BATCHES_IN_FLIGHT} activities and ${CONCURRENCY} requests in flight, ${PAGE} samples per page, ${CONVERSATIONS} per request`,
  );
  console.log(
    formatTable(
      [
        'workload',
        'samples',
        'samples/s',
        'seconds',
        'DB query s (summed)',
        'worker CPU µs/sample',
        'sim CPU µs/sample',
        'PostgreSQL CPU µs/sample',
        'RSS before MB',
        'peak RSS MB',
        'abort listeners left per activity',
        'stored rows digest',
      ],
      results.map((r) => r.row),
    ),
  );
  return figures(results);
}

/** The section's closing figures: the probe rate of the main run and the RSS growth from 20k to the largest run. */
function figures(results: readonly RunResult[]): Figure[] {
  const inChild = results.filter((r) => r.spec.sim === 'child' && r.spec.batch === BATCH);
  const main = inChild.find((r) => r.spec.size === TOTAL) ?? inChild[0]!;
  const smallest = inChild[0]!;
  const largest = inChild[inChild.length - 1]!;
  const size = (n: number) => n.toLocaleString('en-US');
  const out: Figure[] = [
    {
      section: 'stages',
      figure: `probe samples/s (${size(main.spec.size)} samples, sim in a child process)`,
      value: perSecond(main.samples, main.seconds),
      target: `≥ ${size(RATE_TARGET)}/s`,
      met: main.samples / main.seconds >= RATE_TARGET,
    },
  ];
  if (largest !== main)
    out.push({
      section: 'stages',
      figure: `probe samples/s (${size(largest.spec.size)} samples)`,
      value: perSecond(largest.samples, largest.seconds),
      target: 'information',
    });
  const growth = largest.peakRssMb / smallest.peakRssMb;
  out.push({
    section: 'stages',
    figure: `worker peak RSS ${size(smallest.spec.size)} → ${size(largest.spec.size)} samples`,
    value: `${smallest.peakRssMb} → ${largest.peakRssMb} MB (×${growth.toFixed(2)})`,
    target: `flat: ≤ ${RSS_FLAT_FACTOR} × the ${size(smallest.spec.size)} run's peak${largest.spec.size < 1_000_000 ? ' (1M not run)' : ''}`,
    met: largest.spec.size >= 1_000_000 ? growth <= RSS_FLAT_FACTOR : undefined,
  });
  return out;
}

interface RunResult {
  spec: Run;
  samples: number;
  seconds: number;
  peakRssMb: number;
  /** The row of the section's own table. */
  row: (string | number)[];
}

/**
 * A version of `size` members made by SQL from the first `count` members of `fromVersion` (setup, not measured): each
 * sample copied under new ids (sha256 of `<id>:<copy>`, copies 1, 2, …), the originals included, frozen like an
 * imported version. See the module comment for why not through the CLI.
 */
async function copiedVersion(pool: pg.Pool, fromVersion: number, count: number, size: number): Promise<number> {
  const started = performance.now();
  const copies = Math.ceil(size / count) - 1;
  const before = await pool.query<{ seq: string }>('SELECT coalesce(max(seq), 0) AS seq FROM samples');
  await pool.query(
    `INSERT INTO samples (id, toolset_id, messages, target)
     SELECT encode(sha256(convert_to(s.id || ':' || c, 'UTF8')), 'hex'), s.toolset_id, s.messages, s.target
     FROM dataset_members m JOIN samples s ON s.seq = m.sample_seq CROSS JOIN generate_series(1, $2::int) c
     WHERE m.version_id = $1::bigint
     ORDER BY c, m.sample_seq`,
    [fromVersion, copies],
  );
  const version = await createVersion(pool, { dataset: 'bench-million', idempotencyKey: 'bench-million:1' });
  // The copies are the samples written after `before` (nothing else writes samples during setup).
  await pool.query(
    `INSERT INTO dataset_members (version_id, sample_seq, role)
     SELECT $1::bigint, seq, 'seed' FROM (
       SELECT sample_seq AS seq FROM dataset_members WHERE version_id = $2::bigint
       UNION ALL
       SELECT seq FROM samples WHERE seq > $3::bigint
     ) all_members ORDER BY seq LIMIT $4::int`,
    [version.id, fromVersion, before.rows[0]!.seq, size],
  );
  await freezeVersion(pool, version.id);
  await pool.query('ANALYZE samples, dataset_members');
  console.log(
    `== stages: setup (${size.toLocaleString('en-US')}-member version copied by SQL) took ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  return version.id;
}

/**
 * One measured run: its own loop name and a fresh sim server, batches of `spec.batch` members as seq ranges, at most
 * `spec.inFlight` activities at once over one endpoint pool. Also sums the wall time of the database queries (they
 * overlap, so this is load, not a share of the run) and counts the abort listeners each activity's cancellation
 * signal still holds when it returns.
 */
async function probeRun(pool: pg.Pool, postgresPid: number, spec: Run, profileDir?: string): Promise<RunResult> {
  const loopName = `bench-${spec.size}-${spec.sim}-${spec.batch}`;
  await pool.query(
    `INSERT INTO loops (name, config, config_hash, workflow_id) VALUES ($1::text, '{}', 'bench', $2::text)`,
    [loopName, `loop/${loopName}`],
  );
  // Batches as the stage workflow plans them (by SQL: a million seqs never come into this process): the first ones,
  // covering `size` members; as one range when the run is one activity.
  const planned = (
    await planSeqBatches(pool, { loopName, iteration: 1, source: 'members', versionId: spec.versionId, size: BATCH })
  ).slice(0, Math.ceil(spec.size / BATCH));
  const ranges: SeqRange[] =
    spec.batch > BATCH ? [{ afterSeq: planned[0]!.afterSeq, lastSeq: planned[planned.length - 1]!.lastSeq }] : planned;
  const { rows: members } = await pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM dataset_members
     WHERE version_id = $1::bigint AND sample_seq > $2::bigint AND sample_seq <= $3::bigint`,
    [spec.versionId, ranges[0]!.afterSeq, ranges[ranges.length - 1]!.lastSeq],
  );
  const expected = members[0]!.n;
  const sim = spec.sim === 'child' ? await startChildSim() : await inProcessSim();
  try {
    const db = timedPool(pool);
    // A fresh registry per run: one endpoint pool (and HTTP connections) for this run's server, shared by its batches.
    const probe = createProbeActivities(
      createActivityDeps({ pool: db.pool, artifactsDir: path.join(os.tmpdir(), 'looptool-bench-artifacts') }),
    ).probeBatch;
    const policy = { baseUrls: [sim.baseURL], maxConcurrency: CONCURRENCY, model: 'sim-student' };
    let listeners = 0;
    const baseline = Math.round(process.memoryUsage().rss / 1e6);
    const profiler = profileDir ? new Session() : undefined;
    if (profiler) {
      profiler.connect();
      await profiler.post('Profiler.enable');
      await profiler.post('Profiler.start');
    }
    const cpuBefore = process.cpuUsage();
    const simCpuBefore = sim.cpuMs();
    const postgresCpuBefore = processTreeCpuSeconds(postgresPid);
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
              versionId: spec.versionId,
              batch,
              policy,
              checker: { mode: 'exact' },
              maxTokens: 1024,
              pageSize: PAGE,
              conversationsPerRequest: CONVERSATIONS,
            };
            const done = (await env.run(probe, input)) as ProbeBatchResult;
            probed += done.probed;
            listeners = Math.max(listeners, getEventListeners(env.context.cancellationSignal, 'abort').length);
          }
        }),
      );
      return probed;
    });
    const cpu = process.cpuUsage(cpuBefore);
    const simCpuMs = sim.cpuMs() - simCpuBefore;
    const postgresCpuAfter = processTreeCpuSeconds(postgresPid);
    if (profiler) {
      const { profile } = await profiler.post('Profiler.stop');
      const file = path.join(profileDir!, `probe-${spec.size}-${Date.now()}.cpuprofile`);
      writeFileSync(file, JSON.stringify(profile));
      profiler.disconnect();
      console.log(`== stages: CPU profile of "${spec.label}" written to ${file}`);
    }
    if (result !== expected) throw new Error(`${spec.label}: probed ${result} of ${expected}`);
    const digest = await storedDigest(pool, loopName);
    return {
      spec,
      samples: result,
      seconds,
      peakRssMb,
      row: [
        spec.label,
        result,
        Math.round(result / seconds),
        Number(seconds.toFixed(1)),
        Number((db.queryMs() / 1000).toFixed(1)),
        Math.round((cpu.user + cpu.system) / result),
        Number.isNaN(simCpuMs) ? '-' : Math.round((simCpuMs * 1000) / result),
        postgresCpuBefore === undefined || postgresCpuAfter === undefined
          ? '-'
          : Math.round(((postgresCpuAfter - postgresCpuBefore) * 1e6) / result),
        baseline,
        peakRssMb,
        listeners,
        digest,
      ],
    };
  } finally {
    await sim.close();
  }
}

/**
 * A digest of what a run stored (its probe results and ledger rows, in sample order), leaving out what differs by
 * run and not by answer (loop name, latency, server URL, timestamps). Runs over the same samples must show the same
 * digest, and a speed-up must not change it: it is how a faster probe is shown to store the same rows.
 */
async function storedDigest(pool: pg.Pool, loopName: string): Promise<string> {
  const { rows } = await pool.query<{ digest: string }>(
    `SELECT md5(
       (SELECT coalesce(string_agg(concat_ws(E'\x1f', sample_id, iteration, outcome, raw_output, parsed_calls::text,
           error_type, error, mean_logprob, perplexity, prompt_tokens, completion_tokens, model, prompt_version),
         E'\x1e' ORDER BY sample_id), '') FROM probe_results WHERE loop_name = $1::text)
       || E'\x1d' ||
       (SELECT coalesce(string_agg(concat_ws(E'\x1f', replace(call_key, $1::text, ''), iteration, stage, role, model,
           prompt_tokens, completion_tokens, ok), E'\x1e' ORDER BY replace(call_key, $1::text, '')), '')
        FROM model_calls WHERE loop_name = $1::text)
     ) AS digest`,
    [loopName],
  );
  return rows[0]!.digest.slice(0, 12);
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
  /** CPU milliseconds (user + system) the sim's process has used; NaN when it runs in this process. */
  cpuMs(): number;
  close(): Promise<void>;
}

/** The shared child-process sim (bench/lib/stack.ts), as a handle. */
async function startChildSim(): Promise<SimHandle> {
  const { url, child } = await startSim();
  return {
    baseURL: `${url}/v1`,
    cpuMs: () => (processCpuSeconds(child.pid!) ?? Number.NaN) * 1000,
    close: () => stopChild(child),
  };
}

async function inProcessSim(): Promise<SimHandle> {
  const server = await startSimServer({ port: 0, seed: 7 });
  return { baseURL: server.baseURL, cpuMs: () => Number.NaN, close: () => server.close() };
}
