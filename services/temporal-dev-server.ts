import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Connection } from '@temporalio/client';
import { searchAttributeCliSpecs } from '../core/constants.js';
import { LOCAL_DEFAULTS } from './settings.js';
import { isAlive, readPidFile, spawnDetached, stopProcess, tailFile } from './process.js';

export interface TemporalDevServerOptions {
  cliPath: string;
  /** Folder for the SQLite file, the log and the pid file; the SQLite file makes workflows survive restarts. */
  stateDir: string;
  ip?: string;
  port: number;
  uiPort: number;
  namespace?: string;
  /** How long to wait for the frontend to answer. @unit milliseconds @default 90000 */
  startTimeoutMs?: number;
}

export interface TemporalDevServer {
  pid: number;
  address: string;
  uiUrl: string;
  namespace: string;
  dbFile: string;
  logFile: string;
  /** False when a healthy server was already running and was reused. */
  started: boolean;
}

function filesOf(stateDir: string) {
  return {
    dbFile: path.join(stateDir, 'temporal.db'),
    logFile: path.join(stateDir, 'temporal.log'),
    pidFile: path.join(stateDir, 'temporal.pid'),
  };
}

/** True when a Temporal frontend at `address` answers `GetSystemInfo` within `timeoutMs`. */
export async function isTemporalHealthy(address: string, timeoutMs = 2_000): Promise<boolean> {
  let connection: Connection | undefined;
  try {
    connection = await Connection.connect({ address, connectTimeout: timeoutMs });
    await connection.withDeadline(Date.now() + timeoutMs, () => connection!.workflowService.getSystemInfo({}));
    return true;
  } catch {
    return false;
  } finally {
    await connection?.close().catch(() => {});
  }
}

/**
 * Starts `temporal server start-dev` detached, on `ip:port` with the UI on `uiPort`, a SQLite file under `stateDir`
 * and the project's search attributes, then waits until it answers. Idempotent: a healthy server this project started
 * earlier (same pid file) is reused.
 */
export async function startTemporalDevServer(options: TemporalDevServerOptions): Promise<TemporalDevServer> {
  const ip = options.ip ?? '127.0.0.1';
  const { port, uiPort } = options;
  const namespace = options.namespace ?? LOCAL_DEFAULTS.namespace;
  const address = `${ip}:${port}`;
  const files = filesOf(options.stateDir);
  const describe = (pid: number, started: boolean): TemporalDevServer => ({
    pid,
    address,
    uiUrl: `http://${ip}:${uiPort}`,
    namespace,
    dbFile: files.dbFile,
    logFile: files.logFile,
    started,
  });

  const existingPid = readPidFile(files.pidFile);
  if (existingPid && isAlive(existingPid)) {
    if (await waitForHealthy(address, existingPid, 15_000)) return describe(existingPid, false);
    throw new Error(
      `A Temporal server (pid ${existingPid}) from ${files.pidFile} is running but not answering at ${address}`,
    );
  }
  if (await isTemporalHealthy(address)) {
    throw new Error(
      `Port ${port} already serves a Temporal frontend that this project did not start; stop it or choose another port`,
    );
  }

  mkdirSync(options.stateDir, { recursive: true });
  const args = [
    'server',
    'start-dev',
    '--ip',
    ip,
    '--port',
    String(port),
    '--ui-port',
    String(uiPort),
    '--db-filename',
    files.dbFile,
    '--namespace',
    namespace,
    '--log-level',
    'warn',
    ...searchAttributeCliSpecs().flatMap((spec) => ['--search-attribute', spec]),
  ];
  // A dev server that dies during start-up (seen rarely: a panic while it binds its internal ports) gets one more try
  // on the same state file; a server that is alive but never answers does not.
  for (let attempt = 1; ; attempt++) {
    const pid = spawnDetached(options.cliPath, args, files);
    if (await waitForHealthy(address, pid, options.startTimeoutMs ?? 90_000)) return describe(pid, true);
    const crashed = !isAlive(pid);
    await stopProcess(pid, files.pidFile);
    if (crashed && attempt < 2) continue;
    throw new Error(
      `The Temporal dev server did not become healthy at ${address}${crashed ? ' (it exited)' : ''}. ` +
        `First error and last log lines (${files.logFile}):\n${firstError(files.logFile)}\n…\n${tailFile(files.logFile)}`,
    );
  }
}

async function waitForHealthy(address: string, pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return false;
    if (await isTemporalHealthy(address)) return true;
    await sleep(250);
  }
  return false;
}

/** Stops the dev server whose pid file lives in `stateDir`; the SQLite file stays, so a restart keeps every workflow. */
export async function stopTemporalDevServer(stateDir: string): Promise<boolean> {
  const { pidFile } = filesOf(stateDir);
  const pid = readPidFile(pidFile);
  if (!pid) return false;
  await stopProcess(pid, pidFile);
  return true;
}

export function temporalDevServerPid(stateDir: string): number | undefined {
  const pid = readPidFile(filesOf(stateDir).pidFile);
  return pid && isAlive(pid) ? pid : undefined;
}

/** The first line of a log that looks like the cause (a panic or an error), since a Go stack trace buries it. */
function firstError(logFile: string): string {
  if (!existsSync(logFile)) return '(no log)';
  return (
    readFileSync(logFile, 'utf8')
      .split('\n')
      .find((line) => /panic|fatal|error/i.test(line) && !/Failed to poll/.test(line)) ?? '(no error line)'
  );
}
