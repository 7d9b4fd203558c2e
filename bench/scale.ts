import { type ChildProcess, execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { WorkflowExecutionInfo } from '@temporalio/client';
import { LoopClient } from '../client/loop-client.js';
import { formatTable } from '../client/format.js';
import { LoopConfig } from '../core/config.js';
import { taskQueues, workflowIds } from '../core/constants.js';
import { contentHash } from '../core/hash.js';
import { stageProgressQuery, statusQuery } from '../core/messages.js';
import { stageFile, versionFromImport } from '../datasets/import.js';
import { openDatabase } from '../db/open.js';
import {
  type BenchServices,
  benchScratch,
  LOOPTOOL_BIN,
  runChild,
  startBenchServices,
  spawnWorker,
  startSim,
  stopChild,
  tail,
  timestampMs,
} from './lib/stack.js';

/**
 * `scale` section (issue 12 item 8): one simulated iteration over N samples (default 1,000,000), probe → judge →
 * expand → assemble, through the real stack: a Temporal dev server and an embedded PostgreSQL of its own (fresh, in a
 * temp folder), the simulated model server in a child process, and `looptool worker` as a separate process whose RSS
 * is sampled every second from /proc. The loop has `probeFirst` (iteration 1 probes the base model: no training) and
 * two iterations, because D_{j+1} is assembled only when another iteration follows; iteration 2 would train, so the
 * worker serves only the control and llm queues and the loop is terminated as soon as iteration 2's run starts.
 * Everything else is the loop config's defaults (probe batches of 200, judge 100 × 3 votes, expand 50 × k 4, 4
 * batches in flight, 64 requests per role).
 *
 * It reports the wall time of each stage (from Temporal's own start and close times), the history event count and
 * size of every workflow run against Temporal's limits (51,200 events / 50 MB per run; warnings at 10,240 / 10 MB),
 * and the worker's RSS: when 20,000 samples were probed, its range and median per stage, at the end, and its peak
 * (the kernel's VmHWM).
 *
 * Only when named (`npm run bench -- scale`): a million samples took 76 minutes on 2 cores with `--votes=1 --k=1`,
 * plus 16 minutes of setup (bench/SCALE.md); the defaults' 3 votes and k 4 take longer. Options:
 * `--samples=N` (or BENCH_SCALE_SAMPLES), `--quick` (20,000), `--keep` (leave the temp folder, with the worker's log),
 * `--json=<file>` (the measurements as JSON), `--votes=V` and `--k=K` (judge.votes and expand.k: fewer model calls per
 * sample, the same batches and histories), `--timeout-minutes=M` (after M minutes the loop is stopped and what ran
 * so far is reported; default 240).
 */
export const namedOnly = true;

/** Temporal's per-run history limits (the server's defaults: limit.historyCount / limit.historySize, error and warn). */
const LIMITS = { events: 51_200, bytes: 50 * 1024 * 1024, warnEvents: 10_240, warnBytes: 10 * 1024 * 1024 };
/** Where the worker's RSS is reported during the probe. */
const EARLY_MARK = 20_000;
const LOOP = 'scale';

interface Options {
  samples: number;
  keep: boolean;
  json?: string;
  timeoutMinutes: number;
  /** Overrides of judge.votes and expand.k: less model work per sample, the same batches and histories. */
  votes?: number;
  k?: number;
}

function options(argv: readonly string[] = process.argv.slice(2)): Options {
  const value = (name: string) => argv.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3);
  const samples = argv.includes('--quick')
    ? 20_000
    : Number(value('samples') ?? process.env.BENCH_SCALE_SAMPLES ?? 1_000_000);
  if (!Number.isInteger(samples) || samples < 1 || samples > 1_000_000)
    throw new Error(`--samples must be an integer from 1 to 1,000,000 (looptool sim seed's range), got ${samples}`);
  const json = value('json');
  const votes = value('votes');
  const k = value('k');
  return {
    samples,
    keep: argv.includes('--keep'),
    ...(json ? { json: path.resolve(json) } : {}),
    timeoutMinutes: Number(value('timeout-minutes') ?? 240),
    ...(votes ? { votes: Number(votes) } : {}),
    ...(k ? { k: Number(k) } : {}),
  };
}

/** One reading of the sampler, every second. */
interface Sample {
  seconds: number;
  stage: string;
  probed: number;
  workerRssMb: number;
  temporalRssMb: number;
}

/** A process's resident set and its peak (VmHWM), from /proc; zeros once it is gone. */
function memoryOf(pid: number | undefined): { rssMb: number; peakMb: number } {
  if (!pid) return { rssMb: 0, peakMb: 0 };
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
    return { rssMb: Math.round(kb('VmRSS') / 1024), peakMb: Math.round(kb('VmHWM') / 1024) };
  } catch {
    return { rssMb: 0, peakMb: 0 };
  }
}

const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(2);
const fmt = (n: number) => n.toLocaleString('en-US');
const secondsOf = (ms: number) => Number((ms / 1000).toFixed(1));

export async function run(): Promise<void> {
  const opts = options();
  const N = opts.samples;
  const scratch = benchScratch('scale');
  let services: BenchServices | undefined;
  let sim: ChildProcess | undefined;
  let worker: ChildProcess | undefined;
  let loops: (LoopClient & { close(): Promise<void> }) | undefined;
  const workerLog = path.join(scratch, 'worker.log');
  console.log(`== scale: one iteration over ${fmt(N)} samples (probe → judge → expand → assemble); temp ${scratch}`);
  try {
    const setupStart = performance.now();
    services = await startBenchServices(scratch);
    const { postgres: pgServer, temporal } = services;
    const pool = await openDatabase({ url: pgServer.url, applicationName: 'looptool-bench', max: 4 });
    const pgVersion = (await pool.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]!.v;
    const temporalVersion = execFileSync(services.temporalCli, ['--version'], { encoding: 'utf8' }).trim();
    const machine = `${os.cpus().length} cores, ${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB RAM, node ${process.version}, PostgreSQL ${pgVersion}, ${temporalVersion}`;
    console.log(`machine: ${machine}`);

    // Seed data: generated by `looptool sim seed` (writeSeedData) in a child, so a million samples never sit in this
    // process's heap; it holds them all at once, hence the larger heap limit.
    const seedFile = path.join(scratch, 'seed.jsonl');
    let t = performance.now();
    await runChild([LOOPTOOL_BIN, 'sim', 'seed', '--out', seedFile, '--count', String(N), '--seed', '7'], {
      ...process.env,
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --max-old-space-size=8192`.trim(),
    });
    const generateSeconds = (performance.now() - t) / 1000;
    t = performance.now();
    const staged = await stageFile({ pool, file: seedFile, format: 'openai', purpose: 'import', target: 'bench-seed' });
    const { version } = await versionFromImport(pool, { dataset: 'bench-seed', batchId: staged.batchId });
    if (!version) throw new Error('the import made no version');
    const importSeconds = (performance.now() - t) / 1000;
    console.log(
      `seed data: generated in ${generateSeconds.toFixed(1)} s, imported in ${importSeconds.toFixed(1)} s (${fmt(version.memberCount ?? N)} members)`,
    );
    rmSync(seedFile);

    const simServer = await startSim();
    sim = simServer.child;
    const suffix = '-scale';
    const spawned = spawnWorker(
      {
        TEMPORAL_ADDRESS: temporal.address,
        DATABASE_URL: pgServer.url,
        LOOPTOOL_TASK_QUEUE_SUFFIX: suffix,
        // No gpu queue: iteration 2 starts with training, which then waits unserved until the loop is terminated.
        LOOPTOOL_TASK_QUEUES: 'control,llm',
        LOOPTOOL_ARTIFACTS_DIR: path.join(scratch, 'artifacts'),
        LOOPTOOL_MIGRATE_ON_START: 'false',
        LOOPTOOL_SHUTDOWN_GRACE_SECONDS: '5',
      },
      workerLog,
    );
    worker = spawned.child;
    const workerPid = worker.pid;
    const workerExit = spawned.exit;

    loops = await LoopClient.connect(temporal.address);
    const v1 = `${simServer.url}/v1`;
    const config = LoopConfig.parse({
      name: LOOP,
      seed: 7,
      data: { seedDataset: 'bench-seed', initialSize: N },
      models: {
        policy: { baseUrls: [v1], model: 'sim-student', maxConcurrency: 64 },
        judge: { baseUrls: [v1], model: 'sim-judge', maxConcurrency: 64 },
        generator: { baseUrls: [v1], model: 'sim-generator', maxConcurrency: 64 },
      },
      training: { backend: 'sim', url: simServer.url },
      iterations: 2,
      probeFirst: true,
      ...(opts.votes ? { judge: { votes: opts.votes } } : {}),
      ...(opts.k ? { expand: { k: opts.k } } : {}),
    });
    console.log(
      `loop: judge ${config.judge.votes} votes, expand k ${config.expand.k}; batches of ${config.probe.batchSize} / ${config.judge.batchSize} / ${config.expand.batchSize}, ${config.concurrency.batches} in flight`,
    );
    const started = await loops.start({
      loopName: LOOP,
      config,
      configHash: contentHash(config),
      queues: taskQueues(suffix),
    });
    const firstRun = loops.client.workflow.getHandle(workflowIds.loop(LOOP), started.runId);
    const probeId = workflowIds.stage(LOOP, 1, 'probe');
    console.log(
      `setup (services, seed data, worker start) took ${((performance.now() - setupStart) / 1000).toFixed(1)} s`,
    );

    // The sampler: once a second, the worker's RSS, the loop's stage and (during the probe) how many samples the probe
    // child has counted, until iteration 1's run has closed.
    const samples: Sample[] = [];
    const loopStart = performance.now();
    const deadline = loopStart + opts.timeoutMinutes * 60_000;
    let probed = 0;
    let stage = 'setup';
    let lastPrint = 0;
    let closedAs: string;
    for (;;) {
      // Past the deadline the run is reported as far as it got (the stages that finished, every history so far).
      if (performance.now() > deadline) {
        closedAs = 'INCOMPLETE';
        console.log(`gave up after ${opts.timeoutMinutes} minutes in ${stage}: reporting what ran`);
        break;
      }
      const exited = await Promise.race([workerExit, new Promise((resolve) => setTimeout(resolve, 1000, undefined))]);
      if (exited)
        throw new Error(`the worker exited (${JSON.stringify(exited)}); its log: ${workerLog}\n${tail(workerLog)}`);
      const described = await firstRun.describe().catch(() => undefined);
      if (described && described.status.name !== 'RUNNING') {
        closedAs = described.status.name;
        break;
      }
      const status = await firstRun.query(statusQuery).catch(() => undefined);
      if (status) stage = status.stage;
      if (stage === 'probe') {
        const progress = await loops.client.workflow
          .getHandle(probeId)
          .query(stageProgressQuery)
          .catch(() => undefined);
        if (progress) probed = Math.max(probed, progress.counts.probed ?? 0);
      } else if (stage !== 'setup') probed = N;
      const seconds = (performance.now() - loopStart) / 1000;
      samples.push({
        seconds,
        stage,
        probed,
        workerRssMb: memoryOf(workerPid).rssMb,
        temporalRssMb: memoryOf(temporal.pid).rssMb,
      });
      if (seconds - lastPrint >= 60) {
        lastPrint = seconds;
        console.log(
          `  ${seconds.toFixed(0)} s: ${stage}, ${fmt(probed)} probed, worker RSS ${samples.at(-1)!.workerRssMb} MB`,
        );
      }
    }
    const workerPeakMb = memoryOf(workerPid).peakMb;
    const workerEndMb = memoryOf(workerPid).rssMb;
    if (closedAs !== 'CONTINUED_AS_NEW' && closedAs !== 'INCOMPLETE')
      throw new Error(`iteration 1's run closed as ${closedAs}, not continued as new; worker log: ${workerLog}`);
    // Iteration 2 has started (and waits for a training worker that never comes): it is not part of the measurement.
    // An incomplete run is stopped the same way, its stage child with it (parent close policy: terminate).
    await loops.handle(LOOP).terminate('bench: iteration 1 measured');
    const complete = closedAs === 'CONTINUED_AS_NEW';

    // Every run of every workflow of the loop, with Temporal's own counts.
    const executions: WorkflowExecutionInfo[] = [];
    for await (const execution of loops.client.workflow.list({ query: `WorkflowId STARTS_WITH "loop/${LOOP}"` }))
      executions.push(execution);
    executions.sort((a, b) => a.startTime.getTime() - b.startTime.getTime());
    const runs = await Promise.all(
      executions.map(async (execution) => {
        const described = await loops!.client.workflow.getHandle(execution.workflowId, execution.runId).describe();
        return {
          workflowId: execution.workflowId,
          status: described.status.name,
          events: described.historyLength,
          bytes: described.historySize ?? execution.historySize ?? 0,
          start: execution.startTime.getTime(),
          close: execution.closeTime?.getTime() ?? Date.now(),
        };
      }),
    );

    // Stage wall times: a stage child from its first run's start to its last run's close; assemble from the loop's own
    // history (its activity's scheduled and completed events); setup is the loop's start until the probe child starts.
    const loopRun = runs.find((r) => r.workflowId === workflowIds.loop(LOOP))!;
    type StageName = 'probe' | 'judge' | 'expand';
    const STAGES: StageName[] = ['probe', 'judge', 'expand'];
    const stageSpan = (name: StageName) => {
      const mine = runs.filter((r) => r.workflowId === workflowIds.stage(LOOP, 1, name));
      if (mine.length === 0) return undefined;
      return {
        start: Math.min(...mine.map((r) => r.start)),
        end: Math.max(...mine.map((r) => r.close)),
        completed: mine.at(-1)!.status === 'COMPLETED',
      };
    };
    const spans = Object.fromEntries(STAGES.map((name) => [name, stageSpan(name)]));
    const loopEvents = (await firstRun.fetchHistory()).events ?? [];
    const assembleScheduled = loopEvents.find(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'assembleNextVersion',
    );
    const assembleCompleted = loopEvents.find(
      (e) =>
        String(e.activityTaskCompletedEventAttributes?.scheduledEventId ?? '') === String(assembleScheduled?.eventId),
    );
    const assemble = assembleCompleted
      ? { start: timestampMs(assembleScheduled?.eventTime), end: timestampMs(assembleCompleted.eventTime) }
      : undefined;
    // A finished stage's totals are its result; an unfinished one (an incomplete run) has none.
    const counts = Object.fromEntries(
      await Promise.all(
        STAGES.map(
          async (name) =>
            [
              name,
              spans[name]?.completed
                ? await loops!.client.workflow.getHandle(workflowIds.stage(LOOP, 1, name)).result()
                : {},
            ] as const,
        ),
      ),
    ) as Record<StageName, Record<string, number>>;
    const members = (
      await pool.query<{ role: string; n: string }>(
        `SELECT m.role, count(*) AS n FROM dataset_versions v JOIN dataset_members m ON m.version_id = v.id
         WHERE v.loop_name = $1::text AND v.iteration = 2 GROUP BY m.role ORDER BY m.role`,
        [LOOP],
      )
    ).rows;
    const dbSize = (
      await pool.query<{ size: string }>('SELECT pg_size_pretty(pg_database_size(current_database())) AS size')
    ).rows[0]!.size;
    await pool.end();

    const unfinished = (name: StageName) => (spans[name] && !spans[name].completed ? ' (unfinished)' : '');
    const stageRows: [string, number, number, string][] = [];
    const addRow = (name: string, from: number | undefined, to: number | undefined, what: string) => {
      if (from !== undefined && to !== undefined) stageRows.push([name, from, to, what]);
    };
    addRow('setup (register, draw D_1)', loopRun.start, spans.probe?.start, '');
    addRow(
      `probe${unfinished('probe')}`,
      spans.probe?.start,
      spans.probe?.end,
      `${fmt(counts.probe.probed ?? 0)} samples`,
    );
    addRow(
      `judge${unfinished('judge')}`,
      spans.judge?.start,
      spans.judge?.end,
      `${fmt(counts.judge.judged ?? 0)} judged`,
    );
    addRow(
      `expand${unfinished('expand')}`,
      spans.expand?.start,
      spans.expand?.end,
      `${fmt(counts.expand.seeds ?? 0)} error seeds`,
    );
    addRow(
      'assemble (D_2, Eq. 5)',
      assemble?.start,
      assemble?.end,
      `${fmt(members.reduce((n, r) => n + Number(r.n), 0))} members`,
    );
    if (complete) addRow('iteration 1 in all', loopRun.start, loopRun.close, `${fmt(N)} samples`);
    console.log(`== scale: wall time per stage (${fmt(N)} samples; Temporal's start/close times)`);
    console.log(
      formatTable(
        ['stage', 'seconds', 'what', 'per second'],
        stageRows.map(([name, from, to, what]) => {
          const seconds = (to - from) / 1000;
          const amount = Number(/^([\d,]+)/.exec(what)?.[1]?.replaceAll(',', '') ?? 0);
          return [name, secondsOf(to - from), what, amount && seconds > 0 ? fmt(Math.round(amount / seconds)) : ''];
        }),
      ),
    );
    console.log(`stage counts: ${STAGES.map((name) => `${name} ${JSON.stringify(counts[name])}`).join('; ')}`);
    console.log(`D_2 by role: ${members.map((r) => `${r.role} ${fmt(Number(r.n))}`).join(', ')}; database ${dbSize}`);

    // Histories: one row per workflow (its runs, the largest run), then the largest run of all against the limits.
    const byWorkflow = new Map<string, typeof runs>();
    for (const r of runs) byWorkflow.set(r.workflowId, [...(byWorkflow.get(r.workflowId) ?? []), r]);
    console.log(
      '== scale: workflow histories (per run; Temporal limits 51,200 events / 50 MB, warnings 10,240 / 10 MB)',
    );
    console.log(
      formatTable(
        ['workflow', 'runs', 'max events/run', 'max MB/run', 'events, all runs', 'MB, all runs'],
        [...byWorkflow].map(([id, list]) => [
          id,
          list.length,
          fmt(Math.max(...list.map((r) => r.events))),
          mb(Math.max(...list.map((r) => r.bytes))),
          fmt(list.reduce((n, r) => n + r.events, 0)),
          mb(list.reduce((n, r) => n + r.bytes, 0)),
        ]),
      ),
    );
    const largestEvents = runs.reduce((a, b) => (b.events > a.events ? b : a));
    const largestBytes = runs.reduce((a, b) => (b.bytes > a.bytes ? b : a));
    console.log(
      `largest run: ${fmt(largestEvents.events)} events (${largestEvents.workflowId}) = ${((100 * largestEvents.events) / LIMITS.events).toFixed(1)}% of the limit, ` +
        `${((100 * largestEvents.events) / LIMITS.warnEvents).toFixed(1)}% of the warning; ` +
        `${mb(largestBytes.bytes)} MB (${largestBytes.workflowId}) = ${((100 * largestBytes.bytes) / LIMITS.bytes).toFixed(2)}% of the limit`,
    );

    // Worker memory. RSS saws up and down with V8's garbage collection (±100 MB at this size), so each stage is
    // summarised by the range and median of its once-a-second readings rather than by a single one; the probe is also
    // split at the 20,000th sample, the point the issue compares the end with.
    const mark = Math.min(EARLY_MARK, N);
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
    const windows: [string, Sample[]][] = [
      [`probe, first ${fmt(mark)} samples`, samples.filter((x) => x.stage === 'probe' && x.probed < mark)],
      [`probe, after ${fmt(mark)} samples`, samples.filter((x) => x.stage === 'probe' && x.probed >= mark)],
      ['judge', samples.filter((x) => x.stage === 'judge')],
      ['expand', samples.filter((x) => x.stage === 'expand')],
      ['assemble', samples.filter((x) => x.stage === 'assemble')],
    ];
    const atMark = samples.find((x) => x.probed >= mark);
    const last = samples.at(-1);
    console.log('== scale: worker RSS in MB (sampled every second from /proc; the peak is the kernel VmHWM)');
    console.log(
      formatTable(
        ['window', 'readings', 'min', 'median', 'max', 'Temporal server RSS at its end'],
        windows
          .filter(([, list]) => list.length > 0)
          .map(([label, list]) => {
            const rss = list.map((x) => x.workerRssMb);
            return [label, list.length, Math.min(...rss), median(rss), Math.max(...rss), list.at(-1)!.temporalRssMb];
          }),
      ),
    );
    console.log(
      `worker RSS when ${fmt(mark)} samples were probed: ${atMark?.workerRssMb ?? '?'} MB (${atMark?.seconds.toFixed(0) ?? '?'} s in); ` +
        `at the end ${workerEndMb} MB (last reading ${last?.workerRssMb ?? '?'} MB, ${last?.seconds.toFixed(0) ?? '?'} s in); ` +
        `peak ${workerPeakMb} MB (VmHWM, worker start-up included)` +
        (complete
          ? `; ${fmt(Math.round(N / ((loopRun.close - loopRun.start) / 1000)))} samples/s over the whole iteration`
          : ''),
    );

    if (opts.json) {
      writeFileSync(
        opts.json,
        `${JSON.stringify(
          {
            samples: N,
            machine,
            generateSeconds,
            importSeconds,
            stages: stageRows.map(([name, from, to, what]) => ({ name, seconds: (to - from) / 1000, what })),
            counts,
            members,
            databaseSize: dbSize,
            runs,
            complete,
            memory: { atMark, workerEndMb, workerPeakMb, timeline: samples },
          },
          null,
          2,
        )}\n`,
      );
      console.log(`measurements written to ${opts.json}`);
    }
  } finally {
    await stopChild(worker);
    await loops?.close();
    await stopChild(sim);
    await services?.stop();
    if (opts.keep) console.log(`kept ${scratch} (worker log: ${workerLog})`);
    else rmSync(scratch, { recursive: true, force: true });
  }
}
