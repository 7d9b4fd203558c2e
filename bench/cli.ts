import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import type pg from 'pg';
import { LoopConfig } from '../core/config.js';
import { contentHash } from '../core/hash.js';
import { stageFile, versionFromImport } from '../datasets/import.js';
import { demoConfig } from '../client/commands/demo.js';
import { formatTable } from '../client/format.js';
import type { Figure } from './lib/figures.js';
import { LoopClient } from '../client/loop-client.js';
import { openDatabase } from '../db/open.js';
import { servicesDown, servicesUp } from '../services/local-services.js';
import { projectPath } from '../services/paths.js';
import { loadSharedSettings } from '../services/settings.js';
import { writeSeedData } from '../sim/seed-data.js';
import { startSimServer, type SimServer } from '../sim/server.js';
import { loadWorkerConfig } from '../worker/config.js';
import { type LooptoolWorker, startWorker } from '../worker/worker.js';
import { freePort, freeTemporalPorts } from '../test/helpers/ports.js';

/**
 * `cli` section: whole-process wall time of the `looptool` command as a user runs it (`node bin/looptool.js …`, from
 * the compiled dist/), against `node -e ''` measured in the same run as the anchor, so the ratio means the same on a
 * fast and a slow machine. `loop status` asks real services about a real loop: an embedded Temporal dev server and
 * PostgreSQL started here in a scratch data dir on free ports, a 1-iteration loop on the simulated stack run to the end
 * by a worker in this process, which keeps running while status is timed (a query needs a worker). Each command runs
 * once to warm up (and to build dist/ if it is stale), then BENCH_CLI_RUNS times (default 9), interleaved; the table
 * has the medians. Targets (issue: a fast CLI): `--help` ≤ 4× the anchor; `loop status` < 1000 ms.
 */
const LOOPTOOL_BIN = projectPath('bin', 'looptool.js');
const RUNS = Math.max(7, Number(process.env.BENCH_CLI_RUNS ?? 9));
const SAMPLES = 60;

interface Timed {
  label: string;
  args: string[];
  /** What the command must print, so a failing command is never timed as a fast one. */
  expect: RegExp;
  times: number[];
}

export async function run(): Promise<Figure[]> {
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'looptool-bench-cli-'));
  // As root, PostgreSQL runs as the postgres user, which must be able to reach its data dir inside this folder.
  chmodSync(scratch, 0o755);
  const { TEMPORAL_ADDRESS: _t, DATABASE_URL: _d, ...inherited } = process.env;
  const temporalPorts = await freeTemporalPorts();
  const env: NodeJS.ProcessEnv = {
    ...inherited,
    LOOPTOOL_DATA_DIR: path.join(scratch, 'data'),
    LOOPTOOL_TEMPORAL_PORT: String(temporalPorts.port),
    LOOPTOOL_TEMPORAL_UI_PORT: String(temporalPorts.uiPort),
    LOOPTOOL_PG_PORT: String(await freePort()),
    LOOPTOOL_SHUTDOWN_GRACE_SECONDS: '1',
  };
  const settings = loadSharedSettings(env);
  try {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
  } catch {
    // Another section of this process installed the Temporal runtime already.
  }

  let pool: pg.Pool | undefined;
  let sim: SimServer | undefined;
  let loops: (LoopClient & { close(): Promise<void> }) | undefined;
  let worker: LooptoolWorker | undefined;
  let commands: Timed[];
  const setupStarted = performance.now();
  try {
    const services = await servicesUp(settings);
    pool = await openDatabase({ url: services.database.url, applicationName: 'looptool-bench' });
    sim = await startSimServer({ seed: 7, trainer: { jobSeconds: 0.2 }, bfclDir: false });
    const seedFile = path.join(scratch, 'seed.jsonl');
    await writeSeedData(seedFile, { count: SAMPLES, seed: 7 });
    const seedDataset = 'bench-cli-seed';
    const staged = await stageFile({ pool, file: seedFile, format: 'openai', purpose: 'import', target: seedDataset });
    await versionFromImport(pool, { dataset: seedDataset, batchId: staged.batchId });

    worker = await startWorker(loadWorkerConfig(env));
    loops = await LoopClient.connect(services.temporal.address, settings.temporal.namespace);
    const loopName = 'bench-cli';
    const demo = demoConfig({
      name: loopName,
      simUrl: sim.url,
      seedDataset,
      iterations: 1,
      seed: 7,
      initialSize: Math.round(SAMPLES * 0.65),
    });
    const config = LoopConfig.parse({ ...demo, evaluation: { sets: [] } });
    await loops.start({ loopName, config, configHash: contentHash(config), queues: settings.queues });
    await withTimeout(loops.handle(loopName).result(), 180_000, `loop ${loopName} did not finish`);
    console.log(
      `[bench cli] services, ${SAMPLES}-sample seed and a 1-iteration loop ready in ${Math.round((performance.now() - setupStarted) / 1000)} s`,
    );

    commands = [
      { label: "node -e '' (anchor)", args: ['-e', ''], expect: /^$/, times: [] },
      { label: 'looptool --help', args: [LOOPTOOL_BIN, '--help'], expect: /^Usage: looptool/, times: [] },
      {
        label: 'looptool loop status <name>',
        args: [LOOPTOOL_BIN, 'loop', 'status', loopName],
        expect: new RegExp(`^loop ${loopName}: completed`),
        times: [],
      },
    ];
    for (const command of commands) await timeProcess(command, env);
    for (let i = 0; i < RUNS; i++) for (const command of commands) command.times.push(await timeProcess(command, env));
  } finally {
    await worker?.shutdown().catch((err: unknown) => console.error('[bench cli] worker shutdown:', err));
    await loops?.close();
    await sim?.close();
    await pool?.end();
    await servicesDown(settings);
    rmSync(scratch, { recursive: true, force: true });
  }

  const [anchor, help, status] = commands.map((command) => median(command.times)) as [number, number, number];
  const verdict = (pass: boolean) => (pass ? 'PASS' : 'FAIL');
  const rows = commands.map((command, i) => {
    const ms = median(command.times);
    const target = i === 1 ? '≤ 4× anchor' : i === 2 ? '< 1000 ms' : '';
    const result = i === 1 ? verdict(help <= 4 * anchor) : i === 2 ? verdict(status < 1000) : '';
    return [
      command.label,
      round(ms),
      round(Math.min(...command.times)),
      round(Math.max(...command.times)),
      Number((ms / anchor).toFixed(1)),
      target,
      result,
    ];
  });
  console.log(
    `== cli (whole process wall time, median of ${RUNS} runs after one warm-up; node ${process.version}, ${os.cpus().length} cores)`,
  );
  console.log(formatTable(['command', 'median ms', 'min ms', 'max ms', '× anchor', 'target', 'result'], rows));
  return [
    {
      section: 'cli',
      figure: 'looptool --help, × node -e "" (anchor)',
      value: `${(help / anchor).toFixed(1)}× (${round(help)} ms vs ${round(anchor)} ms)`,
      target: '≤ 4× anchor',
      met: help <= 4 * anchor,
    },
    {
      section: 'cli',
      figure: 'looptool loop status <name>',
      value: `${round(status)} ms`,
      target: '< 1000 ms',
      met: status < 1000,
    },
  ];
}

/** Runs `node <args>` to its end and returns its wall time in ms; fails when it exits non-zero or prints the wrong thing. */
function timeProcess(command: Timed, env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    // Asynchronous, not spawnSync: the worker in this process must keep answering the status query meanwhile.
    const started = performance.now();
    const child = spawn(process.execPath, command.args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = performance.now() - started;
      if (code !== 0 || !command.expect.test(stdout)) {
        reject(
          new Error(`${command.label}: exit ${code}; stdout: ${stdout.slice(0, 300)}; stderr: ${stderr.slice(0, 300)}`),
        );
      } else {
        resolve(ms);
      }
    });
  });
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function round(ms: number): number {
  return Math.round(ms);
}

async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
