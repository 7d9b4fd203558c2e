/**
 * The worker as a process manager runs it (systemd `Restart=always`, a Kubernetes Deployment): `looptool worker` as a
 * child process, started again whenever it exits. The chaos driver kills it with SIGKILL; an exit the driver did not
 * cause (a worker that cannot start while PostgreSQL is down) is a crash, counted, and restarted after a short backoff.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { LOOPTOOL_BIN } from '../helpers/cli.js';

/** What `looptool worker` prints once its Temporal workers run (worker/worker.ts). */
const READY_LINE = '[worker] serving';

export interface WorkerCrash {
  pid: number | undefined;
  code: number | null;
  signal: string | null;
  /** The last lines the worker wrote. */
  tail: string;
}

export class WorkerSupervisor {
  /** Workers started (the first start included). */
  starts = 0;
  /** Kills by the driver. */
  kills = 0;
  /** Exits nobody asked for. */
  readonly crashes: WorkerCrash[] = [];
  private child: ChildProcess | undefined;
  private ready = false;
  private readonly readyWaiters: (() => void)[] = [];
  private stopping = false;
  private killing = false;
  private crashesSinceReady = 0;
  private restartTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly env: NodeJS.ProcessEnv,
    private readonly logFile: string,
    private readonly log: (line: string) => void,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** A worker serves its task queues now. */
  get isReady(): boolean {
    return this.ready;
  }

  start(): void {
    this.stopping = false;
    this.spawnWorker();
  }

  private spawnWorker(): void {
    this.restartTimer = undefined;
    if (this.stopping) return;
    this.starts++;
    this.ready = false;
    const child = spawn(process.execPath, [LOOPTOOL_BIN, 'worker'], {
      env: this.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    appendFileSync(this.logFile, `\n===== worker #${this.starts} (pid ${child.pid}) ${new Date().toISOString()}\n`);
    let tail = '';
    const onOutput = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      appendFileSync(this.logFile, text);
      tail = (tail + text).slice(-4_000);
      if (!this.ready && child === this.child && tail.includes(READY_LINE)) {
        this.ready = true;
        this.crashesSinceReady = 0;
        for (const resolve of this.readyWaiters.splice(0)) resolve();
      }
    };
    child.stdout?.on('data', onOutput);
    child.stderr?.on('data', onOutput);
    child.once('exit', (code, signal) => {
      appendFileSync(this.logFile, `\n===== worker pid ${child.pid} exited (code ${code}, signal ${signal})\n`);
      if (child !== this.child) return;
      this.ready = false;
      if (this.stopping || this.killing) return;
      const lines = tail.trim().split('\n').slice(-3).join(' | ');
      this.crashes.push({ pid: child.pid, code, signal, tail: lines });
      this.crashesSinceReady++;
      const backoffMs = Math.min(1_000 * 2 ** (this.crashesSinceReady - 1), 8_000);
      this.log(`worker pid ${child.pid} exited by itself (code ${code}, signal ${signal}); restart in ${backoffMs} ms`);
      this.restartTimer = setTimeout(() => this.spawnWorker(), backoffMs);
    });
  }

  /** Resolves once a worker serves its task queues (a later start counts too). */
  async whenReady(): Promise<void> {
    if (this.ready) return;
    await new Promise<void>((resolve) => this.readyWaiters.push(resolve));
  }

  /**
   * SIGKILLs the running worker (nothing flushed, in-flight activities abandoned), starts a new one at once, and
   * resolves when that one serves: `downMs` is how long the loop had no worker.
   */
  async kill(): Promise<{ downMs: number; pid: number | undefined }> {
    const child = this.child;
    const started = Date.now();
    this.kills++;
    this.killing = true;
    try {
      if (child && child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
      }
    } finally {
      this.killing = false;
    }
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.spawnWorker();
    await this.whenReady();
    return { downMs: Date.now() - started, pid: child?.pid };
  }

  /** Stops the worker for good: SIGTERM (a graceful shutdown), SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }

  /** Kills the worker at once and starts no other (for exit handlers, which cannot wait). */
  killNow(): void {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}
