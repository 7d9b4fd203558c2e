import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { LOOPTOOL_BIN } from '../helpers/cli.js';
import { activityAttempts, historyOf } from '../helpers/history.js';
import { createLoopFixture, type LoopFixture, loopDatasets, waitFor } from '../helpers/loop-fixture.js';
import { startSlurmFixture, type SlurmFixture } from '../helpers/slurm.js';

/** Temporal's PENDING_ACTIVITY_STATE_STARTED: a worker holds the attempt. */
const ACTIVITY_STARTED = 2;

describe('a loop that trains on Slurm', () => {
  let f: LoopFixture;
  let slurm: SlurmFixture;
  beforeAll(async () => {
    slurm = await startSlurmFixture();
    f = await createLoopFixture({ samples: 240 });
    // The workers this fixture starts submit to the test's cluster.
    Object.assign(f.env, slurm.env);
  }, 600_000);
  afterAll(async () => {
    await f?.close();
    await slurm?.close();
  });

  const slurmState = (jobId: string) =>
    /JobState=(\S+)/.exec(slurm.slurm('scontrol', ['-o', 'show', 'job', jobId]))?.[1];
  const jobsNamed = (name: string) =>
    slurm
      .slurm('squeue', ['--name', name, '-t', 'all', '-h', '-o', '%i'])
      .split('\n')
      .filter((line) => line.trim() !== '');

  // Two full loops and three worker start-ups (each bundles the workflows), plus a heartbeat timeout for the kill.
  test(
    'killed mid-training, it re-attaches to its Slurm job: one job per iteration, the same datasets as on sim',
    { timeout: 400_000 },
    async () => {
      const onSim = f.config({ name: 'onsim' });
      await f.start(onSim);
      let worker = f.startWorker();
      const simResult = await f.loops.handle('onsim').result();
      expect(simResult.iterations).toBe(2);
      worker.kill('SIGTERM');

      const workDir = path.join(slurm.scratch, 'work');
      const onSlurm = f.config({
        name: 'onslurm',
        training: {
          backend: 'slurm',
          // The simulated trainer as a recipe: the same checkpoints the sim server's trainer makes from the same data.
          command: [process.execPath, LOOPTOOL_BIN, 'sim', 'train', '{spec}', '--seconds-per-job', '2'],
          workDir,
        },
      });
      await f.start(onSlurm);
      worker = f.startWorker();

      // Iteration 2's job, frozen by Slurm itself (scontrol suspend) once it runs, so the kill certainly lands while
      // the job is mid-training, whatever the machine's speed.
      const jobIdFile = path.join(workDir, 'jobs', 'onslurm-iter-2', 'slurm-job-id');
      const jobId = await waitFor(
        "iteration 2's Slurm job to run",
        async () => {
          const id = existsSync(jobIdFile) ? readFileSync(jobIdFile, 'utf8').trim() : '';
          return id && slurmState(id) === 'RUNNING' ? id : undefined;
        },
        240_000,
      );
      slurm.slurm('scontrol', ['suspend', jobId]);
      expect(slurmState(jobId)).toBe('SUSPENDED');
      worker.kill('SIGKILL');
      expect(slurmState(jobId)).toBe('SUSPENDED');

      // A new worker takes the training activity over after its heartbeat timeout; the job resumes only once that
      // retry runs, so it re-attaches to a job that is still under way.
      worker = f.startWorker();
      await waitFor('the training activity to be retried on the new worker', async () => {
        const { raw } = await f.loops.handle('onslurm').describe();
        return raw.pendingActivities?.some(
          (a) => a.activityType?.name === 'trainIteration' && (a.attempt ?? 1) >= 2 && a.state === ACTIVITY_STARTED,
        );
      });
      slurm.slurm('scontrol', ['resume', jobId]);
      const slurmResult = await f.loops.handle('onslurm').result();
      worker.kill('SIGTERM');

      const iteration2 = activityAttempts(await historyOf(f.loops.handle('onslurm')));
      expect(iteration2.find((a) => a.activity === 'trainIteration')?.attempt).toBeGreaterThan(1);
      // One Slurm job per iteration, however often the activity ran; the retry re-attached to the suspended one.
      expect(jobsNamed('onslurm-iter-1')).toHaveLength(1);
      expect(jobsNamed('onslurm-iter-2')).toEqual([jobId]);
      expect(slurmState(jobId)).toBe('COMPLETED');
      const { rows } = await f.db.pool.query<{
        iteration: number;
        backend: string;
        external_id: string;
        status: string;
      }>(
        `SELECT iteration, backend, external_id, status FROM training_runs WHERE loop_name = 'onslurm' ORDER BY iteration`,
      );
      expect(rows).toEqual([
        { iteration: 1, backend: 'slurm', external_id: jobsNamed('onslurm-iter-1')[0], status: 'succeeded' },
        { iteration: 2, backend: 'slurm', external_id: jobId, status: 'succeeded' },
      ]);

      // The simulated trainer run as a Slurm job trains the same students as the sim server's trainer.
      expect(await loopDatasets(f.db, 'onslurm')).toEqual(await loopDatasets(f.db, 'onsim'));
      expect(slurmResult.history.map((h) => h.accuracy ?? null)).toEqual(
        simResult.history.map((h) => h.accuracy ?? null),
      );
    },
  );
});
