import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, createWriteStream, mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  type EmbeddedPostgres,
  startEmbeddedPostgres,
  stopEmbeddedPostgres,
} from '../../services/embedded-postgres.js';
import { projectPath } from '../../services/paths.js';
import { freePort } from '../../services/ports.js';
import { resolveTemporalCli } from '../../services/temporal-cli.js';
import {
  startTemporalDevServer,
  stopTemporalDevServer,
  type TemporalDevServer,
} from '../../services/temporal-dev-server.js';

/**
 * The real stack's pieces the end-to-end bench sections (`scale`, `loop`) start for themselves: ports for a Temporal
 * dev server of their own, the simulated model server and `looptool worker` as child processes, and the readers of
 * what they leave behind (Temporal timestamps, a log's tail).
 */

/** The CLI the sections run as child processes (`sim seed`, `sim serve`, `worker`). */
export const LOOPTOOL_BIN = projectPath('bin', 'looptool.js');

async function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A frontend port with the next ports free too (the dev server binds its internal services there), and a UI port. */
export async function temporalPorts(): Promise<{ port: number; uiPort: number }> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await freePort();
    if (port + 10 > 65_000) continue;
    const block = await Promise.all(Array.from({ length: 10 }, (_, i) => isPortFree(port + i)));
    if (!block.every(Boolean)) continue;
    for (let tries = 0; tries < 20; tries++) {
      const uiPort = await freePort();
      if (uiPort < port - 10 || uiPort > port + 20) return { port, uiPort };
    }
  }
  throw new Error('no free block of ports for a Temporal dev server');
}

/** A fresh temp folder for one section's run (`looptool-bench-<section>-…`). */
export function benchScratch(section: string): string {
  const scratch = mkdtempSync(path.join(os.tmpdir(), `looptool-bench-${section}-`));
  // As root, PostgreSQL runs as the postgres user, which must reach its data dir in here.
  chmodSync(scratch, 0o755);
  return scratch;
}

/** A section's own embedded PostgreSQL (database `bench`) and Temporal dev server, under its scratch folder. */
export interface BenchServices {
  postgres: EmbeddedPostgres;
  temporal: TemporalDevServer;
  /** The `temporal` CLI binary the dev server runs from. */
  temporalCli: string;
  /** Stops both servers (their state stays in the scratch folder). */
  stop(): Promise<void>;
}

/** Starts PostgreSQL, then Temporal, in `scratch`; when one fails to start, what did start is stopped again. */
export async function startBenchServices(scratch: string): Promise<BenchServices> {
  const pgState = path.join(scratch, 'pg');
  const temporalState = path.join(scratch, 'temporal');
  const postgres = await startEmbeddedPostgres({ stateDir: pgState, port: await freePort(), database: 'bench' });
  try {
    const cli = await resolveTemporalCli();
    const temporal = await startTemporalDevServer({
      cliPath: cli.path,
      stateDir: temporalState,
      ...(await temporalPorts()),
    });
    return {
      postgres,
      temporal,
      temporalCli: cli.path,
      async stop() {
        await stopTemporalDevServer(temporalState);
        await stopEmbeddedPostgres(pgState);
      },
    };
  } catch (err) {
    await stopTemporalDevServer(temporalState).catch(() => {});
    await stopEmbeddedPostgres(pgState);
    throw err;
  }
}

/** Runs a child to its end; its stderr passes through, a non-zero exit throws. */
export async function runChild(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'], env });
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`${args.slice(1).join(' ')} exited with ${code}`);
}

/**
 * Node flags for the child sim server (BENCH_SIM_NODE_FLAGS, split on spaces): `--cpu-prof --cpu-prof-dir=/tmp/prof`
 * profiles it. Node refuses `--cpu-prof` in NODE_OPTIONS, and the sim's CPU counts: it shares the cores with the worker.
 */
const SIM_NODE_FLAGS = (process.env.BENCH_SIM_NODE_FLAGS ?? '').split(' ').filter(Boolean);

/**
 * `looptool sim serve` in a child process (its own core and heap); resolves with its URL once it listens. `args` are
 * more `sim serve` options (`--train-seconds 30`).
 */
export async function startSim(args: readonly string[] = []): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(
    process.execPath,
    [...SIM_NODE_FLAGS, LOOPTOOL_BIN, 'sim', 'serve', '--port', '0', '--seed', '7', ...args],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      const match = /Sim server: (\S+)/.exec(out);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`sim server exited with ${code} before it listened`)));
  }).catch(async (err: unknown) => {
    await stopChild(child);
    throw err;
  });
  child.stdout!.resume();
  return { url, child };
}

/** SIGTERM to a child that still runs, and waits for its exit. */
export async function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await exited;
}

/** A protobuf Timestamp as epoch milliseconds. */
export function timestampMs(ts: { seconds?: unknown; nanos?: number | null } | null | undefined): number {
  return Number(ts?.seconds ?? 0) * 1000 + (ts?.nanos ?? 0) / 1e6;
}

/** The last lines of a log file. */
export function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/**
 * `looptool worker` as a child process, as it is deployed: `env` on top of this process's environment (Temporal,
 * PostgreSQL, queues), stdout and stderr into `logFile`. `ready` settles when it polls its queues (its "serving" line:
 * the workflow bundle is built and every Temporal worker created), `exit` when it exits.
 */
export function spawnWorker(
  env: Record<string, string>,
  logFile: string,
): {
  child: ChildProcess;
  ready: Promise<void>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
} {
  const log = createWriteStream(logFile);
  const child = spawn(process.execPath, [LOOPTOOL_BIN, 'worker'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  const exit = once(child, 'exit').then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as NodeJS.Signals | null,
  }));
  const ready = new Promise<void>((resolve, reject) => {
    let out = '';
    const onData = (chunk: Buffer) => {
      out += chunk.toString('utf8');
      if (out.includes('[worker] serving')) {
        child.stdout!.off('data', onData);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    void exit.then((how) => reject(new Error(`the worker exited before it served (${JSON.stringify(how)})`)));
  });
  // Nobody may wait for it (scale watches `exit` instead): a worker that never served must not be an unhandled rejection.
  ready.catch(() => {});
  return { child, ready, exit };
}
