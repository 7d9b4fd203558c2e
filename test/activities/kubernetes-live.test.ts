import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import { afterAll, describe, expect, test } from 'vitest';
import type { TrainingJobState } from '../../activities/training/backend.js';
import { KubernetesTrainingBackend } from '../../activities/training/kubernetes-backend.js';
import { Grpo, KubernetesTraining, LoraConfig } from '../../core/config.js';
import { ErrorType } from '../../core/errors.js';
import { TrainingJobSpec } from '../../core/training.js';

/**
 * The kubernetes backend against a real cluster: runs when the environment names one with KUBECONFIG (no cluster can
 * run on the machine the suite usually runs on). Without it, the test says so in its name and checks the other half
 * of the contract: a worker without credentials refuses clearly instead of waiting on localhost:8080.
 *
 * The live jobs use a small image (LOOPTOOL_K8S_LIVE_IMAGE, default busybox) in LOOPTOOL_K8S_LIVE_NAMESPACE (default
 * `default`) and mount this machine's test folder by hostPath; on a cluster whose nodes do not see that folder, a job
 * cannot leave its checkpoint for the worker, and the check asserts exactly that it is then reported failed.
 */
const kubeconfig = process.env.KUBECONFIG?.trim();
const work = mkdtempSync(path.join(os.tmpdir(), 'looptool-k8s-live-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const config = (command: string[]) =>
  KubernetesTraining.parse({
    backend: 'kubernetes',
    namespace: process.env.LOOPTOOL_K8S_LIVE_NAMESPACE || 'default',
    image: process.env.LOOPTOOL_K8S_LIVE_IMAGE || 'busybox:1.36',
    command,
    workDir: path.join(work, 'looptool'),
    gpus: 0,
    volumes: [{ name: 'work', mountPath: work, hostPath: work }],
  });

const spec = (jobKey: string) =>
  TrainingJobSpec.parse({
    jobKey,
    loopName: 'k8s-live',
    iteration: 1,
    seed: 7,
    dataset: { path: path.join(work, jobKey, 'train.jsonl'), format: 'trl-jsonl', rows: 0 },
    baseModel: 'none',
    init: null,
    weights: 'full',
    lora: LoraConfig.parse({}),
    grpo: Grpo.parse({}),
    reward: { mode: 'exact' },
    outputDir: path.join(work, jobKey, 'checkpoint'),
  });

/** Polls the job until `done` holds (the deadline only turns a stuck cluster into a failure, e.g. an image pull). */
async function until(
  backend: KubernetesTrainingBackend,
  name: string,
  done: (s: TrainingJobState) => boolean,
): Promise<TrainingJobState> {
  const deadline = Date.now() + 300_000;
  for (;;) {
    const state = await backend.status(name);
    if (done(state)) return state;
    if (Date.now() > deadline) throw new Error(`job ${name} stayed ${state.status}`);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
  }
}

const ended = (s: TrainingJobState) => ['succeeded', 'failed', 'cancelled'].includes(s.status);

describe('kubernetes backend on a live cluster', () => {
  if (kubeconfig) {
    test(
      `live cluster (KUBECONFIG=${kubeconfig}): a Job runs, re-attaches, fails with its log tail, is cancelled`,
      {
        timeout: 900_000,
      },
      async () => {
        const suffix = Date.now().toString(36);
        const manifest = JSON.stringify({ kind: 'full', path: 'hf', baseModel: 'none', steps: 1, metrics: {} });
        const ok = new KubernetesTrainingBackend(
          config([
            'sh',
            '-c',
            `echo "live {job}"; mkdir -p "$0" && echo '${manifest}' > "$0/checkpoint.json"`,
            '{output}',
          ]),
        );
        const okKey = `k8s-live-${suffix}-ok`;
        const first = await ok.submit(spec(okKey));
        // A second submit (a retried activity) finds the same Job instead of creating another.
        expect((await ok.submit(spec(okKey))).externalId).toBe(first.externalId);
        const okEnd = await until(ok, first.externalId, ended);
        expect(await ok.logs(first.externalId)).toContain(`live ${okKey}`);
        const shared = existsSync(path.join(spec(okKey).outputDir, 'checkpoint.json'));
        expect(okEnd.status).toBe(shared ? 'succeeded' : 'failed');
        await ok.cancel(first.externalId);

        const failing = new KubernetesTrainingBackend(config(['sh', '-c', 'echo "about to fail"; exit 3']));
        const failKey = `k8s-live-${suffix}-fail`;
        const failed = await until(failing, (await failing.submit(spec(failKey))).externalId, ended);
        expect(failed.status).toBe('failed');
        expect(await failing.logs(failed.externalId)).toContain('about to fail');
        await failing.cancel(failed.externalId);

        const sleeping = new KubernetesTrainingBackend(config(['sleep', '600']));
        const sleepKey = `k8s-live-${suffix}-cancel`;
        const started = await sleeping.submit(spec(sleepKey));
        await sleeping.cancel(started.externalId);
        expect(await until(sleeping, started.externalId, ended)).toMatchObject({ status: 'cancelled' });
      },
    );
  } else {
    test('live cluster check not run (KUBECONFIG is unset): without credentials the backend refuses clearly', () => {
      const saved = process.env.HOME;
      const home = path.join(work, 'home');
      mkdirSync(home);
      process.env.HOME = home;
      try {
        const refusal = (() => {
          try {
            new KubernetesTrainingBackend(config(['true']), { inClusterToken: path.join(home, 'no-token') });
          } catch (err) {
            return err;
          }
        })();
        expect(refusal).toBeInstanceOf(ApplicationFailure);
        expect(refusal).toMatchObject({ type: ErrorType.ConfigInvalid, nonRetryable: true });
        expect((refusal as Error).message).toMatch(/no cluster credentials: set KUBECONFIG in the worker environment/);
      } finally {
        process.env.HOME = saved;
      }
    });
  }
});
