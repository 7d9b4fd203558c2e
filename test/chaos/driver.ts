/**
 * The chaos driver (issue 12, item 5): a full simulated loop run twice on the same throwaway servers with one seed:
 * first undisturbed (the reference), then while a seeded plan (test/chaos/plan.ts) SIGKILLs the worker, crashes and
 * restarts the Temporal dev server, stops PostgreSQL, takes the trainer API away (connection refused) and makes the
 * simulated model servers answer 429s, 500s, timeouts, cut-off and HTML bodies. The loop must complete with the
 * reference's rows (test/chaos/compare.ts), none duplicated; the report says which faults were injected, where they
 * landed, how long each service was away and whether the loop went on afterwards.
 *
 * Faults land at positions of the loop (stage, share of its rows), observed from the Temporal search attributes and
 * the database, never after fixed sleeps; only the length of an outage is a time. `npm run chaos` runs it
 * (test/chaos/run.ts); test/e2e/chaos-short.test.ts runs the short profile in `npm test`.
 */
import { chmodSync, mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { LoopClient } from '../../client/loop-client.js';
import { LoopConfig, TimeoutsConfig } from '../../core/config.js';
import { SEARCH_ATTRIBUTES, taskQueues, workflowIds } from '../../core/constants.js';
import { contentHash } from '../../core/hash.js';
import type { LoopPhase } from '../../core/vocabulary.js';
import { stageFile, versionFromImport } from '../../datasets/import.js';
import { openDatabase } from '../../db/open.js';
import { resolveTemporalCli } from '../../services/temporal-cli.js';
import type { FaultKind } from '../../sim/faults.js';
import { writeSeedData } from '../../sim/seed-data.js';
import { type SimServer, startSimServer } from '../../sim/server.js';
import type { LoopResult } from '../../workflows/loop.js';
import { diffSnapshots, duplicateRows, rowCounts, snapshotLoop } from './compare.js';
import {
  type ChaosFaultKind,
  type ChaosProfile,
  describeMilestone,
  drawPlan,
  type Milestone,
  ordinalOf,
  PHASE_ORDER,
  type PhaseRows,
  type PlannedFault,
  ROW_PHASES,
} from './plan.js';
import { TcpProxy, ThrowawayServices } from './services.js';
import { type WorkerCrash, WorkerSupervisor } from './worker-supervisor.js';

export interface ChaosOptions {
  profile: ChaosProfile;
  seed: number;
  /** Seed samples to generate. @default the profile's */
  samples?: number;
  /** The `temporal` CLI (found or installed as the project does when absent). */
  temporalCliPath?: string;
  log?: (line: string) => void;
  /** Keep the scratch folder (servers' state, worker logs) even when the run passed. */
  keep?: boolean;
  /** Gives up on a loop that has not ended by then (a guard against hanging, not a speed check). @unit ms */
  deadlineMs?: number;
  /** Ends the run early (Ctrl-C): the plan stops, every server and worker is stopped, and the run throws. */
  signal?: AbortSignal;
}

/** One fault as it happened. */
export interface FaultRecord extends PlannedFault {
  /** Where the loop was when the fault was injected. */
  landed?: string;
  injected: boolean;
  /** How long the service was away (worker: until a new one served; sim faults: none). @unit ms */
  downMs?: number;
  /** The loop moved on after the fault ended (or completed). */
  recovered: boolean;
  /** What the loop said it was waiting for (LoopWaitingFor) while the fault lasted. */
  waitingFor: string[];
  /** Where the loop was when the fault ended: recovery is progress past it. */
  endOrdinal?: number;
  endedAt?: number;
}

export interface FaultSummaryRow {
  kind: ChaosFaultKind;
  /** Faults injected (sim kinds: requests answered with the fault). */
  count: number;
  /** Sum of the times the service was away. @unit ms */
  downMs: number | undefined;
  recovered: boolean;
  note: string;
}

export interface ChaosReport {
  ok: boolean;
  seed: number;
  profile: string;
  samples: number;
  referenceMs: number;
  chaosMs: number;
  /** The chaos loop's workflow status at the end (COMPLETED when it finished). */
  chaosStatus: string;
  chaosFailure?: string;
  faults: FaultRecord[];
  summary: FaultSummaryRow[];
  /** Content differences from the reference run (empty: equal). */
  differences: string[];
  /** Natural keys found more than once among the chaos loop's rows. */
  duplicates: string[];
  /** Trainer jobs per job key on the chaos run's trainer (each must be 1). */
  trainerJobs: Record<string, number>;
  rows: { reference: Record<string, number>; chaos: Record<string, number> };
  workerStarts: number;
  workerCrashes: WorkerCrash[];
  /** What the chaos loop's histories (all runs, stage children included) recorded of the faults. */
  history: {
    retriedAttempts: number;
    activityFailures: number;
    activityTimeouts: number;
    workflowTaskFailures: number;
  };
  simFaultsFired: Partial<Record<FaultKind, number>>;
  problems: string[];
  scratchDir: string;
}

interface Observation {
  status: string;
  iteration: number;
  phase: LoopPhase;
  rows: number;
  ordinal: number;
  waitingFor?: string;
}

/** The part of scripts/build.js (plain JavaScript) used here: workers run `looptool` from dist/. */
interface BuildModule {
  ensureBuilt(options?: { quiet?: boolean }): Promise<boolean>;
}

const fmtSeconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const { profile, seed } = options;
  const signal = options.signal ?? new AbortController().signal;
  const samples = options.samples ?? profile.samples;
  const began = Date.now();
  const log = (line: string) =>
    (options.log ?? console.log)(`[chaos +${((Date.now() - began) / 1000).toFixed(1)}s] ${line}`);
  const { ensureBuilt } = (await import(new URL('../../scripts/build.js', import.meta.url).href)) as BuildModule;
  await ensureBuilt({ quiet: true });
  const cliPath = options.temporalCliPath ?? (await resolveTemporalCli({ log })).path;

  const scratch = mkdtempSync(path.join(os.tmpdir(), 'looptool-chaosrun-'));
  // As root, PostgreSQL runs as the postgres user, which must be able to enter its data dir inside this folder.
  chmodSync(scratch, 0o755);
  const logDir = path.join(scratch, 'logs');
  mkdirSync(logDir);
  const cleanups: (() => Promise<unknown>)[] = [];
  const supervisors: WorkerSupervisor[] = [];
  // Nothing started here may outlive the driver, even when it is interrupted.
  const onExit = () => {
    for (const supervisor of supervisors) supervisor.killNow();
  };
  process.once('exit', onExit);
  let passed = false;
  try {
    log(`scratch ${scratch}; starting a throwaway Temporal dev server and PostgreSQL`);
    const services = await ThrowawayServices.start(cliPath, scratch);
    cleanups.push(() => services.close());
    log(`Temporal ${services.temporalAddress} (UI ${services.temporalUiUrl}), PostgreSQL ${services.databaseUrl}`);
    const pool = await openDatabase({ url: services.databaseUrl, applicationName: 'looptool-chaos', migrate: true });
    cleanups.push(() => pool.end());
    const loops = await LoopClient.connect(services.temporalAddress);
    cleanups.push(() => loops.close());

    const seedFile = path.join(scratch, 'seed.jsonl');
    await writeSeedData(seedFile, { count: samples, seed });
    const seedDataset = 'chaos-seed';
    const staged = await stageFile({ pool, file: seedFile, format: 'openai', purpose: 'import', target: seedDataset });
    await versionFromImport(pool, { dataset: seedDataset, batchId: staged.batchId });
    log(`seed data: ${staged.staged} samples imported as ${seedDataset}`);

    const artifactsDir = path.join(scratch, 'artifacts');
    const workerEnv = (suffix: string): NodeJS.ProcessEnv => ({
      ...process.env,
      TEMPORAL_ADDRESS: services.temporalAddress,
      DATABASE_URL: services.databaseUrl,
      LOOPTOOL_DATA_DIR: path.join(scratch, 'data'),
      LOOPTOOL_TASK_QUEUE_SUFFIX: suffix,
      LOOPTOOL_ARTIFACTS_DIR: artifactsDir,
      LOOPTOOL_SHUTDOWN_GRACE_SECONDS: '1',
    });

    /** A sim stack (models and trainer) and the proxy the loop reaches the trainer through. */
    const startStack = async () => {
      const sim = await startSimServer({ port: 0, seed, trainer: { jobSeconds: 1 } });
      const proxy = new TcpProxy(sim.port);
      await proxy.open();
      return { sim, proxy };
    };
    const configFor = (name: string, sim: SimServer, proxy: TcpProxy): LoopConfig => {
      const model = (modelName: string) => ({ baseUrls: [sim.baseURL], model: modelName, maxConcurrency: 8 });
      return LoopConfig.parse({
        name,
        seed,
        data: { seedDataset, initialSize: Math.round(samples * 0.6) },
        models: { policy: model(sim.policyModel), judge: model(sim.judgeModel), generator: model(sim.generatorModel) },
        training: { backend: 'sim', url: proxy.url },
        iterations: profile.iterations,
        reward: 'exact',
        probe: { batchSize: 30 },
        judge: { votes: 3, batchSize: 8 },
        expand: { k: 2, batchSize: 5 },
        evaluation: { sets: [{ name: 'bfcl', files: profile.evalFiles }] },
        timeouts: {
          // A killed worker's activities are retried elsewhere after this long without a heartbeat.
          batchHeartbeatSeconds: 5,
          trainHeartbeatSeconds: 5,
          // The longest pause between rounds of waiting out an outage, where this build has the setting.
          ...('outageBackoffMaxSeconds' in TimeoutsConfig.shape ? { outageBackoffMaxSeconds: 10 } : {}),
        },
        concurrency: { batches: 2 },
      });
    };
    const startLoop = async (name: string, config: LoopConfig, suffix: string) => {
      await loops.start({ loopName: name, config, configHash: contentHash(config), queues: taskQueues(suffix) });
    };

    // ---- the reference: the same loop, undisturbed.
    // Names of one length: the simulated server counts a request's characters as its prompt tokens, and the served
    // model's name (`<loop>-iter-<j>`) is part of every probe request.
    const referenceName = `chaos-ref-s${seed}`;
    const reference = await startStack();
    const referenceWorker = new WorkerSupervisor(
      workerEnv('-reference'),
      path.join(logDir, 'worker-reference.log'),
      log,
    );
    supervisors.push(referenceWorker);
    const referenceStarted = Date.now();
    referenceWorker.start();
    await startLoop(referenceName, configFor(referenceName, reference.sim, reference.proxy), '-reference');
    log(`reference loop ${referenceName} started`);
    const referenceEnd = await waitForEnd(loops, referenceName, options.deadlineMs ?? 30 * 60_000, signal);
    const referenceMs = Date.now() - referenceStarted;
    await referenceWorker.stop();
    await reference.proxy.close();
    await reference.sim.close();
    if (referenceEnd.status !== 'COMPLETED')
      throw new Error(`the reference loop did not complete: ${referenceEnd.status} ${referenceEnd.failure ?? ''}`);
    log(`reference loop completed in ${fmtSeconds(referenceMs)}`);
    const phaseRows = await countPhaseRows(pool, referenceName, profile.iterations);

    // ---- the plan, drawn from the seed, placed by the reference's row counts.
    const plan = drawPlan(seed, profile, phaseRows);
    log(`fault plan (${plan.length} faults):`);
    for (const fault of plan)
      log(
        `  #${fault.id} ${fault.kind} at ${describeMilestone(fault.at)}${fault.durationMs ? ` for ${fmtSeconds(fault.durationMs)}` : ''}${fault.rule ? ` (next ${fault.rule.count} requests)` : ''}`,
      );

    // ---- the chaos run.
    const chaosName = `chaos-run-s${seed}`;
    const chaos = await startStack();
    cleanups.push(() => chaos.sim.close());
    cleanups.push(() => chaos.proxy.close());
    const worker = new WorkerSupervisor(workerEnv('-chaos'), path.join(logDir, 'worker-chaos.log'), log);
    supervisors.push(worker);
    const chaosStarted = Date.now();
    worker.start();
    await startLoop(chaosName, configFor(chaosName, chaos.sim, chaos.proxy), '-chaos');
    log(`chaos loop ${chaosName} started`);

    const records: FaultRecord[] = plan.map((fault) => ({
      ...fault,
      injected: false,
      recovered: false,
      waitingFor: [],
    }));
    const observer = new Observer(loops, pool, chaosName, phaseRows, records, log);
    const observing = observer.run();
    const deadline = chaosStarted + (options.deadlineMs ?? 90 * 60_000);
    try {
      for (const record of records) {
        const reached = await observer.waitFor(ordinalOf(record.at), deadline, signal);
        signal.throwIfAborted();
        if (!reached) {
          log(`#${record.id} ${record.kind}: the loop ended before ${describeMilestone(record.at)}`);
          continue;
        }
        await inject(record, reached);
      }
    } catch (err) {
      // Interrupted mid-fault: every service back, so the cleanup finds what it stops.
      if (!(await services.isPostgresRunning())) await services.startPostgres();
      await chaos.proxy.open();
      throw err;
    }

    async function inject(record: FaultRecord, reached: Observation): Promise<void> {
      let at = reached;
      if (record.kind === 'worker_kill' && !worker.isReady) {
        // A worker that is still starting has nothing in flight to lose: the kill waits until it serves.
        await worker.whenReady();
        at = observer.latest ?? reached;
      }
      record.landed = `iter ${at.iteration} ${at.phase}${ROW_PHASES.has(at.phase) ? ` (${at.rows} rows)` : ''}`;
      record.injected = true;
      const started = Date.now();
      observer.open(record);
      switch (record.kind) {
        case 'worker_kill': {
          const { pid } = await worker.kill();
          log(`#${record.id} killed worker pid ${pid} at ${record.landed}`);
          break;
        }
        case 'temporal_restart':
          log(`#${record.id} crashing the Temporal server at ${record.landed}`);
          await services.crashTemporal();
          await services.startTemporal();
          break;
        case 'postgres_stop':
          log(`#${record.id} stopping PostgreSQL for ${fmtSeconds(record.durationMs!)} at ${record.landed}`);
          await services.stopPostgres();
          await sleep(record.durationMs!, undefined, { signal }).catch(() => {});
          await services.startPostgres();
          break;
        case 'trainer_away':
          log(`#${record.id} taking the trainer API away for ${fmtSeconds(record.durationMs!)} at ${record.landed}`);
          await chaos.proxy.close();
          await sleep(record.durationMs!, undefined, { signal }).catch(() => {});
          await chaos.proxy.open();
          break;
        default:
          log(
            `#${record.id} sim fault: the next ${record.rule!.count} model requests answered ${record.rule!.kind}, at ${record.landed}`,
          );
          chaos.sim.faults.add([record.rule!]);
      }
      if (!record.rule) {
        record.downMs = Date.now() - started;
        log(`#${record.id} ${record.kind} over after ${fmtSeconds(record.downMs)}`);
      }
      observer.close(record);
    }

    const chaosEnd = await waitForEnd(loops, chaosName, Math.max(deadline - Date.now(), 60_000), signal);
    const chaosMs = Date.now() - chaosStarted;
    observer.stop();
    await observing;
    log(`chaos loop ended ${chaosEnd.status} after ${fmtSeconds(chaosMs)}`);
    await worker.stop();

    // ---- the verdict.
    const problems: string[] = [];
    if (chaosEnd.status !== 'COMPLETED')
      problems.push(`the chaos loop did not complete: ${chaosEnd.status} ${chaosEnd.failure ?? ''}`);
    if (chaosEnd.status === 'COMPLETED') for (const record of records) if (record.injected) record.recovered = true;
    const simFaultsFired = chaos.sim.stats().faults;
    const leftover = chaos.sim.faults.list();
    const summary = summarize(records, simFaultsFired, leftover);
    for (const record of records)
      if (!record.injected) problems.push(`fault #${record.id} ${record.kind} was never injected`);
    for (const row of summary) if (!row.recovered) problems.push(`${row.kind}: not recovered (${row.note})`);

    const referenceSnapshot = await snapshotLoop(pool, referenceName);
    const chaosSnapshot = await snapshotLoop(pool, chaosName);
    const differences = diffSnapshots(referenceSnapshot, chaosSnapshot);
    if (referenceEnd.result && chaosEnd.result) {
      const history = (result: LoopResult, name: string) => JSON.stringify(result.history).split(name).join('<loop>');
      if (history(referenceEnd.result, referenceName) !== history(chaosEnd.result, chaosName))
        differences.push(
          `loop result history differs:\n  reference: ${history(referenceEnd.result, referenceName)}\n  chaos:     ${history(chaosEnd.result, chaosName)}`,
        );
    }
    const duplicates = await duplicateRows(pool, chaosName);
    const trainerJobs: Record<string, number> = {};
    for (let iteration = 1; iteration <= profile.iterations; iteration++) {
      const key = `${chaosName}-iter-${iteration}`;
      const listed = (await (
        await fetch(`${chaos.sim.trainerURL}/jobs?job_key=${encodeURIComponent(key)}`)
      ).json()) as {
        data: unknown[];
      };
      trainerJobs[key] = listed.data.length;
      if (listed.data.length !== 1) duplicates.push(`trainer jobs for ${key}: ${listed.data.length}`);
    }
    const history = await historyEvidence(loops, chaosName, profile.iterations);
    const report: ChaosReport = {
      ok: problems.length === 0 && differences.length === 0 && duplicates.length === 0,
      seed,
      profile: profile.name,
      samples,
      referenceMs,
      chaosMs,
      chaosStatus: chaosEnd.status,
      ...(chaosEnd.failure ? { chaosFailure: chaosEnd.failure } : {}),
      faults: records,
      summary,
      differences,
      duplicates,
      trainerJobs,
      rows: { reference: rowCounts(referenceSnapshot), chaos: rowCounts(chaosSnapshot) },
      workerStarts: worker.starts,
      workerCrashes: worker.crashes,
      history,
      simFaultsFired,
      problems,
      scratchDir: scratch,
    };
    passed = report.ok;
    return report;
  } finally {
    process.off('exit', onExit);
    for (const supervisor of supervisors) await supervisor.stop(2_000).catch(() => {});
    for (const step of cleanups.reverse()) await step().catch((err: unknown) => log(`cleanup: ${String(err)}`));
    if (passed && !options.keep) rmSync(scratch, { recursive: true, force: true });
    else log(`kept ${scratch} (servers' state, worker logs under logs/)`);
  }
}

/** A loop between two of its runs (continue-as-new) is still running. */
const isRunning = (status: string) => status === 'RUNNING' || status === 'CONTINUED_AS_NEW';

/** Polls the loop until it is no longer running; a server that does not answer (restarting) is asked again. */
async function waitForEnd(
  loops: LoopClient,
  loopName: string,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<{ status: string; result?: LoopResult; failure?: string }> {
  const deadline = Date.now() + timeoutMs;
  const handle = loops.handle(loopName);
  for (;;) {
    signal.throwIfAborted();
    const status = await loops.client.connection
      .withDeadline(Date.now() + 10_000, () => handle.describe())
      .then((d) => d.status.name)
      .catch(() => undefined);
    if (status && !isRunning(status)) {
      if (status === 'COMPLETED') return { status, result: await handle.result() };
      const failure = await handle.result().then(
        () => undefined,
        (err: unknown) => failureText(err),
      );
      return { status, ...(failure ? { failure } : {}) };
    }
    if (Date.now() > deadline) return { status: `still ${status ?? 'unknown'} at the driver's deadline` };
    await sleep(500);
  }
}

/** An error with its causes, as one line each (Temporal wraps the activity's failure in the workflow's). */
function failureText(err: unknown): string {
  const lines: string[] = [];
  for (let e: unknown = err; e instanceof Error && lines.length < 6; e = (e as { cause?: unknown }).cause)
    lines.push(`${e.name}: ${e.message}`);
  return lines.join(' ← ');
}

/** Rows per iteration and phase of a finished loop: where a fault at "share s of a phase" lands. */
async function countPhaseRows(pool: pg.Pool, loopName: string, iterations: number): Promise<PhaseRows> {
  const rows: PhaseRows = {};
  for (let iteration = 1; iteration <= iterations; iteration++) {
    const counts = await phaseCounts(pool, loopName, iteration);
    rows[iteration] = counts;
  }
  return rows;
}

async function phaseCounts(
  pool: pg.Pool,
  loopName: string,
  iteration: number,
): Promise<Partial<Record<LoopPhase, number>>> {
  const { rows } = await pool.query<{ probe: number; judge: number; expand: number }>(
    `SELECT (SELECT count(*) FROM probe_results WHERE loop_name = $1 AND iteration = $2)::int AS probe,
            (SELECT count(*) FROM judgements WHERE loop_name = $1 AND iteration = $2)::int AS judge,
            (SELECT count(*) FROM expansions WHERE loop_name = $1 AND iteration = $2)::int AS expand`,
    [loopName, iteration],
  );
  const row = rows[0]!;
  return { probe: row.probe, judge: row.judge, expand: row.expand };
}

/**
 * Watches the chaos loop: its phase and iteration (search attributes), the rows of the running phase and what it says
 * it waits for; wakes the driver when a fault's point is reached, and marks faults recovered when the loop moves past
 * where they ended.
 */
class Observer {
  latest: Observation | undefined;
  private stopped = false;
  private readonly active = new Set<FaultRecord>();
  private waiters: { ordinal: number; resolve: (o: Observation | undefined) => void }[] = [];
  private lastLine = '';

  constructor(
    private readonly loops: LoopClient,
    private readonly pool: pg.Pool,
    private readonly loopName: string,
    private readonly phaseRows: PhaseRows,
    private readonly records: FaultRecord[],
    private readonly log: (line: string) => void,
  ) {}

  async run(): Promise<void> {
    while (!this.stopped) {
      const observation = await this.observe().catch(() => undefined);
      if (observation) this.update(observation);
      await sleep(200);
    }
    for (const waiter of this.waiters.splice(0)) waiter.resolve(undefined);
  }

  stop(): void {
    this.stopped = true;
  }

  /**
   * Resolves with the observation that reached `ordinal`, or undefined when the loop ended first (or the deadline
   * passed, or the run was aborted).
   */
  waitFor(ordinal: number, deadline: number, signal: AbortSignal): Promise<Observation | undefined> {
    if (this.latest && !isRunning(this.latest.status)) return Promise.resolve(undefined);
    if (this.latest && this.latest.ordinal >= ordinal) return Promise.resolve(this.latest);
    return new Promise((resolve) => {
      const settle = (o: Observation | undefined) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.waiters = this.waiters.filter((w) => w.resolve !== settle);
        resolve(o);
      };
      const onAbort = () => settle(undefined);
      const timer = setTimeout(onAbort, Math.max(deadline - Date.now(), 0));
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.push({ ordinal, resolve: settle });
    });
  }

  /** A fault began: what the loop says it waits for is recorded with it until it has recovered. */
  open(record: FaultRecord): void {
    this.active.add(record);
  }

  /** A fault ended: it has recovered once the loop is seen past where it is now. */
  close(record: FaultRecord): void {
    record.endOrdinal = this.latest?.ordinal ?? 0;
    record.endedAt = Date.now();
  }

  private update(observation: Observation): void {
    this.latest = observation;
    const line = `loop at iter ${observation.iteration} ${observation.phase}${isRunning(observation.status) ? '' : ` (${observation.status})`}`;
    if (line !== this.lastLine) {
      this.log(line);
      this.lastLine = line;
    }
    for (const record of this.active) {
      if (observation.waitingFor && !record.waitingFor.includes(observation.waitingFor))
        record.waitingFor.push(observation.waitingFor);
      if (record.endOrdinal !== undefined && observation.ordinal > record.endOrdinal) {
        record.recovered = true;
        this.active.delete(record);
      }
    }
    const done = !isRunning(observation.status);
    for (const waiter of [...this.waiters])
      if (done || observation.ordinal >= waiter.ordinal) waiter.resolve(done ? undefined : observation);
    if (done)
      for (const record of this.records)
        if (record.injected && observation.status === 'COMPLETED') record.recovered = true;
  }

  private async observe(): Promise<Observation> {
    const description = await this.loops.client.connection.withDeadline(Date.now() + 5_000, () =>
      this.loops.handle(this.loopName).describe(),
    );
    const attributes = description.typedSearchAttributes;
    const status = description.status.name;
    const iteration = Number(attributes.get(SEARCH_ATTRIBUTES.loopIteration) ?? 1);
    const phase = (
      status === 'COMPLETED' ? 'done' : (attributes.get(SEARCH_ATTRIBUTES.loopStage) ?? 'setup')
    ) as LoopPhase;
    const waitingKey = (SEARCH_ATTRIBUTES as Record<string, unknown>).loopWaitingFor as
      Parameters<typeof attributes.get>[0] | undefined;
    const waitingFor = waitingKey ? (attributes.get(waitingKey) as string | undefined) : undefined;
    let rows = 0;
    if (ROW_PHASES.has(phase)) rows = (await phaseCounts(this.pool, this.loopName, iteration))[phase] ?? 0;
    const total = this.phaseRows[iteration]?.[phase] ?? 0;
    const share = total > 0 ? rows / total : 0;
    const point: Milestone = { iteration, phase, share };
    return {
      status,
      iteration,
      phase,
      rows,
      ordinal: PHASE_ORDER.includes(phase) ? ordinalOf(point) : 0,
      ...(waitingFor ? { waitingFor } : {}),
    };
  }
}

/** The fault table's rows: per kind, how many, how long away, recovered or not. */
function summarize(
  records: FaultRecord[],
  fired: Partial<Record<FaultKind, number>>,
  leftover: { kind: FaultKind; remaining: number | null }[],
): FaultSummaryRow[] {
  const kinds = [...new Set(records.map((record) => record.kind))];
  return kinds.map((kind) => {
    const of = records.filter((record) => record.kind === kind);
    const injected = of.filter((record) => record.injected);
    const recovered = injected.filter((record) => record.recovered).length;
    if (kind.startsWith('sim_')) {
      const simKind = kind.slice(4) as FaultKind;
      const planned = injected.reduce((sum, record) => sum + (record.rule?.count ?? 0), 0);
      const left = leftover
        .filter((rule) => rule.kind === simKind)
        .reduce((sum, rule) => sum + (rule.remaining ?? 0), 0);
      const hits = fired[simKind] ?? 0;
      return {
        kind,
        count: hits,
        downMs: undefined,
        recovered: injected.length === of.length && recovered === injected.length && hits === planned && left === 0,
        note: `${injected.length} rules, ${hits}/${planned} requests hit`,
      };
    }
    return {
      kind,
      count: injected.length,
      downMs: injected.reduce((sum, record) => sum + (record.downMs ?? 0), 0),
      recovered: injected.length === of.length && recovered === injected.length,
      note: `${recovered}/${of.length} recovered`,
    };
  });
}

/** Activity retries, failures and timeouts the chaos loop's histories recorded (every run of the loop and its stages). */
async function historyEvidence(
  loops: LoopClient,
  loopName: string,
  iterations: number,
): Promise<ChaosReport['history']> {
  const evidence = { retriedAttempts: 0, activityFailures: 0, activityTimeouts: 0, workflowTaskFailures: 0 };
  const ids = [workflowIds.loop(loopName)];
  for (let iteration = 1; iteration <= iterations; iteration++)
    for (const stage of ['probe', 'judge', 'expand']) ids.push(workflowIds.stage(loopName, iteration, stage));
  for (const workflowId of ids) {
    for await (const execution of loops.client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
      const history = await loops.client.workflow.getHandle(workflowId, execution.runId).fetchHistory();
      for (const event of history.events ?? []) {
        if ((event.activityTaskStartedEventAttributes?.attempt ?? 1) > 1) evidence.retriedAttempts++;
        if (event.activityTaskFailedEventAttributes) evidence.activityFailures++;
        if (event.activityTaskTimedOutEventAttributes) evidence.activityTimeouts++;
        if (event.workflowTaskFailedEventAttributes) evidence.workflowTaskFailures++;
      }
    }
  }
  return evidence;
}

/** The fault table as text: kind, count, total downtime, recovered. */
export function renderFaultTable(report: ChaosReport): string {
  const header = ['fault', 'count', 'total downtime', 'recovered', 'detail'];
  const rows = report.summary.map((row) => [
    row.kind,
    String(row.count),
    row.downMs === undefined ? '-' : fmtDuration(row.downMs),
    row.recovered ? 'yes' : 'NO',
    row.note,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((cell, i) => cell.padEnd(widths[i]!)).join(' | ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('-|-'), ...rows.map(line)].join('\n');
}

function fmtDuration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  return seconds >= 60
    ? `${Math.floor(seconds / 60)} min ${String(seconds % 60).padStart(2, '0')} s`
    : `${(ms / 1000).toFixed(1)} s`;
}
