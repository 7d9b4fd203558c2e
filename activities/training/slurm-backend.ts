import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import { shellQuote } from '../../core/shell.js';
import type { SlurmTraining } from '../../core/config.js';
import { ErrorType } from '../../core/errors.js';
import { TRAINING_SPEC_FILE } from '../../core/training.js';
import type { TrainingJobStatus } from '../../core/vocabulary.js';
import { PROJECT_ROOT, projectPath } from '../../services/paths.js';
import type { TrainingBackend, TrainingJobSpec, TrainingJobState } from './backend.js';
import { readJson, readManifest, readProgress } from './job-files.js';

/** The batch-script template a config without `template` uses. */
export const DEFAULT_SLURM_TEMPLATE = projectPath('recipes', 'slurm', 'job.sbatch');

/** The placeholders a template may hold; `command` it must hold, or the job would not run the recipe. */
const PLACEHOLDERS = ['job_dir', 'cwd', 'command', 'modules', 'container', 'container_mounts'] as const;
type Placeholder = (typeof PLACEHOLDERS)[number];

/** The files of one job in its folder under `workDir/jobs/`. */
const JOB_FILES = {
  spec: TRAINING_SPEC_FILE,
  script: 'job.sbatch',
  /** The Slurm job id, written right after `sbatch` answered: its presence means the job was submitted. */
  jobId: 'slurm-job-id',
  /** Written before `scancel`, so a job Slurm has forgotten still reads as cancelled rather than lost. */
  cancel: 'cancel.json',
} as const;
/** Where a Slurm job id leads back to its job folder: `workDir/jobs/.by-slurm-id/<id>` holds the folder's name. */
const ID_INDEX = '.by-slurm-id';

/** Slurm's job states (squeue's %T, scontrol's JobState, sacct's State) in our vocabulary. */
const QUEUED_STATES = new Set(['PENDING', 'CONFIGURING', 'REQUEUED', 'REQUEUE_HOLD', 'REQUEUE_FED', 'RESV_DEL_HOLD']);
const RUNNING_STATES = new Set(['RUNNING', 'COMPLETING', 'SUSPENDED', 'STOPPED', 'SIGNALING', 'STAGE_OUT', 'RESIZING']);
const FAILED_STATES = new Set([
  'FAILED',
  'TIMEOUT',
  'NODE_FAIL',
  'OUT_OF_MEMORY',
  'BOOT_FAIL',
  'DEADLINE',
  'PREEMPTED',
  'SPECIAL_EXIT',
  'REVOKED',
]);

/**
 * What Slurm's client commands print when the controller (or munge, which authenticates every call) does not answer:
 * the engine is unreachable, which says nothing about the job, so the caller keeps waiting.
 */
const UNREACHABLE =
  /Unable to contact slurm controller|Socket timed out|Connection (refused|reset|timed out)|Zero Bytes were transmitted|Communication connection failure|temporarily unavailable|backup controller in standby|Munge (en|de)code failed|Protocol authentication error/;
/** Slurm's answer for a job id it does not (or no longer) know. */
const UNKNOWN_JOB = /Invalid job id specified/;

/**
 * Fills a batch-script template's `{{placeholders}}` with shell-quoted words. An unknown placeholder, or a template
 * without `{{command}}`, is refused with the template's path and line.
 */
export function renderBatchScript(
  template: { text: string; file: string },
  values: Record<Placeholder, string | string[]>,
): string {
  const lines = template.text.split('\n');
  const problems: string[] = [];
  lines.forEach((line, index) => {
    for (const match of line.matchAll(/\{\{\s*([^}]*?)\s*\}\}/g)) {
      if (!(PLACEHOLDERS as readonly string[]).includes(match[1]!))
        problems.push(
          `${template.file}:${index + 1}: unknown placeholder {{${match[1]}}} (known: ${PLACEHOLDERS.join(', ')})`,
        );
    }
  });
  if (!/\{\{\s*command\s*\}\}/.test(template.text))
    problems.push(`${template.file}: no {{command}} placeholder, so the job would never run the training command`);
  if (problems.length > 0) throw new Error(problems.join('; '));
  return template.text.replace(/\{\{\s*([a-z_]+)\s*\}\}/g, (_, name: Placeholder) => {
    const value = values[name];
    return Array.isArray(value) ? value.map(shellQuote).join(' ') : shellQuote(value);
  });
}

/** A Slurm client command that failed: its program, arguments and what it printed. */
class SlurmCommandError extends Error {
  constructor(
    readonly command: string,
    readonly stderr: string,
    /** The exit status; undefined when the command was killed (our timeout). */
    readonly code: string | number | undefined,
  ) {
    super(`${command}: ${stderr.trim() || `exit ${code}`}`);
    this.name = 'SlurmCommandError';
  }
}

/** Writes through a temporary file, so a reader never sees half a file (the job folder may be on NFS). */
function writeAtomic(file: string, text: string): void {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

/** How a job that left the queue ended, in Slurm's words (its state, exit code, reason) and where that came from. */
interface SlurmOutcome {
  state: string;
  exitCode?: string;
  reason?: string;
  source: string;
}

/**
 * Training on a Slurm cluster: each job is one `sbatch` of a batch script rendered from a template (by default
 * `recipes/slurm/job.sbatch`) whose payload is the configured command, named after the job key. The job's folder
 * (`workDir/jobs/<key>`: spec, script, Slurm's output, exit record) must be on a filesystem the compute nodes share with
 * the worker. Submitting is idempotent: a folder that has a job id re-attaches to it, and a job of that name that
 * runs our script is adopted (a worker killed between `sbatch` and writing the id). Every command runs as argv,
 * without a shell; the template is the only place a shell sees the command. A controller that does not answer is a
 * retryable `TrainerUnavailable`, never a failed job.
 */
export class SlurmTrainingBackend implements TrainingBackend {
  readonly name = 'slurm';

  constructor(
    private readonly config: SlurmTraining,
    private readonly options: { env?: NodeJS.ProcessEnv; cwd?: string; commandTimeoutMs?: number } = {},
  ) {}

  get location(): string {
    const conf = this.env.SLURM_CONF;
    return `${this.config.partition ? `partition ${this.config.partition}` : 'the default partition'}${conf ? ` (SLURM_CONF=${conf})` : ''}, jobs in ${this.jobsDir}`;
  }

  private get env(): NodeJS.ProcessEnv {
    return this.options.env ?? process.env;
  }

  private get jobsDir(): string {
    return path.join(path.resolve(PROJECT_ROOT, this.config.workDir), 'jobs');
  }

  private folder(jobKey: string): string {
    return path.join(this.jobsDir, jobKey.replace(/[^A-Za-z0-9._-]/g, '_'));
  }

  private file(dir: string, name: keyof typeof JOB_FILES): string {
    return path.join(dir, JOB_FILES[name]);
  }

  /** Runs a Slurm client command (argv, no shell); a failure carries what the command printed, for `slurm()`. */
  private run(command: string, args: string[], signal?: AbortSignal): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(
        command,
        args,
        { env: this.env, timeout: this.options.commandTimeoutMs ?? 120_000, ...(signal ? { signal } : {}) },
        (err, stdout, stderr) => {
          if (!err) return resolve(stdout);
          const code = (err as NodeJS.ErrnoException).code;
          if (err.name === 'AbortError') return reject(err);
          if (code === 'ENOENT')
            return reject(
              ApplicationFailure.nonRetryable(
                `${command} is not installed on this worker's host (PATH=${this.env.PATH ?? ''}): the slurm backend runs Slurm's client commands`,
                ErrorType.ConfigInvalid,
              ),
            );
          reject(new SlurmCommandError(`${command} ${args.join(' ')}`, stderr || err.message, code ?? undefined));
        },
      );
    });
  }

  /** A Slurm command whose failures become ApplicationFailures: unreachable is retryable, anything else refused. */
  private async slurm(command: string, args: string[], options: { signal?: AbortSignal; allow?: RegExp } = {}) {
    try {
      return await this.run(command, args, options.signal);
    } catch (err) {
      if (!(err instanceof SlurmCommandError)) throw err;
      if (options.allow?.test(err.stderr)) return undefined;
      // A killed command (our timeout) or an unanswered controller: the cluster is unreachable now, not the job bad.
      if (UNREACHABLE.test(err.stderr) || err.code === undefined)
        throw ApplicationFailure.create({
          message: `Slurm is unreachable (${err.message.trim()})`,
          type: ErrorType.TrainerUnavailable,
        });
      throw ApplicationFailure.create({
        message: `Slurm refused ${err.message.trim()}`,
        type: ErrorType.TrainerRequestRejected,
        nonRetryable: true,
      });
    }
  }

  /** `sbatch`'s argv: resources from the config, the job named after its key, output into its folder. */
  sbatchArgs(jobKey: string, dir: string): string[] {
    const c = this.config;
    return [
      '--parsable',
      `--job-name=${jobKey}`,
      `--output=${path.join(dir, 'slurm-%j.out')}`,
      `--chdir=${this.options.cwd ?? PROJECT_ROOT}`,
      `--nodes=${c.nodes}`,
      ...(c.partition ? [`--partition=${c.partition}`] : []),
      ...(c.gpusPerNode > 0 ? [`--gpus-per-node=${c.gpusPerNode}`] : []),
      ...(c.timeLimit ? [`--time=${c.timeLimit}`] : []),
      ...(c.memory ? [`--mem=${c.memory}`] : []),
      ...(c.cpusPerTask ? [`--cpus-per-task=${c.cpusPerTask}`] : []),
      ...c.extraArgs,
      this.file(dir, 'script'),
    ];
  }

  /** The batch script of a job: the template filled with its command (placeholders substituted) and settings. */
  renderScript(spec: TrainingJobSpec, dir: string): string {
    const templateFile = this.config.template
      ? path.resolve(PROJECT_ROOT, this.config.template)
      : DEFAULT_SLURM_TEMPLATE;
    let text: string;
    try {
      text = readFileSync(templateFile, 'utf8');
    } catch (err) {
      throw ApplicationFailure.nonRetryable(
        `training.template: cannot read ${templateFile} (${(err as Error).message})`,
        ErrorType.ConfigInvalid,
      );
    }
    const cwd = this.options.cwd ?? PROJECT_ROOT;
    const substitute = (arg: string) =>
      arg
        .replaceAll('{spec}', this.file(dir, 'spec'))
        .replaceAll('{dataset}', spec.dataset.path)
        .replaceAll('{output}', spec.outputDir)
        .replaceAll('{job}', spec.jobKey);
    const workDir = path.resolve(PROJECT_ROOT, this.config.workDir);
    try {
      return renderBatchScript(
        { text, file: templateFile },
        {
          job_dir: dir,
          cwd,
          command: this.config.command.map(substitute),
          modules: this.config.modules,
          container: this.config.container ?? '',
          container_mounts: [...new Set([workDir, cwd, path.dirname(spec.outputDir)])]
            .map((p) => `${p}:${p}`)
            .join(','),
        },
      );
    } catch (err) {
      throw ApplicationFailure.nonRetryable(`training.template: ${(err as Error).message}`, ErrorType.ConfigInvalid);
    }
  }

  async submit(spec: TrainingJobSpec, signal?: AbortSignal): Promise<TrainingJobState> {
    const dir = this.folder(spec.jobKey);
    const known = this.recordedJobId(dir);
    if (known) return this.status(known, signal);
    mkdirSync(dir, { recursive: true });
    mkdirSync(spec.outputDir, { recursive: true });
    const script = this.renderScript(spec, dir);
    const adopted = existsSync(this.file(dir, 'script'))
      ? await this.findSubmitted(spec.jobKey, dir, signal)
      : undefined;
    if (adopted) {
      this.recordJobId(dir, adopted);
      return this.status(adopted, signal);
    }
    writeAtomic(this.file(dir, 'spec'), `${JSON.stringify(spec, null, 2)}\n`);
    writeAtomic(this.file(dir, 'script'), script);
    const out = await this.slurm('sbatch', this.sbatchArgs(spec.jobKey, dir), signal ? { signal } : {});
    // --parsable prints `<id>` or `<id>;<cluster>`.
    const jobId = out?.trim().split(';')[0] ?? '';
    if (!/^\d+(_\d+)?$/.test(jobId))
      throw ApplicationFailure.create({
        message: `sbatch printed no job id for ${spec.jobKey}: ${JSON.stringify(out)}`,
        type: ErrorType.TrainerUnavailable,
      });
    this.recordJobId(dir, jobId);
    return this.status(jobId, signal);
  }

  private recordedJobId(dir: string): string | undefined {
    const file = this.file(dir, 'jobId');
    return existsSync(file) ? readFileSync(file, 'utf8').trim() || undefined : undefined;
  }

  private recordJobId(dir: string, jobId: string): void {
    writeAtomic(this.file(dir, 'jobId'), `${jobId}\n`);
    mkdirSync(path.join(this.jobsDir, ID_INDEX), { recursive: true });
    writeAtomic(path.join(this.jobsDir, ID_INDEX, jobId), path.basename(dir));
  }

  /**
   * A job submitted for this folder whose id was never recorded (the worker died right after `sbatch`): one of this
   * name that Slurm still knows and that runs this folder's script, else (with accounting) one of this name that
   * `sacct` saw since the script was written.
   */
  private async findSubmitted(jobKey: string, dir: string, signal?: AbortSignal): Promise<string | undefined> {
    const script = this.file(dir, 'script');
    const queued = await this.slurm('squeue', ['--name', jobKey, '-t', 'all', '-h', '-o', '%i|%o'], {
      ...(signal ? { signal } : {}),
    });
    for (const line of (queued ?? '').split('\n')) {
      const [id, command] = line.trim().split('|');
      if (id && command === script) return id;
    }
    const since = slurmTime(statSync(script).mtimeMs - 60_000);
    const accounted = await this.slurm(
      'sacct',
      ['--name', jobKey, '-X', '-n', '-P', '-S', since, '-o', 'JobID,WorkDir'],
      { allow: /accounting storage is disabled|not running a supported accounting_storage plugin/i },
    );
    const cwd = this.options.cwd ?? PROJECT_ROOT;
    const ids = (accounted ?? '')
      .split('\n')
      .map((line) => line.trim().split('|'))
      .filter(([id, workDir]) => id && workDir === cwd)
      .map(([id]) => id!);
    return ids.at(-1);
  }

  private folderOf(jobId: string): string {
    const index = path.join(this.jobsDir, ID_INDEX, jobId);
    if (!existsSync(index))
      throw ApplicationFailure.nonRetryable(
        `no Slurm training job ${jobId} under ${this.jobsDir} (the backend's workDir changed, or the job was never submitted from it)`,
        ErrorType.DataNotFound,
      );
    return path.join(this.jobsDir, readFileSync(index, 'utf8').trim());
  }

  async status(jobId: string, signal?: AbortSignal): Promise<TrainingJobState> {
    const dir = this.folderOf(jobId);
    const spec = readJson<TrainingJobSpec>(this.file(dir, 'spec'));
    if (!spec) throw new Error(`${this.file(dir, 'spec')} is missing or not JSON`);
    const base = { externalId: jobId, ...readProgress(spec.outputDir) };
    const withSignal = signal ? { signal } : {};

    // In the queue: pending, running, suspended, completing.
    const queued = (
      await this.slurm('squeue', ['-j', jobId, '-h', '-o', '%T'], { ...withSignal, allow: UNKNOWN_JOB })
    )?.trim();
    if (queued) return { ...base, status: activeStatus(queued) };
    const outcome = await this.finalOutcome(jobId, dir, signal);
    const status = outcome ? finalStatus(outcome.state) : undefined;
    if (status === 'queued' || status === 'running') return { ...base, status };
    const log = this.logFile(dir, jobId);
    if (status === 'succeeded') {
      const manifest = readManifest(spec.outputDir);
      if (!manifest.ok) return { ...base, status: 'failed', error: `${manifest.error}; see ${log}` };
      return { ...base, status: 'succeeded', checkpoint: manifest.manifest, metrics: manifest.manifest.metrics };
    }
    if (status === 'cancelled') return { ...base, status: 'cancelled' };
    if (outcome)
      return {
        ...base,
        status: 'failed',
        error: `Slurm job ${jobId} ${outcome.state}${outcome.exitCode ? ` (exit code ${outcome.exitCode}` : ''}${outcome.reason && outcome.reason !== 'None' ? `, ${outcome.reason}` : ''}${outcome.exitCode ? ')' : ''}, from ${outcome.source}; see ${log}`,
      };
    return {
      ...base,
      status: 'failed',
      error:
        `Slurm no longer knows job ${jobId} (it ended longer than MinJobAge ago and there is no accounting) and its ` +
        `batch script left no exit record, so it was killed, timed out or cancelled outside looptool; see ${log}`,
    };
  }

  /** How a job that left the queue ended: from scontrol while Slurm remembers it, sacct, then the job folder. */
  private async finalOutcome(jobId: string, dir: string, signal?: AbortSignal): Promise<SlurmOutcome | undefined> {
    const withSignal = signal ? { signal } : {};
    const shown = await this.slurm('scontrol', ['-o', 'show', 'job', jobId], { ...withSignal, allow: UNKNOWN_JOB });
    if (shown?.trim()) {
      const fields = Object.fromEntries([...shown.matchAll(/(\S+?)=(\S*)/g)].map((m) => [m[1]!, m[2]!]));
      if (fields.JobState)
        return {
          state: fields.JobState,
          exitCode: fields.ExitCode,
          reason: fields.Reason,
          source: 'scontrol show job',
        };
    }
    const accounted = await this.slurm('sacct', ['-j', jobId, '-X', '-n', '-P', '-o', 'State,ExitCode'], {
      ...withSignal,
      allow: /accounting storage is disabled|not running a supported accounting_storage plugin/i,
    });
    const [state, exitCode] = (accounted?.trim().split('\n')[0] ?? '').split('|');
    // sacct writes `CANCELLED by <uid>`.
    if (state) return { state: state.split(' ')[0]!, exitCode: exitCode ?? '', source: 'sacct' };
    const exit = readJson<{ exitCode: number }>(path.join(dir, `exit-${jobId}.json`));
    if (exit)
      return {
        state: exit.exitCode === 0 ? 'COMPLETED' : 'FAILED',
        exitCode: `${exit.exitCode}:0`,
        source: 'the exit record its batch script wrote',
      };
    if (existsSync(this.file(dir, 'cancel'))) return { state: 'CANCELLED', source: "looptool's cancel record" };
    return undefined;
  }

  private logFile(dir: string, jobId: string): string {
    return path.join(dir, `slurm-${jobId}.out`);
  }

  async cancel(jobId: string): Promise<void> {
    const dir = this.folderOf(jobId);
    writeAtomic(this.file(dir, 'cancel'), JSON.stringify({ jobId, at: new Date().toISOString() }));
    // A job that already ended (or that Slurm forgot) needs nothing more.
    await this.slurm('scancel', [jobId], { allow: /Invalid job id specified|already completing or completed/ });
  }

  async logs(jobId: string): Promise<string> {
    const file = this.logFile(this.folderOf(jobId), jobId);
    return existsSync(file) ? readFileSync(file, 'utf8').split('\n').slice(-200).join('\n') : '';
  }
}

/** A time as Slurm's commands read it: `YYYY-MM-DDTHH:MM:SS` in the local time zone. */
function slurmTime(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A state squeue shows (the job is still in the queue). */
function activeStatus(state: string): TrainingJobStatus {
  return QUEUED_STATES.has(state) ? 'queued' : 'running';
}

/** A state a job that left the queue ended in; an active one when the job re-entered the queue meanwhile. */
function finalStatus(state: string): TrainingJobStatus {
  if (state === 'COMPLETED') return 'succeeded';
  if (state === 'CANCELLED') return 'cancelled';
  if (FAILED_STATES.has(state)) return 'failed';
  if (QUEUED_STATES.has(state)) return 'queued';
  if (RUNNING_STATES.has(state)) return 'running';
  return 'failed';
}
