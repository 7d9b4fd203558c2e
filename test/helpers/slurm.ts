import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startSlurmCluster, type SlurmCluster } from '../../services/slurm-cluster.js';

/** A real Slurm cluster for one test file, in a folder of its own, and the environment its client commands need. */
export interface SlurmFixture {
  cluster: SlurmCluster;
  /** This process's environment plus SLURM_CONF: what a worker (or a backend) that submits to the cluster needs. */
  env: NodeJS.ProcessEnv;
  /** Scratch space next to the cluster (job folders, outputs). */
  scratch: string;
  /** Runs a Slurm client command against the cluster and returns its output. */
  slurm(command: string, args: string[]): string;
  close(): Promise<void>;
}

/**
 * Starts a cluster of `nodes` slurmds on this host (Debian's slurm-wlm and munge, installed by the helper when they are
 * missing and we are root; otherwise it fails saying how to install them). Finished jobs stay visible to `scontrol`
 * for an hour, so a test can count a key's jobs with `squeue -t all` after the fact.
 */
export async function startSlurmFixture(options: { nodes?: number } = {}): Promise<SlurmFixture> {
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'looptool-slurm-'));
  // munged refuses a socket under a folder that not every user can search.
  chmodSync(scratch, 0o755);
  let cluster: SlurmCluster;
  try {
    cluster = await startSlurmCluster({
      dir: path.join(scratch, 'cluster'),
      nodes: options.nodes ?? 1,
      minJobAgeSeconds: 3600,
    });
  } catch (err) {
    rmSync(scratch, { recursive: true, force: true });
    throw err;
  }
  const env = { ...process.env, ...cluster.env };
  return {
    cluster,
    env,
    scratch,
    slurm: (command, args) => execFileSync(command, args, { env, encoding: 'utf8' }),
    close: async () => {
      await cluster.stop();
      rmSync(scratch, { recursive: true, force: true });
    },
  };
}
