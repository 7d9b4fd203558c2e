import { freePort } from './ports.js';
import { execFile, spawnSync } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { isAlive, readPidFile, spawnDetached, stopProcess, tailFile } from './process.js';

const execFileAsync = promisify(execFile);

/**
 * A Slurm cluster on this machine, from Debian's `slurm-wlm` and `munge`: the tests of the Slurm training backend and
 * `looptool demo --training slurm` run their jobs on it. Everything lives in one folder (config, munge key and socket,
 * state, spool, logs), every daemon listens on ports picked free at start, and the client commands reach it through
 * `SLURM_CONF` alone, so it never touches the machine's own `/etc/slurm` or `/run/munge`. One node by default; with
 * `nodes` > 1, one slurmd per node on this same host (`slurmd -N <name>`, each on its own port), which is how the
 * multi-node batch script (verl's Ray-on-Slurm pattern) runs here on a real multi-node allocation.
 *
 * What does not work with this setup, and why it is fine here: there is no accounting daemon (slurmdbd needs MySQL),
 * so `sacct` answers "Slurm accounting storage is disabled"; finished jobs are known from `scontrol show job` for
 * `MinJobAge` seconds and from the exit record the batch script writes into the job folder afterwards. Processes are
 * tracked with `proctrack/linuxproc` and `task/none` because this machine has no usable cgroup hierarchy.
 */
export interface SlurmCluster {
  /** The folder that holds everything. */
  dir: string;
  /** The slurm.conf the daemons and client commands read. */
  conf: string;
  /** The environment the client commands (`sbatch`, `squeue`, …) need to reach this cluster: `SLURM_CONF`. */
  env: { SLURM_CONF: string };
  /** The nodes' names (this host's short name, numbered when there are several), all in one partition. */
  nodes: string[];
  partition: string;
  /** Stops slurmctld alone (jobs keep running under slurmd): what a controller outage looks like to clients. */
  stopController(): Promise<void>;
  /** Starts slurmctld again on the same state and waits until the nodes are back. */
  startController(): Promise<void>;
  /** Cancels every job, then stops the slurmds, slurmctld and munged. The folder stays (state, logs). */
  stop(): Promise<void>;
}

export interface SlurmClusterOptions {
  /** Where the config, state and logs go. Reused as it is: a restarted cluster remembers its jobs and job ids. */
  dir: string;
  /** Compute nodes, each a slurmd on this host. @default 1 */
  nodes?: number;
  /** How long finished jobs stay visible to `scontrol show job` (Slurm's MinJobAge). @default 300 */
  minJobAgeSeconds?: number;
  log?: (line: string) => void;
}

/** Slurm's and munge's programs, by the package that brings them. */
const REQUIRED_PROGRAMS = [
  'slurmctld',
  'slurmd',
  'sbatch',
  'squeue',
  'scontrol',
  'scancel',
  'sinfo',
  'munged',
  'mungekey',
];
const DEBIAN_PACKAGES = ['slurm-wlm', 'munge'];

/** How to get Slurm on this machine, for the errors that say it is missing. */
export const SLURM_INSTALL_HINT =
  "install Debian's packages as root: `apt-get install -y slurm-wlm munge` (npm test and `npm run demo -- --training slurm` do it themselves when they run as root on a machine with apt-get)";

/**
 * Where a program is: on PATH, or in the sbin folders Debian puts the daemons in (a PATH without them is common for
 * non-login shells), so the daemons start by absolute path whatever PATH says.
 */
function findProgram(program: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/sbin', '/usr/bin'];
  return dirs.map((dir) => dir && path.join(dir, program)).find((file) => file && existsSync(file));
}

function program(name: string): string {
  return findProgram(name) ?? name;
}

/** The programs of a Slurm cluster that this machine lacks. */
export function missingSlurmPrograms(): string[] {
  return REQUIRED_PROGRAMS.filter((name) => findProgram(name) === undefined);
}

/**
 * Installs `slurm-wlm` and `munge` with apt-get when a program is missing and this process may (root, apt-get present),
 * one installer at a time (test files start clusters in parallel); throws, saying how to install, when it may not or
 * the install failed.
 */
export function ensureSlurmInstalled(log: (line: string) => void = () => {}): void {
  if (missingSlurmPrograms().length === 0) return;
  const canInstall = process.getuid?.() === 0 && existsSync('/usr/bin/apt-get');
  if (canInstall) {
    withInstallLock(() => {
      if (missingSlurmPrograms().length === 0) return;
      log(`Installing ${DEBIAN_PACKAGES.join(' and ')} for a Slurm cluster on this machine (apt-get)…`);
      const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
      for (const args of [
        ['update', '-qq'],
        ['install', '-y', '-qq', ...DEBIAN_PACKAGES],
      ]) {
        const result = spawnSync('apt-get', args, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
        if (result.status !== 0)
          throw new Error(
            `apt-get ${args.join(' ')} failed (${result.error?.message ?? `exit ${result.status}`}): ` +
              `${(result.stderr || result.stdout || '').trim().split('\n').slice(-5).join('\n')}`,
          );
      }
    });
  }
  const missing = missingSlurmPrograms();
  if (missing.length > 0)
    throw new Error(`Slurm is not installed here (missing ${missing.join(', ')}): ${SLURM_INSTALL_HINT}`);
}

/** Serializes installs across processes with an exclusive lock file (a stale one, from a killed installer, expires). */
function withInstallLock(fn: () => void): void {
  const lock = path.join(os.tmpdir(), 'looptool-slurm-install.lock');
  const deadline = Date.now() + 15 * 60_000;
  for (;;) {
    try {
      closeSync(openSync(lock, 'wx'));
      break;
    } catch {
      if (existsSync(lock) && Date.now() - statSync(lock).mtimeMs > 15 * 60_000) rmSync(lock, { force: true });
      if (Date.now() > deadline) throw new Error(`another process holds ${lock}; remove it if no install is running`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1_000);
    }
  }
  try {
    fn();
  } finally {
    rmSync(lock, { force: true });
  }
}

/** This node as slurmd sees it (`slurmd -C`: CPUs, sockets, cores, threads, memory), so Slurm never drains it for a mismatch. */
function nodeHardware(): string {
  const result = spawnSync(program('slurmd'), ['-C'], { encoding: 'utf8' });
  const line = (result.stdout ?? '').split('\n').find((l) => l.startsWith('NodeName='));
  if (result.status !== 0 || !line)
    throw new Error(`slurmd -C failed: ${(result.stderr || result.stdout || '').trim() || `exit ${result.status}`}`);
  // Everything but the name, which the config sets itself.
  return line
    .split(/\s+/)
    .filter((field) => field && !field.startsWith('NodeName='))
    .join(' ');
}

interface Layout {
  conf: string;
  mungeDir: string;
  mungeKeyDir: string;
  socket: string;
  state: string;
  spool: string;
  logs: string;
}

function layout(dir: string): Layout {
  return {
    conf: path.join(dir, 'slurm.conf'),
    // munged wants its socket's folder open to everyone (clients of any user connect) and its key's folder closed.
    mungeDir: path.join(dir, 'munge'),
    mungeKeyDir: path.join(dir, 'munge-key'),
    socket: path.join(dir, 'munge', 'munge.socket'),
    state: path.join(dir, 'state'),
    spool: path.join(dir, 'spool'),
    logs: path.join(dir, 'logs'),
  };
}

function slurmConf(files: Layout, options: { host: string; nodes: NodeSlot[]; ctldPort: number; minJobAge: number }) {
  const user = os.userInfo().username;
  const hardware = nodeHardware();
  // Several slurmds on one host tell their files apart by node name (%n).
  const perNode = options.nodes.length > 1 ? '-%n' : '';
  return `# A Slurm cluster for looptool on this host (services/slurm-cluster.ts); rewritten at every start.
ClusterName=looptool
SlurmctldHost=${options.host}(127.0.0.1)
SlurmctldPort=${options.ctldPort}
SlurmUser=${user}
SlurmdUser=${user}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=${files.socket}
StateSaveLocation=${files.state}
SlurmdSpoolDir=${files.spool}${perNode ? '/%n' : ''}
SlurmctldPidFile=${path.join(files.logs, 'slurmctld.pid')}
SlurmdPidFile=${path.join(files.logs, `slurmd${perNode}.pid`)}
SlurmctldLogFile=${path.join(files.logs, 'slurmctld.log')}
SlurmdLogFile=${path.join(files.logs, `slurmd${perNode}.log`)}
# No cgroups on these machines: track processes by parentage, bind nothing.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
# No mail program on these machines (slurmctld logs "Configured MailProg is invalid" otherwise).
MailProg=/bin/true
# No slurmdbd: finished jobs are known from scontrol for MinJobAge seconds.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=${options.minJobAge}
# A cancelled job's processes get SIGKILL this soon after SIGTERM.
KillWait=5
ReturnToService=2
${options.nodes
  .map(
    (slot) =>
      `NodeName=${slot.name} NodeHostname=${options.host} NodeAddr=127.0.0.1 Port=${slot.port} ${hardware} State=UNKNOWN`,
  )
  .join('\n')}
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
`;
}

/** One compute node: its name and the port its slurmd listens on. */
interface NodeSlot {
  name: string;
  port: number;
}

/** Runs a Slurm client command against the cluster; undefined when it fails (the controller is not up yet). */
async function query(env: NodeJS.ProcessEnv, command: string, args: string[]): Promise<string | undefined> {
  try {
    return (await execFileAsync(command, args, { env, timeout: 15_000 })).stdout;
  } catch {
    return undefined;
  }
}

/**
 * Starts munged, slurmctld and a slurmd per node for a cluster in `options.dir`, and waits until every node takes jobs.
 * Needs root (slurmd starts jobs as their users) and Slurm installed (installed here when missing, as root).
 */
export async function startSlurmCluster(options: SlurmClusterOptions): Promise<SlurmCluster> {
  const log = options.log ?? (() => {});
  ensureSlurmInstalled(log);
  if (process.getuid?.() !== 0)
    throw new Error('a Slurm cluster for the tests needs root: slurmd starts every job as its user');
  const dir = path.resolve(options.dir);
  const files = layout(dir);
  for (const folder of [dir, files.mungeDir, files.state, files.spool, files.logs]) {
    mkdirSync(folder, { recursive: true });
    chmodSync(folder, 0o755);
  }
  // munged refuses a socket that some user could not reach: every folder above it must be searchable by all.
  for (let folder = path.dirname(dir); folder !== path.dirname(folder); folder = path.dirname(folder)) {
    if ((statSync(folder).mode & 0o001) === 0)
      throw new Error(
        `cannot start munge under ${dir}: ${folder} is not searchable by all users (mode ${(statSync(folder).mode & 0o777).toString(8)}), and munged requires every folder above its socket to be (chmod o+x ${folder}, or put the cluster elsewhere)`,
      );
  }
  mkdirSync(files.mungeKeyDir, { recursive: true, mode: 0o700 });
  chmodSync(files.mungeKeyDir, 0o700);
  const key = path.join(files.mungeKeyDir, 'munge.key');
  if (!existsSync(key)) {
    const created = spawnSync(program('mungekey'), ['--create', `--keyfile=${key}`], { encoding: 'utf8' });
    if (created.status !== 0) throw new Error(`mungekey --create failed: ${created.stderr.trim()}`);
  }
  const host = os.hostname().split('.')[0]!;
  const count = options.nodes ?? 1;
  const nodes: NodeSlot[] = [];
  for (let i = 1; i <= count; i++) nodes.push({ name: count === 1 ? host : `${host}${i}`, port: await freePort() });
  writeFileSync(
    files.conf,
    slurmConf(files, { host, nodes, ctldPort: await freePort(), minJobAge: options.minJobAgeSeconds ?? 300 }),
  );
  const names = nodes.map((slot) => slot.name);
  const env = { ...process.env, SLURM_CONF: files.conf };
  const daemon = (name: string) => ({
    logFile: path.join(files.logs, `${name}.out`),
    pidFile: path.join(files.logs, `${name}.daemon.pid`),
  });
  const started: { name: string; pidFile: string }[] = [];

  const startDaemon = (name: string, command: string, args: string[]) => {
    const daemonFiles = daemon(name);
    const running = readPidFile(daemonFiles.pidFile);
    if (running !== undefined && isAlive(running)) throw new Error(`${name} of ${dir} already runs (pid ${running})`);
    spawnDetached(command, args, daemonFiles);
    started.push({ name, pidFile: daemonFiles.pidFile });
  };
  const stopDaemon = async (name: string) => {
    const { pidFile } = daemon(name);
    const pid = readPidFile(pidFile);
    if (pid !== undefined) await stopProcess(pid, pidFile, 10_000);
  };
  const failure = (what: string) =>
    new Error(
      `${what}\n${['munged.out', 'slurmctld.log', ...names.map((name) => `slurmd-${name}.out`)]
        .map((file) => `--- ${file}\n${tailFile(path.join(files.logs, file), 8)}`)
        .join('\n')}`,
    );
  /** Waits until the controller answers and every node is up (idle, or busy with recovered jobs). */
  const waitForNodes = async () => {
    const deadline = Date.now() + 90_000;
    for (;;) {
      const states = (await query(env, program('sinfo'), ['-h', '-N', '-o', '%N %T']))?.trim();
      const up = (states ?? '')
        .split('\n')
        .filter((line) => /^\S+ (idle|mixed|allocated|completing)/.test(line.trim())).length;
      if (up >= names.length) return;
      if (Date.now() > deadline)
        throw failure(`the Slurm cluster in ${dir} did not come up (nodes: ${states || 'no answer'})`);
      await sleep(500);
    }
  };
  const startController = async () => {
    startDaemon('slurmctld', program('slurmctld'), ['-D', '-f', files.conf]);
    await waitForNodes();
  };

  try {
    startDaemon('munged', program('munged'), [
      '--foreground',
      `--socket=${files.socket}`,
      `--key-file=${key}`,
      `--pid-file=${path.join(files.mungeDir, 'munged.pid')}`,
      `--seed-file=${path.join(files.mungeDir, 'munged.seed')}`,
    ]);
    const socketDeadline = Date.now() + 15_000;
    while (!existsSync(files.socket)) {
      const munged = readPidFile(daemon('munged').pidFile);
      if (Date.now() > socketDeadline || munged === undefined || !isAlive(munged))
        throw failure(`munged did not create ${files.socket}`);
      await sleep(100);
    }
    for (const name of names) startDaemon(`slurmd-${name}`, program('slurmd'), ['-D', '-f', files.conf, '-N', name]);
    await startController();
    log(`Slurm: cluster up (nodes ${names.join(', ')}, partition debug, SLURM_CONF=${files.conf})`);
  } catch (err) {
    for (const { name } of started.reverse()) await stopDaemon(name).catch(() => {});
    throw err;
  }

  return {
    dir,
    conf: files.conf,
    env: { SLURM_CONF: files.conf },
    nodes: names,
    partition: 'debug',
    stopController: () => stopDaemon('slurmctld'),
    startController,
    stop: async () => {
      // slurmstepd outlives slurmd by design (a restarted slurmd re-attaches to its steps), so jobs end first.
      if ((await query(env, program('scancel'), ['--partition=debug'])) !== undefined) {
        const deadline = Date.now() + 30_000;
        while (Date.now() < deadline && ((await query(env, program('squeue'), ['-h', '-o', '%i'])) ?? '').trim() !== '')
          await sleep(250);
      }
      for (const name of [...names.map((node) => `slurmd-${node}`), 'slurmctld', 'munged']) await stopDaemon(name);
    },
  };
}
