import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TRAINING_SPEC_FILE } from '../../core/training.js';
import { PROJECT_ROOT } from '../../services/paths.js';
import { isAlive } from '../../services/process.js';
import type { TrainingBackend, TrainingJobSpec, TrainingJobState } from './backend.js';
import { jobFolder, readJson, readManifest, readProgress } from './job-files.js';

const RUNNER = fileURLToPath(new URL('./local-runner.js', import.meta.url));

/** The files of one job in its folder: what the runner writes, and what a re-attaching worker reads. */
const JOB_FILES = {
  /** The job spec (core/training.ts), the recipe's `{spec}`. */
  spec: TRAINING_SPEC_FILE,
  /** What the runner runs: argv and working directory. */
  run: 'run.json',
  pid: 'runner.pid',
  exit: 'exit.json',
  log: 'log.txt',
} as const;
type JobFiles = { dir: string } & Record<keyof typeof JOB_FILES, string>;

/**
 * Training on this machine: the configured command (argv, no shell) runs under a small detached runner, so the job
 * survives worker restarts and a new worker re-attaches by job key (the job's folder under `workDir/jobs/`). The
 * command gets `{spec}` (the job spec: every setting), `{dataset}`, `{output}` and `{job}` substituted and runs in the
 * project root, so `recipes/…` paths work from any worker. It may write `{output}/progress.json`
 * (`{step, total_steps}`), and must write `{output}/checkpoint.json` (core/training.ts) and exit 0.
 */
export class LocalTrainingBackend implements TrainingBackend {
  readonly name = 'local';

  constructor(private readonly options: { command: string[]; workDir: string; cwd?: string }) {}

  get location(): string {
    return this.options.workDir;
  }

  private files(jobKey: string): JobFiles {
    const dir = jobFolder(this.options.workDir, jobKey);
    return {
      dir,
      ...(Object.fromEntries(Object.entries(JOB_FILES).map(([key, file]) => [key, path.join(dir, file)])) as Record<
        keyof typeof JOB_FILES,
        string
      >),
    };
  }

  async submit(spec: TrainingJobSpec): Promise<TrainingJobState> {
    const files = this.files(spec.jobKey);
    if (existsSync(files.run)) return this.status(spec.jobKey);
    mkdirSync(spec.outputDir, { recursive: true });
    mkdirSync(files.dir, { recursive: true });
    const substitute = (arg: string) =>
      arg
        .replaceAll('{spec}', files.spec)
        .replaceAll('{dataset}', spec.dataset.path)
        .replaceAll('{output}', spec.outputDir)
        .replaceAll('{job}', spec.jobKey);
    writeFileSync(files.spec, `${JSON.stringify(spec, null, 2)}\n`);
    // run.json last: its presence means the job was submitted (a crash before it leaves a job that submits again).
    writeFileSync(
      files.run,
      JSON.stringify({ argv: this.options.command.map(substitute), cwd: this.options.cwd ?? PROJECT_ROOT }, null, 2),
    );
    const log = openSync(files.log, 'a');
    try {
      const runner = spawn(process.execPath, [RUNNER, files.dir], { detached: true, stdio: ['ignore', log, log] });
      runner.unref();
      writeFileSync(files.pid, String(runner.pid));
    } finally {
      closeSync(log);
    }
    return this.status(spec.jobKey);
  }

  async status(jobKey: string): Promise<TrainingJobState> {
    const files = this.files(jobKey);
    const spec = readJson<TrainingJobSpec>(files.spec);
    if (!spec || !existsSync(files.run)) throw new Error(`no local training job ${jobKey}`);
    const base = { externalId: jobKey, ...readProgress(spec.outputDir) };
    const exit = readJson<{ code: number | null; signal?: string | null; error?: string; cancelled?: boolean }>(
      files.exit,
    );
    if (exit) {
      if (exit.cancelled) return { ...base, status: 'cancelled' };
      if (exit.code !== 0)
        return {
          ...base,
          status: 'failed',
          error: exit.error ?? `exited with ${exit.code ?? exit.signal}; see ${files.log}`,
        };
      const manifest = readManifest(spec.outputDir);
      if (!manifest.ok) return { ...base, status: 'failed', error: `${manifest.error}; see ${files.log}` };
      return { ...base, status: 'succeeded', checkpoint: manifest.manifest, metrics: manifest.manifest.metrics };
    }
    const pidText = existsSync(files.pid) ? readFileSync(files.pid, 'utf8') : '';
    const pid = Number(pidText);
    if (pidText && isAlive(pid)) return { ...base, status: 'running' };
    return {
      ...base,
      status: 'failed',
      error: `the job runner (pid ${pidText || 'unknown'}) is gone without recording an exit; see ${files.log}`,
    };
  }

  async cancel(jobKey: string): Promise<void> {
    const files = this.files(jobKey);
    if (existsSync(files.exit)) return;
    writeFileSync(files.exit, JSON.stringify({ code: null, cancelled: true, finishedAt: new Date().toISOString() }));
    const pid = Number(readFileSync(files.pid, 'utf8'));
    try {
      process.kill(-pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }

  async logs(jobKey: string): Promise<string> {
    const file = this.files(jobKey).log;
    return existsSync(file) ? readFileSync(file, 'utf8').split('\n').slice(-200).join('\n') : '';
  }
}
