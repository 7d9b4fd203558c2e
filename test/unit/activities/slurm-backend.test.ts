import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import { afterAll, describe, expect, test } from 'vitest';
import { renderBatchScript, SlurmTrainingBackend } from '../../../activities/training/slurm-backend.js';
import { shellQuote } from '../../../core/shell.js';
import { Grpo, LoraConfig, SlurmTraining } from '../../../core/config.js';
import { ErrorType } from '../../../core/errors.js';
import type { TrainingJobSpec } from '../../../core/training.js';

const work = mkdtempSync(path.join(os.tmpdir(), 'looptool-slurm-unit-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Arguments a shell would mangle in every way it can: spaces, quotes, expansions, globs, a newline, a leading dash. */
const NASTY = [
  'two words',
  "it's",
  '"double"',
  '$(touch pwned)',
  '`touch pwned`',
  '$HOME',
  '*',
  'line\nbreak',
  '-n',
  '',
  '\\back\\slash',
  ';exit 7',
];

/** A config's command holds no empty argument (the schema refuses one). */
const ARGS = NASTY.filter((arg) => arg !== '');

function spec(jobKey: string): TrainingJobSpec {
  return {
    jobKey,
    loopName: 'unit',
    iteration: 1,
    seed: 7,
    dataset: { path: path.join(work, 'train.jsonl'), format: 'trl-jsonl', rows: 1 },
    baseModel: 'base',
    init: null,
    weights: 'lora',
    lora: LoraConfig.parse({}),
    grpo: Grpo.parse({}),
    reward: { mode: 'exact' },
    outputDir: path.join(work, 'out', jobKey),
  };
}

describe('the Slurm batch script', () => {
  test('shellQuote gives bash back every argument exactly, expanding nothing', () => {
    const printed = execFileSync('bash', ['-c', `printf '%s\\0' ${NASTY.map(shellQuote).join(' ')}`], { cwd: work });
    expect(printed.toString().split('\0').slice(0, -1)).toEqual(NASTY);
    expect(existsSync(path.join(work, 'pwned'))).toBe(false);
  });

  test('the default template runs the command with its argv intact and records its exit status', () => {
    const argvFile = path.join(work, 'argv.json');
    const record = `require('fs').writeFileSync(${JSON.stringify(argvFile)}, JSON.stringify(process.argv.slice(1))); process.exit(5)`;
    const backend = new SlurmTrainingBackend(
      SlurmTraining.parse({
        backend: 'slurm',
        command: [process.execPath, '-e', record, '{spec}', '{job}', ...ARGS],
        workDir: path.join(work, 'slurm'),
      }),
      // The script changes into this folder, where an expansion that slipped through would have left `pwned`.
      { cwd: work },
    );
    const dir = path.join(work, 'job');
    mkdirSync(dir, { recursive: true });
    const script = path.join(dir, 'job.sbatch');
    writeFileSync(script, backend.renderScript(spec('unit-iter-1'), dir));
    // What sbatch would give the script on a one-node allocation.
    const env = {
      ...process.env,
      SLURM_JOB_ID: '41',
      SLURM_JOB_NAME: 'unit-iter-1',
      SLURM_JOB_NODELIST: 'n1',
      SLURM_JOB_NUM_NODES: '1',
    };
    const run = spawnSync('bash', [script], { cwd: work, env, encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(5);
    expect(JSON.parse(readFileSync(argvFile, 'utf8'))).toEqual([path.join(dir, 'spec.json'), 'unit-iter-1', ...ARGS]);
    expect(JSON.parse(readFileSync(path.join(dir, 'exit-41.json'), 'utf8'))).toEqual({ jobId: '41', exitCode: 5 });
    expect(existsSync(path.join(work, 'pwned'))).toBe(false);
  });

  test('a template with an unknown placeholder or without the command is refused, naming the file and line', () => {
    const values = { job_dir: '/j', cwd: '/', command: ['true'], modules: [], container: '', container_mounts: '' };
    expect(() =>
      renderBatchScript({ text: '#!/bin/bash\n\n{{command}} {{partition}}\n', file: 'mine.sbatch' }, values),
    ).toThrow(
      'mine.sbatch:3: unknown placeholder {{partition}} (known: job_dir, cwd, command, modules, container, container_mounts)',
    );
    expect(() => renderBatchScript({ text: '#!/bin/bash\necho hi\n', file: 'mine.sbatch' }, values)).toThrow(
      'mine.sbatch: no {{command}} placeholder, so the job would never run the training command',
    );
  });

  test('a template that cannot be read fails the job as a config error, before anything is submitted', async () => {
    const backend = new SlurmTrainingBackend(
      SlurmTraining.parse({
        backend: 'slurm',
        command: ['true'],
        workDir: path.join(work, 'missing-template'),
        template: path.join(work, 'nowhere.sbatch'),
      }),
    );
    const failure = await backend.submit(spec('unit-iter-2')).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure).toMatchObject({ type: ErrorType.ConfigInvalid, nonRetryable: true });
    expect((failure as Error).message).toContain(`training.template: cannot read ${path.join(work, 'nowhere.sbatch')}`);
  });

  test("sbatch gets the config's resources as argv, the job named after its key and its output in the job folder", () => {
    const backend = new SlurmTrainingBackend(
      SlurmTraining.parse({
        backend: 'slurm',
        command: ['true'],
        workDir: '/shared/looptool',
        partition: 'gpu',
        nodes: 2,
        gpusPerNode: 8,
        cpusPerTask: 32,
        memory: '200G',
        timeLimit: '04:00:00',
        extraArgs: ['--account=ml', '--qos=high'],
      }),
      { cwd: '/srv/looptool' },
    );
    const dir = '/shared/looptool/jobs/loop-iter-3';
    expect(backend.sbatchArgs('loop-iter-3', dir)).toEqual([
      '--parsable',
      '--job-name=loop-iter-3',
      `--output=${dir}/slurm-%j.out`,
      '--chdir=/srv/looptool',
      '--nodes=2',
      '--partition=gpu',
      '--gpus-per-node=8',
      '--time=04:00:00',
      '--mem=200G',
      '--cpus-per-task=32',
      '--account=ml',
      '--qos=high',
      `${dir}/job.sbatch`,
    ]);
  });
});

describe('a job Slurm no longer knows', () => {
  /**
   * Slurm's client commands as they answer once a finished job is past MinJobAge on a cluster without accounting
   * (their messages recorded from Debian's slurm-wlm 22.05); sbatch hands out ids. The real cluster keeps jobs for
   * minutes, so this is how the backend's last resort, the job folder's records, gets exercised.
   */
  const stubs = path.join(work, 'stub-bin');
  mkdirSync(stubs, { recursive: true });
  const stub = (name: string, body: string) => {
    writeFileSync(path.join(stubs, name), `#!/bin/bash\n${body}\n`);
    chmodSync(path.join(stubs, name), 0o755);
  };
  stub(
    'sbatch',
    `n=$(( $(cat ${JSON.stringify(path.join(stubs, 'next'))} 2>/dev/null || echo 100) + 1 )); echo $n >${JSON.stringify(path.join(stubs, 'next'))}; echo $n`,
  );
  stub('squeue', `echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1`);
  stub('scontrol', `echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1`);
  stub('sacct', `echo 'Slurm accounting storage is disabled' >&2; exit 1`);
  stub('scancel', `echo "scancel: error: Kill job error on job id $1: Invalid job id specified" >&2; exit 1`);

  const forgetful = new SlurmTrainingBackend(
    SlurmTraining.parse({ backend: 'slurm', command: ['true'], workDir: path.join(work, 'forgotten') }),
    { env: { ...process.env, PATH: `${stubs}:${process.env.PATH}` } },
  );
  const jobDir = (key: string) => path.join(work, 'forgotten', 'jobs', key);

  test('its exit record says how it ended: 0 with a manifest is success, anything else a failure', async () => {
    const ok = spec('gone-iter-1');
    const { externalId } = await forgetful.submit(ok);
    writeFileSync(
      path.join(jobDir('gone-iter-1'), `exit-${externalId}.json`),
      JSON.stringify({ jobId: externalId, exitCode: 0 }),
    );
    mkdirSync(ok.outputDir, { recursive: true });
    writeFileSync(
      path.join(ok.outputDir, 'checkpoint.json'),
      JSON.stringify({ kind: 'lora', path: 'adapter', baseModel: 'base', steps: 2 }),
    );
    expect(await forgetful.status(externalId)).toMatchObject({
      status: 'succeeded',
      checkpoint: { kind: 'lora', path: path.join(ok.outputDir, 'adapter'), steps: 2 },
    });

    const bad = await forgetful.submit(spec('gone-iter-2'));
    writeFileSync(
      path.join(jobDir('gone-iter-2'), `exit-${bad.externalId}.json`),
      JSON.stringify({ jobId: bad.externalId, exitCode: 3 }),
    );
    expect((await forgetful.status(bad.externalId)).error).toMatch(
      new RegExp(
        `^Slurm job ${bad.externalId} FAILED \\(exit code 3:0\\), from the exit record its batch script wrote; see `,
      ),
    );
  });

  test('a job looptool cancelled reads as cancelled; one with no record at all is failed, saying why', async () => {
    const cancelled = await forgetful.submit(spec('gone-iter-3'));
    await forgetful.cancel(cancelled.externalId);
    expect((await forgetful.status(cancelled.externalId)).status).toBe('cancelled');

    const lost = await forgetful.submit(spec('gone-iter-4'));
    expect(await forgetful.status(lost.externalId)).toMatchObject({
      status: 'failed',
      error: expect.stringMatching(
        /^Slurm no longer knows job \d+ .* no exit record, so it was killed, timed out or cancelled outside looptool/,
      ),
    });
  });

  test('munge down on the worker host (every command fails to authenticate) is unreachable, not a failed job', async () => {
    // What squeue printed here with this cluster's munged stopped.
    const mungeDown = path.join(work, 'munge-down-bin');
    mkdirSync(mungeDown, { recursive: true });
    writeFileSync(
      path.join(mungeDown, 'squeue'),
      `#!/bin/bash
echo 'squeue: error: Munge encode failed: Failed to access "/run/munge/munge.socket.2": No such file or directory (Did you start munged?)' >&2
echo 'slurm_load_jobs error: Protocol authentication error' >&2
exit 1
`,
    );
    chmodSync(path.join(mungeDown, 'squeue'), 0o755);
    const { externalId } = await forgetful.submit(spec('gone-iter-5'));
    const b = new SlurmTrainingBackend(
      SlurmTraining.parse({ backend: 'slurm', command: ['true'], workDir: path.join(work, 'forgotten') }),
      { env: { ...process.env, PATH: `${mungeDown}:${stubs}:${process.env.PATH}` } },
    );
    const failure = await b.status(externalId).catch((err: unknown) => err);
    expect(failure).toMatchObject({ type: ErrorType.TrainerUnavailable, nonRetryable: false });
    expect((failure as Error).message).toMatch(
      /^Slurm is unreachable \(squeue -j \d+ -h -o %T: .*Munge encode failed/s,
    );
  });
});
