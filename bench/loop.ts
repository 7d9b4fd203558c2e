import { type ChildProcess, execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Client } from '@temporalio/client';
import type { History } from '@temporalio/common/lib/proto-utils.js';
import { demoConfig } from '../client/commands/demo.js';
import { formatTable } from '../client/format.js';
import { LoopClient } from '../client/loop-client.js';
import { taskQueues, workflowIds } from '../core/constants.js';
import { contentHash } from '../core/hash.js';
import { stageFile, versionFromImport } from '../datasets/import.js';
import { openDatabase } from '../db/open.js';
import type { FaultRule } from '../sim/faults.js';
import type { Figure } from './lib/figures.js';
import {
  analyseOverhead,
  describeEvent,
  type HistoryEvent,
  type OverheadReport,
  type RawHistoryEvent,
  toHistoryEvents,
} from './lib/overhead.js';
import {
  type BenchServices,
  benchScratch,
  LOOPTOOL_BIN,
  runChild,
  spawnWorker,
  startBenchServices,
  startSim,
  stopChild,
  tail,
} from './lib/stack.js';

/**
 * `loop` section (issue 14 item 4): orchestration overhead of a real loop. A loop of `--iterations` (default 2) over
 * `--samples` (default 3,000) runs through the real stack — a Temporal dev server and an embedded PostgreSQL of its
 * own, `looptool worker` as a separate process serving all three queues, the simulated model server in a child
 * process — with realistic model and trainer latencies: every chat request to the policy, the judge and the generator
 * is answered after a fixed delay per role (the sim's `latency` fault rule, standing in for a small vLLM deployment),
 * and the sim trainer takes `--train-seconds` per job. The config is the demo's (judge 3 votes, expand k 4, BFCL's
 * non-live files as the held-out set, 4 batches in flight).
 *
 * Then, from the workflow histories (the loop's runs and every stage child's runs, fetched with the Temporal client),
 * per iteration (= one loop run): wall time (the run's start to its close), busy time (the union of every activity's
 * ActivityTaskStarted → close), overhead = (wall − busy) / wall, the largest gaps with the events around them, and
 * where the gap time went (see bench/lib/overhead.ts). Target: overhead < 2% per iteration.
 *
 * Options: `--samples=N`, `--iterations=J`, `--train-seconds=S` (30), `--policy-ms=`, `--judge-ms=`,
 * `--generator-ms=` (per-request latency; 40 / 100 / 150), `--keep` (leave the temp folder with the worker's log),
 * `--json=<file>` (the reports and events as JSON), `--histories=<dir>` (every workflow run's history, for replay),
 * `--timeout-minutes=M` (15).
 */

const LOOP = 'overhead';
const TARGET_PERCENT = 2;

interface Options {
  samples: number;
  iterations: number;
  trainSeconds: number;
  latencyMs: { policy: number; judge: number; generator: number };
  keep: boolean;
  json?: string;
  /** A folder for every workflow run's history as JSON (replayable with `Worker.runReplayHistory`). */
  histories?: string;
  timeoutMinutes: number;
}

function options(argv: readonly string[] = process.argv.slice(2)): Options {
  const value = (name: string) => argv.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3);
  const int = (name: string, fallback: number, min: number, max: number) => {
    const n = Number(value(name) ?? fallback);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer ${min}–${max}`);
    return n;
  };
  const json = value('json');
  const histories = value('histories');
  return {
    samples: int('samples', 3_000, 50, 1_000_000),
    iterations: int('iterations', 2, 1, 10),
    trainSeconds: int('train-seconds', 30, 0, 3_600),
    latencyMs: {
      policy: int('policy-ms', 40, 0, 60_000),
      judge: int('judge-ms', 100, 0, 60_000),
      generator: int('generator-ms', 150, 0, 60_000),
    },
    keep: argv.includes('--keep'),
    ...(json ? { json: path.resolve(json) } : {}),
    ...(histories ? { histories: path.resolve(histories) } : {}),
    timeoutMinutes: int('timeout-minutes', 15, 1, 24 * 60),
  };
}

const fmt = (n: number) => n.toLocaleString('en-US');
const sec = (ms: number) => (ms / 1000).toFixed(2);
const loadAverage = () =>
  os
    .loadavg()
    .map((n) => n.toFixed(2))
    .join(' ');

/** Every history fetched, kept for `--histories` (replay fixtures). */
type HistorySink = { workflowId: string; runId: string; history: History }[];

/** One run of a workflow: its events, and the run that continued it (if any). */
async function runEvents(client: Client, workflowId: string, runId: string, sink: HistorySink) {
  const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  sink.push({ workflowId, runId, history });
  const events = (history.events ?? []) as RawHistoryEvent[];
  const last = events.at(-1) as
    { workflowExecutionContinuedAsNewEventAttributes?: { newExecutionRunId?: string | null } | null } | undefined;
  return { events, next: last?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined };
}

/** Every run of a workflow from `runId` on, following continue-as-new. */
async function chainEvents(
  client: Client,
  workflowId: string,
  runId: string,
  sink: HistorySink,
): Promise<RawHistoryEvent[][]> {
  const runs: RawHistoryEvent[][] = [];
  for (let id: string | undefined = runId; id;) {
    const { events, next } = await runEvents(client, workflowId, id, sink);
    runs.push(events);
    id = next;
  }
  return runs;
}

/** One iteration's histories: its loop run's events and every stage child's (all of each child's runs). */
interface IterationHistory {
  iteration: number;
  events: HistoryEvent[];
  window: { start: number; end: number };
  closedAs: string;
  children: string[];
}

async function iterationHistories(client: Client, firstRunId: string, sink: HistorySink): Promise<IterationHistory[]> {
  const loopId = workflowIds.loop(LOOP);
  const out: IterationHistory[] = [];
  const runs = await chainEvents(client, loopId, firstRunId, sink);
  for (const [index, raw] of runs.entries()) {
    const loopEvents = toHistoryEvents('loop', raw);
    const events = [...loopEvents];
    const children: string[] = [];
    for (const e of raw) {
      const started = e.childWorkflowExecutionStartedEventAttributes as
        { workflowExecution?: { workflowId?: string | null; runId?: string | null } | null } | null | undefined;
      const child = started?.workflowExecution;
      if (!child?.workflowId || !child.runId) continue;
      const stage = child.workflowId.split('/').at(-1)!;
      children.push(child.workflowId);
      for (const [n, childRun] of (await chainEvents(client, child.workflowId, child.runId, sink)).entries())
        events.push(...toHistoryEvents(n === 0 ? stage : `${stage}#${n + 1}`, childRun));
    }
    const first = loopEvents[0]!;
    const last = loopEvents.at(-1)!;
    out.push({
      iteration: index + 1,
      events,
      window: { start: first.time, end: last.time },
      closedAs: last.type,
      children,
    });
  }
  return out;
}

/** The busy time per activity type (summed execution, not the union), for the breakdown's context. */
function activityTotals(events: readonly HistoryEvent[]): Map<string, { count: number; ms: number }> {
  const started = new Map<string, HistoryEvent>();
  const totals = new Map<string, { count: number; ms: number }>();
  for (const e of events) {
    const key = `${e.workflow}#${e.scheduledEventId ?? 0}`;
    if (e.type === 'ActivityTaskStarted') started.set(key, e);
  }
  for (const e of events) {
    if (!/^ActivityTask(Completed|Failed|TimedOut|Canceled)$/.test(e.type)) continue;
    const s = started.get(`${e.workflow}#${e.scheduledEventId ?? 0}`);
    if (!s) continue;
    const entry = totals.get(e.subject ?? '?') ?? { count: 0, ms: 0 };
    entry.count++;
    entry.ms += e.time - s.time;
    totals.set(e.subject ?? '?', entry);
  }
  return totals;
}

function printReport(it: IterationHistory, report: OverheadReport): void {
  console.log(
    `== loop: iteration ${it.iteration} (loop run closed as ${it.closedAs}; stage children: ${it.children.map((c) => c.split('/').at(-1)).join(', ') || 'none'})`,
  );
  console.log(
    `wall ${sec(report.wallMs)} s, busy ${sec(report.busyMs)} s (union of ${fmt(report.activities)} activity executions), ` +
      `overhead ${sec(report.overheadMs)} s = ${report.overheadPercent.toFixed(2)}% (target < ${TARGET_PERCENT}%), ${report.gaps.length} gaps`,
  );
  const totals = [...activityTotals(it.events)].sort((a, b) => b[1].ms - a[1].ms);
  console.log(
    formatTable(
      ['activity', 'executions', 'summed s'],
      totals.map(([name, t]) => [name, t.count, sec(t.ms)]),
    ),
  );
  console.log('largest gaps (no activity running):');
  console.log(
    formatTable(
      ['#', 'ms', 'at s', 'after', 'events inside', 'before'],
      report.gaps.slice(0, 5).map((g, i) => [
        i + 1,
        Math.round(g.ms),
        sec(g.start - report.window.start),
        describeEvent(g.before),
        g.inside.length <= 6
          ? g.inside.map((e) => `${e.workflow}:${e.type}`).join(', ')
          : `${g.inside
              .slice(0, 6)
              .map((e) => `${e.workflow}:${e.type}`)
              .join(', ')} … (${g.inside.length})`,
        describeEvent(g.after),
      ]),
    ),
  );
  console.log('gap time by kind of step:');
  console.log(
    formatTable(
      ['kind', 'pieces', 'ms', '% of wall'],
      report.byKind.map((k) => [k.kind, k.count, Math.round(k.ms), ((100 * k.ms) / report.wallMs).toFixed(2)]),
    ),
  );
  console.log('gap time by transition (top 8):');
  console.log(
    formatTable(
      ['transition', 'pieces', 'ms', 'mean ms'],
      report.byTransition
        .slice(0, 8)
        .map((t) => [t.transition, t.count, Math.round(t.ms), (t.ms / t.count).toFixed(1)]),
    ),
  );
}

export async function run(): Promise<Figure[]> {
  const opts = options();
  const N = opts.samples;
  const scratch = benchScratch('loop');
  let services: BenchServices | undefined;
  let sim: ChildProcess | undefined;
  let worker: ChildProcess | undefined;
  let loops: (LoopClient & { close(): Promise<void> }) | undefined;
  const workerLog = path.join(scratch, 'worker.log');
  const { policy, judge, generator } = opts.latencyMs;
  console.log(
    `== loop: ${opts.iterations} iteration(s) over ${fmt(N)} samples on the real stack, orchestration overhead from the histories; temp ${scratch}`,
  );
  console.log(
    `latencies: policy ${policy} ms, judge ${judge} ms, generator ${generator} ms per chat request (sim latency rules); ` +
      `trainer ${opts.trainSeconds} s per job (sim serve --train-seconds); load average before: ${loadAverage()} on ${os.cpus().length} cores`,
  );
  try {
    const setupStart = performance.now();
    services = await startBenchServices(scratch);
    const { postgres, temporal } = services;
    const pool = await openDatabase({ url: postgres.url, applicationName: 'looptool-bench', max: 2 });
    const temporalVersion = execFileSync(services.temporalCli, ['--version'], { encoding: 'utf8' }).trim();
    const seedFile = path.join(scratch, 'seed.jsonl');
    await runChild([LOOPTOOL_BIN, 'sim', 'seed', '--out', seedFile, '--count', String(N), '--seed', '7']);
    const staged = await stageFile({ pool, file: seedFile, format: 'openai', purpose: 'import', target: 'bench-seed' });
    const { version } = await versionFromImport(pool, { dataset: 'bench-seed', batchId: staged.batchId });
    if (!version) throw new Error('the import made no version');
    await pool.end();

    const simServer = await startSim(['--train-seconds', String(opts.trainSeconds)]);
    sim = simServer.child;
    const rules: FaultRule[] = (['policy', 'judge', 'generator'] as const).map((role) => ({
      role,
      kind: 'latency',
      latencyMs: opts.latencyMs[role],
    }));
    const set = await fetch(`${simServer.url}/sim/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ rules }),
    });
    if (!set.ok) throw new Error(`the sim server refused the latency rules: ${set.status} ${await set.text()}`);

    const suffix = '-loop-bench';
    const spawned = spawnWorker(
      {
        TEMPORAL_ADDRESS: temporal.address,
        DATABASE_URL: postgres.url,
        LOOPTOOL_TASK_QUEUE_SUFFIX: suffix,
        LOOPTOOL_TASK_QUEUES: 'control,llm,gpu',
        LOOPTOOL_ARTIFACTS_DIR: path.join(scratch, 'artifacts'),
        LOOPTOOL_MIGRATE_ON_START: 'false',
        LOOPTOOL_SHUTDOWN_GRACE_SECONDS: '5',
      },
      workerLog,
    );
    worker = spawned.child;
    // A deployment's workers are up before a loop starts: the first workflow task must not wait for the workflow
    // bundle to be built.
    await Promise.race([
      spawned.ready,
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error(`the worker did not start; log:\n${tail(workerLog)}`)), 120_000).unref(),
      ),
    ]);

    loops = await LoopClient.connect(temporal.address);
    const config = demoConfig({
      name: LOOP,
      simUrl: simServer.url,
      seedDataset: 'bench-seed',
      iterations: opts.iterations,
      seed: 7,
      initialSize: N,
    });
    console.log(
      `stack: ${temporalVersion}; looptool worker (control, llm, gpu); loop: the demo's config (judge ${config.judge.votes} votes, ` +
        `expand k ${config.expand.k}, batches of ${config.probe.batchSize} / ${config.judge.batchSize} / ${config.expand.batchSize}, ` +
        `${config.concurrency.batches} in flight, BFCL non-live held out); setup took ${sec(performance.now() - setupStart)} s`,
    );
    const started = await loops.start({
      loopName: LOOP,
      config,
      configHash: contentHash(config),
      queues: taskQueues(suffix),
    });
    if (!started.runId) throw new Error(`loop ${LOOP} was not started (${started.status ?? 'exists'})`);
    const runStart = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      loops
        .handle(LOOP)
        .result()
        .then(() => 'completed'),
      spawned.exit.then((exit) => {
        throw new Error(`the worker exited (${JSON.stringify(exit)}); its log:\n${tail(workerLog)}`);
      }),
      new Promise<string>((resolve) => {
        timer = setTimeout(resolve, opts.timeoutMinutes * 60_000, 'timeout');
      }),
    ]).finally(() => clearTimeout(timer));
    if (outcome !== 'completed') {
      await loops.handle(LOOP).terminate('bench: out of time');
      throw new Error(`the loop did not finish in ${opts.timeoutMinutes} minutes; worker log: ${workerLog}`);
    }
    console.log(`loop finished in ${sec(performance.now() - runStart)} s; load average after: ${loadAverage()}`);

    // The trainer's own record of each job: how long after the job finished did the training activity notice it?
    const jobs = (await (await fetch(`${simServer.url}/trainer/v1/jobs`)).json()) as {
      data: { job_key: string; started_at?: string; finished_at?: string }[];
    };

    const fetched: HistorySink = [];
    const histories = await iterationHistories(loops.client, started.runId, fetched);
    if (opts.histories) {
      mkdirSync(opts.histories, { recursive: true });
      // Each event as protobufjs writes it (int64 and bytes as strings): `temporal.api.history.v1.History.fromObject`
      // reads it back for `Worker.runReplayHistory`.
      for (const [i, { workflowId, history }] of fetched.entries())
        writeFileSync(
          path.join(opts.histories, `${String(i + 1).padStart(2, '0')}-${workflowId.replaceAll('/', '_')}.json`),
          JSON.stringify({ events: history.events }),
        );
      console.log(`${fetched.length} workflow histories written to ${opts.histories}`);
    }
    const figures: Figure[] = [];
    const reports: { iteration: number; report: OverheadReport }[] = [];
    for (const it of histories) {
      const report = analyseOverhead(it.events, it.window);
      reports.push({ iteration: it.iteration, report });
      printReport(it, report);
      const trained = it.events.find((e) => e.type === 'ActivityTaskCompleted' && e.subject === 'trainIteration');
      const job = jobs.data.find((j) => j.job_key.endsWith(`-iter-${it.iteration}`));
      if (trained && job?.finished_at)
        console.log(
          `training: the sim job ran ${sec(Date.parse(job.finished_at) - Date.parse(job.started_at ?? job.finished_at))} s; ` +
            `the activity completed ${sec(trained.time - Date.parse(job.finished_at))} s after the job finished ` +
            '(its status poll interval; inside the activity, so counted busy, not overhead)',
        );
      figures.push({
        section: 'loop',
        figure: `orchestration overhead, iteration ${it.iteration} (${fmt(N)} samples, wall ${sec(report.wallMs)} s)`,
        value: `${report.overheadPercent.toFixed(2)}%`,
        target: `< ${TARGET_PERCENT}%`,
        met: report.overheadPercent < TARGET_PERCENT,
      });
    }
    const all = histories.map((it, i) => ({ it, report: reports[i]!.report }));
    const wall = all.reduce((n, r) => n + r.report.wallMs, 0);
    const overhead = all.reduce((n, r) => n + r.report.overheadMs, 0);
    console.log(
      `== loop: all ${all.length} iterations: wall ${sec(wall)} s, overhead ${sec(overhead)} s = ${((100 * overhead) / wall).toFixed(2)}%`,
    );
    figures.push({
      section: 'loop',
      figure: `orchestration overhead, all ${all.length} iterations`,
      value: `${((100 * overhead) / wall).toFixed(2)}%`,
      target: `< ${TARGET_PERCENT}%`,
      met: (100 * overhead) / wall < TARGET_PERCENT,
    });
    if (opts.json) {
      const out = {
        samples: N,
        options: opts,
        iterations: reports.map(({ iteration, report }, i) => ({
          iteration,
          ...report,
          gaps: report.gaps.slice(0, 20),
          events: histories[i]!.events,
        })),
      };
      writeFileSync(opts.json, `${JSON.stringify(out, null, 2)}\n`);
      console.log(`reports written to ${opts.json}`);
    }
    return figures;
  } finally {
    await stopChild(worker);
    await loops?.close();
    await stopChild(sim);
    await services?.stop();
    if (opts.keep) console.log(`kept ${scratch} (worker log: ${workerLog})`);
    else rmSync(scratch, { recursive: true, force: true });
  }
}
