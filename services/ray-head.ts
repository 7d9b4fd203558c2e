import { freePorts } from './ports.js';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { get as httpGet } from 'node:http';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isAlive, stopProcess, tailFile } from './process.js';
import { ensurePythonEnv } from './python-env.js';

/**
 * A local Ray head from PyPI (`ray[default]`, `.tools/py-ray`, recipes/requirements/ray.txt): the cluster the `ray`
 * training backend's tests and `looptool demo --training ray` submit their jobs to, through the dashboard's Jobs REST
 * API. It runs as `ray start --head --block`, one process group this module started and stops by its pid; `ray stop`
 * is not used because it stops every Ray process on the machine, other heads included.
 *
 * Measured on this project's 2-core machine: 3 to 10 s from start to a Jobs API that can run a job, about 1.7 GB of
 * resident memory across its ~19 processes (gcs_server, raylet, the dashboard and its module processes, agents),
 * about 5% of one core while idle, stopped in 1.5 to 3 s. Token authentication stays on, as Ray 2.60 defaults to: the
 * head gets a fresh token through `RAY_AUTH_TOKEN`, so nothing is written to `~/.ray/auth_token`.
 */
export interface RayHead {
  /** The dashboard's URL, which serves the Jobs REST API: a `ray` training config's `address`. */
  address: string;
  /** The bearer token every API request needs (what a worker's `RAY_AUTH_TOKEN` must be set to). */
  token: string;
  /** Ray's temp dir for this head (session logs, job logs, sockets) and the head's own log, `head.log`. */
  dir: string;
  pid: number;
  /** Stops the head and every process it started (running jobs included), then removes `dir`. */
  stop(): Promise<void>;
}

export interface RayHeadOptions {
  /** CPUs the head offers to jobs. @default 2 */
  numCpus?: number;
  /** How long the head may take until its Jobs API answers. @default 60000 */
  readyTimeoutMs?: number;
  log?: (line: string) => void;
}

/**
 * Whether a GET answers 2xx. Through `node:http` rather than `fetch`: Ray's dashboard and agent refuse requests that
 * look like a browser's, and `fetch` always sends a `Sec-Fetch-Mode` header, one of the signs they go by.
 */
function answers(url: string, headers: Record<string, string> = {}): Promise<boolean> {
  return new Promise((resolve) => {
    const req = httpGet(url, { headers, timeout: 5_000 }, (res) => {
      res.resume();
      resolve((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

/** Starts a Ray head on free local ports and resolves once its Jobs API answers with the head's token. */
export async function startRayHead(options: RayHeadOptions = {}): Promise<RayHead> {
  const log = options.log ?? (() => {});
  const env = ensurePythonEnv('ray', { log });
  // Under the system temp folder, not the project: Ray puts Unix sockets below it, whose paths may not exceed 107 bytes.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'looptool-ray-'));
  const token = randomBytes(32).toString('hex');
  // Ray's defaults for these ports are fixed numbers (client server 10001, agent 52365): two heads on one machine
  // (a test run next to a demo) would collide, so each gets free ones. Worker ports stay Ray's (10002-19999).
  const [gcs, dashboard, client, agentHttp, agentGrpc, runtimeEnvAgent, metrics] = (await freePorts(7)) as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const headLog = path.join(dir, 'head.log');
  const args = [
    'start',
    '--head',
    '--block',
    `--port=${gcs}`,
    '--dashboard-host=127.0.0.1',
    `--dashboard-port=${dashboard}`,
    `--ray-client-server-port=${client}`,
    `--dashboard-agent-listen-port=${agentHttp}`,
    `--dashboard-agent-grpc-port=${agentGrpc}`,
    `--runtime-env-agent-port=${runtimeEnvAgent}`,
    `--metrics-export-port=${metrics}`,
    `--num-cpus=${options.numCpus ?? 2}`,
    '--num-gpus=0',
    // Ray's minimum; the default (30% of RAM) is shared memory a simulated job never uses.
    '--object-store-memory=78643200',
    '--disable-usage-stats',
    `--temp-dir=${dir}`,
  ];
  const out = openSync(headLog, 'a');
  let pid: number;
  try {
    const child = spawn(path.join(env.dir, 'bin', 'ray'), args, {
      detached: true,
      stdio: ['ignore', out, out],
      env: {
        ...process.env,
        RAY_USAGE_STATS_ENABLED: '0',
        RAY_AUTH_MODE: 'token',
        RAY_AUTH_TOKEN: token,
        // On SIGTERM a head drains for 30 s by default before it stops its processes; nothing here needs draining.
        RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S: '0',
      },
    });
    if (child.pid === undefined) throw new Error(`could not start ${env.dir}/bin/ray`);
    child.unref();
    pid = child.pid;
  } finally {
    closeSync(out);
  }
  const address = `http://127.0.0.1:${dashboard}`;
  const stopProcesses = () => stopProcess(pid, undefined, 30_000);
  const stop = async () => {
    await stopProcesses();
    rmSync(dir, { recursive: true, force: true });
  };
  log(`Starting a Ray head (dashboard ${address}, temp dir ${dir})…`);
  const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);
  for (;;) {
    if (!isAlive(pid)) {
      await stopProcesses();
      throw new Error(`the Ray head exited during start-up (logs kept in ${dir}):\n${tailFile(headLog, 15)}`);
    }
    // The Jobs API answers before it can run anything: a submission goes through the head node's dashboard agent,
    // which the raylet starts seconds later (until then Ray answers 500 "No available agent"). Both must answer.
    const ready =
      (await answers(`${address}/api/jobs/`, { authorization: `Bearer ${token}` })) &&
      (await answers(`http://127.0.0.1:${agentHttp}/api/healthz`));
    if (ready) break;
    if (Date.now() > deadline) {
      await stopProcesses();
      throw new Error(
        `the Ray head's Jobs API at ${address} or its job agent did not answer in time (logs kept in ${dir}):\n${tailFile(headLog, 15)}`,
      );
    }
    await sleep(250);
  }
  return { address, token, dir, pid, stop };
}
