import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { toApplicationFailure, TRAINER } from '../../../activities/failures.js';
import { trainingBackendFor } from '../../../activities/train.js';
import {
  JOB_KEY,
  KubernetesTrainingBackend,
  kubernetesJobName,
  rayEntrypoint,
} from '../../../activities/training/kubernetes-backend.js';
import { Grpo, KubernetesTraining, LoopConfig, LoraConfig } from '../../../core/config.js';
import { ErrorType } from '../../../core/errors.js';
import { TrainingJobSpec } from '../../../core/training.js';
import { FakeKubeApi, readExchanges } from '../../helpers/fake-kube-api.js';

const work = mkdtempSync(path.join(os.tmpdir(), 'looptool-kubernetes-'));
/** The volume the worker and the pods share, mounted at the same path in both. */
const shared = path.join(work, 'shared');
const JOB = 'tool-loop-iter-2';
const jobs = readExchanges('batch-job.json', work);
const rays = readExchanges('rayjob.json', work);
const api = new FakeKubeApi();
const savedEnv = { KUBECONFIG: process.env.KUBECONFIG, HOME: process.env.HOME };

beforeAll(async () => {
  await api.start();
  process.env.KUBECONFIG = api.writeKubeconfig(work);
});
afterAll(async () => {
  process.env.KUBECONFIG = savedEnv.KUBECONFIG;
  if (savedEnv.KUBECONFIG === undefined) delete process.env.KUBECONFIG;
  await api.close();
  rmSync(work, { recursive: true, force: true });
});
beforeEach(() => {
  rmSync(shared, { recursive: true, force: true });
  mkdirSync(shared, { recursive: true });
});
afterEach(() => {
  const { unexpected, unplayed } = { unexpected: [...api.unexpected], unplayed: api.unplayed };
  api.reset();
  // Every recorded exchange was asked for, in order, and nothing else.
  expect(unexpected).toEqual([]);
  expect(unplayed).toEqual([]);
});

const config = (overrides: Partial<Record<keyof KubernetesTraining, unknown>> = {}) =>
  KubernetesTraining.parse({
    backend: 'kubernetes',
    namespace: 'training',
    image: 'ghcr.io/example/looptool-trainer:1.0',
    command: ['bash', 'recipes/verl-grpo/run.sh', '{spec}'],
    workDir: path.join(shared, 'looptool'),
    gpus: 2,
    nodeSelector: { 'nvidia.com/gpu.product': 'NVIDIA-H100-80GB-HBM3' },
    volumes: [{ name: 'shared', mountPath: shared, claimName: 'looptool-shared' }],
    serviceAccount: 'looptool-trainer',
    ...overrides,
  });

const iterDir = () => path.join(shared, 'artifacts', 'tool-loop', 'iter-2');
const spec = (jobKey = JOB): TrainingJobSpec =>
  TrainingJobSpec.parse({
    jobKey,
    loopName: 'tool-loop',
    iteration: 2,
    seed: 7,
    dataset: { path: path.join(iterDir(), 'train.parquet'), format: 'verl-parquet', rows: 128 },
    baseModel: 'Qwen/Qwen2.5-7B-Instruct',
    init: null,
    weights: 'full',
    lora: LoraConfig.parse({}),
    grpo: Grpo.parse({}),
    reward: { mode: 'exact' },
    outputDir: path.join(iterDir(), 'checkpoint'),
  });
const specFile = path.join(shared, 'looptool', 'jobs', JOB, 'spec.json');

/** What the recipe writes into its output folder while and after it trains. */
function recipeWrites(files: { step?: number; manifest?: boolean }) {
  const out = spec().outputDir;
  mkdirSync(out, { recursive: true });
  if (files.step !== undefined)
    writeFileSync(path.join(out, 'progress.json'), JSON.stringify({ step: files.step, total_steps: 40 }));
  if (files.manifest) {
    writeFileSync(
      path.join(out, 'checkpoint.json'),
      JSON.stringify({
        kind: 'full',
        path: 'hf',
        baseModel: 'Qwen/Qwen2.5-7B-Instruct',
        steps: 40,
        metrics: { reward: 0.71 },
      }),
    );
  }
}

/** How the training activity classifies a backend error (activities/train.ts `onBackend`). */
const classified = (err: unknown) => toApplicationFailure(err, 'kubernetes trainer', TRAINER) as ApplicationFailure;
const failureOf = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (err: unknown) => err,
  );

describe('object names from job keys', () => {
  test('a key that is already a legal name is the name; others get a legal prefix and a hash of the whole key', () => {
    expect(kubernetesJobName('tool-loop-iter-2', 'job')).toBe('tool-loop-iter-2');
    const long = `${'a'.repeat(70)}-iter-1`;
    const name = kubernetesJobName(long, 'job');
    expect(name).toMatch(/^a+-[0-9a-f]{8}$/);
    expect(name.length).toBeLessThanOrEqual(63);
    // Two keys that share the kept prefix still get two names.
    expect(kubernetesJobName(`${'a'.repeat(70)}-iter-2`, 'job')).not.toBe(name);
    // KubeRay wants a DNS-1035 label of at most 47 characters.
    const ray = kubernetesJobName(`7b_Loop.v2-${'x'.repeat(50)}-iter-1`, 'rayjob');
    expect(ray).toMatch(/^[a-z][a-z0-9-]*[a-z0-9]$/);
    expect(ray.length).toBeLessThanOrEqual(47);
    expect(kubernetesJobName('My_Loop-iter-3', 'job')).toMatch(/^my-loop-iter-3-[0-9a-f]{8}$/);
  });

  test("a RayJob's entrypoint gives the shell back exactly the command's words", () => {
    const argv = ['python3', '/shared/a b/run.py', "it's", '--flag=$HOME', 'plain/path.json'];
    const words = execFileSync('bash', ['-c', `printf '%s\\n' ${rayEntrypoint(argv)}`], { encoding: 'utf8' });
    expect(words.split('\n').slice(0, -1)).toEqual(argv);
    expect(rayEntrypoint(['bash', 'run.sh', '/x/spec.json'])).toBe('bash run.sh /x/spec.json');
  });
});

describe('kubernetes backend, batch/v1 Job, against recorded API exchanges', () => {
  test('submits one Job with the configured image, GPUs, volumes and command, then follows it to its checkpoint', async () => {
    const backend = new KubernetesTrainingBackend(config());
    api.play(jobs.create!);
    const submitted = await backend.submit(spec());
    expect(submitted).toMatchObject({ externalId: JOB, status: 'queued' });

    const [create] = api.seen;
    expect(create!.headers.authorization).toBe('Bearer looptool-test-token');
    const body = create!.body as {
      metadata: { name: string; labels: Record<string, string>; annotations: Record<string, string> };
      spec: { backoffLimit: number; template: { spec: Record<string, unknown> } };
    };
    expect(body.metadata).toMatchObject({
      name: JOB,
      labels: { 'app.kubernetes.io/managed-by': 'looptool', [JOB_KEY]: JOB },
      annotations: { [JOB_KEY]: JOB },
    });
    expect(body.spec.backoffLimit).toBe(0);
    expect(body.spec.template.spec).toEqual({
      restartPolicy: 'Never',
      containers: [
        {
          name: 'trainer',
          image: 'ghcr.io/example/looptool-trainer:1.0',
          command: ['bash'],
          args: ['recipes/verl-grpo/run.sh', specFile],
          resources: { limits: { 'nvidia.com/gpu': '2' } },
          volumeMounts: [{ name: 'shared', mountPath: shared }],
        },
      ],
      volumes: [{ name: 'shared', persistentVolumeClaim: { claimName: 'looptool-shared' } }],
      nodeSelector: { 'nvidia.com/gpu.product': 'NVIDIA-H100-80GB-HBM3' },
      serviceAccountName: 'looptool-trainer',
    });
    // The pod reads its spec from the shared folder: every setting of the iteration.
    expect(JSON.parse(readFileSync(specFile, 'utf8'))).toEqual(spec());

    api.play(jobs.pending!, jobs.running!, jobs.complete!);
    expect(await backend.status(JOB)).toMatchObject({ status: 'queued', step: 0 });
    recipeWrites({ step: 12 });
    expect(await backend.status(JOB)).toMatchObject({ status: 'running', step: 12, totalSteps: 40 });
    recipeWrites({ step: 40, manifest: true });
    expect(await backend.status(JOB)).toEqual({
      externalId: JOB,
      status: 'succeeded',
      step: 40,
      totalSteps: 40,
      checkpoint: {
        kind: 'full',
        path: path.join(spec().outputDir, 'hf'),
        baseModel: 'Qwen/Qwen2.5-7B-Instruct',
        steps: 40,
        metrics: { reward: 0.71 },
      },
      metrics: { reward: 0.71 },
    });
    expect(api.seen.map((r) => `${r.method} ${r.path}`)).toEqual([
      'POST /apis/batch/v1/namespaces/training/jobs',
      ...Array(3).fill(`GET /apis/batch/v1/namespaces/training/jobs/${JOB}`),
    ]);
  });

  test('a retried submit re-attaches to the Job of its key (AlreadyExists), and refuses one of another key', async () => {
    const backend = new KubernetesTrainingBackend(config());
    api.play(jobs.alreadyExists!, jobs.running!);
    expect(await backend.submit(spec())).toMatchObject({ externalId: JOB, status: 'running' });
    expect(api.seen.filter((r) => r.method === 'POST')).toHaveLength(1);

    api.play(jobs.alreadyExists!, jobs.otherKeysJob!);
    const refused = (await failureOf(backend.submit(spec()))) as ApplicationFailure;
    expect(refused).toBeInstanceOf(ApplicationFailure);
    expect(refused).toMatchObject({ nonRetryable: true, type: ErrorType.TrainerRequestRejected });
    expect(refused.message).toContain('job key other-loop-iter-2, not tool-loop-iter-2');
  });

  test('a Kueue-suspended Job is queued; a Complete Job without checkpoint.json failed', async () => {
    const backend = new KubernetesTrainingBackend(config());
    api.play(jobs.create!, jobs.suspended!, jobs.complete!);
    await backend.submit(spec());
    expect(await backend.status(JOB)).toMatchObject({ status: 'queued' });
    const done = await backend.status(JOB);
    expect(done.status).toBe('failed');
    expect(done.error).toContain('checkpoint.json is missing');
  });

  test('a failed Job reports its condition, and its logs are the tail of its pod, found by the job-name label', async () => {
    const backend = new KubernetesTrainingBackend(config());
    api.play(jobs.create!, jobs.failed!);
    await backend.submit(spec());
    expect(await backend.status(JOB)).toMatchObject({
      status: 'failed',
      error: 'BackoffLimitExceeded: Job has reached the specified backoff limit',
    });

    api.play(jobs.podsFailed!, jobs.logFailed!);
    const logs = await backend.logs(JOB);
    expect(logs).toContain('torch.OutOfMemoryError: CUDA out of memory');
    const [list, log] = api.seen.slice(-2);
    expect(list!.query.get('labelSelector')).toBe(`job-name=${JOB}`);
    expect(Object.fromEntries(log!.query)).toEqual({ container: 'trainer', tailLines: '200' });
  });

  test('the logs of a pod that cannot be scheduled say why', async () => {
    const backend = new KubernetesTrainingBackend(config());
    api.play(jobs.podsPending!);
    expect(await backend.logs(JOB)).toBe(
      `pod ${JOB}-x7k2p is Pending: Unschedulable: 0/4 nodes are available: 4 Insufficient nvidia.com/gpu. ` +
        'preemption: 0/4 nodes are available: 4 No preemption victims found for incoming pod.',
    );
  });

  test('cancel deletes the Job in the background and the job reads cancelled once it is gone; again is harmless', async () => {
    const backend = new KubernetesTrainingBackend(config());
    api.play(jobs.create!, jobs.delete!, jobs.notFound!, jobs.deleteNotFound!);
    await backend.submit(spec());
    recipeWrites({ step: 5 });
    await backend.cancel(JOB);
    expect(api.seen[1]).toMatchObject({ method: 'DELETE', path: `/apis/batch/v1/namespaces/training/jobs/${JOB}` });
    // The client sends DeleteOptions in the query and, for a DELETE, in the body too: either is honoured.
    const options = { ...(api.seen[1]!.body as object), ...Object.fromEntries(api.seen[1]!.query) };
    expect(options).toMatchObject({ propagationPolicy: 'Background' });
    expect(await backend.status(JOB)).toMatchObject({ externalId: JOB, status: 'cancelled', step: 5 });
    await backend.cancel(JOB);
  });

  test('a Job deleted outside looptool is a failed job, not a wait', async () => {
    const backend = new KubernetesTrainingBackend(config());
    api.play(jobs.notFound!);
    expect(await backend.status(JOB)).toMatchObject({
      status: 'failed',
      error: `the job ${JOB} no longer exists in namespace training (deleted outside looptool?)`,
    });
  });

  test('an API that is overloaded or down is retryable; refused requests are not, with the server message', async () => {
    const backend = new KubernetesTrainingBackend(config());
    api.play(jobs.internalError!, jobs.tooManyRequests!);
    const down = classified(await failureOf(backend.submit(spec())));
    expect(down).toMatchObject({ type: ErrorType.TrainerUnavailable, nonRetryable: false });
    expect(down.message).toContain('HTTP 500: create job tool-loop-iter-2: Internal error occurred');
    const busy = classified(await failureOf(backend.status(JOB)));
    expect(busy).toMatchObject({ type: ErrorType.TrainerUnavailable, nonRetryable: false, nextRetryDelay: 1000 });

    api.play(jobs.forbidden!, jobs.namespaceNotFound!, jobs.unauthorized!);
    const forbidden = classified(await failureOf(backend.submit(spec())));
    expect(forbidden).toMatchObject({ type: ErrorType.TrainerRequestRejected, nonRetryable: true });
    expect(forbidden.message).toContain('cannot create resource "jobs" in API group "batch"');
    const noNamespace = classified(await failureOf(backend.submit(spec())));
    expect(noNamespace).toMatchObject({ type: ErrorType.TrainerRequestRejected, nonRetryable: true });
    expect(noNamespace.message).toContain('namespaces "training" not found');
    const unauthorized = classified(await failureOf(backend.submit(spec())));
    expect(unauthorized).toMatchObject({ nonRetryable: true });
    expect(unauthorized.message).toContain("refused the worker's credentials");
  });

  test('an API server that refuses connections is retryable', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const dir = mkdtempSync(path.join(work, 'down-'));
    const down = new FakeKubeApi();
    down.url = `http://127.0.0.1:${port}`;
    process.env.KUBECONFIG = down.writeKubeconfig(dir);
    try {
      const backend = new KubernetesTrainingBackend(config());
      const failure = classified(await failureOf(backend.status(JOB)));
      expect(failure).toMatchObject({ type: ErrorType.TrainerUnavailable, nonRetryable: false });
      expect(failure.message).toContain('ECONNREFUSED');
    } finally {
      process.env.KUBECONFIG = path.join(work, 'kubeconfig.yaml');
    }
  });
});

describe('kubernetes backend, KubeRay RayJob, against recorded API exchanges', () => {
  const rayConfig = () => config({ kind: 'rayjob', runtimeEnv: { env_vars: { VLLM_USE_V1: '1' } } });

  test('submits one RayJob (entrypoint, runtime env, GPU worker group) and follows it to its checkpoint', async () => {
    const backend = new KubernetesTrainingBackend(rayConfig());
    api.play(rays.create!, rays.initializing!, rays.running!, rays.complete!);
    expect(await backend.submit(spec())).toMatchObject({ externalId: JOB, status: 'queued' });
    const body = api.seen[0]!.body as {
      apiVersion: string;
      kind: string;
      metadata: { name: string; annotations: Record<string, string> };
      spec: Record<string, unknown> & {
        runtimeEnvYAML: string;
        rayClusterSpec: {
          headGroupSpec: { template: { spec: { containers: { name: string; volumeMounts: unknown[] }[] } } };
          workerGroupSpecs: { replicas: number; template: { spec: Record<string, unknown> } }[];
        };
      };
    };
    expect(api.seen[0]!.path).toBe('/apis/ray.io/v1/namespaces/training/rayjobs');
    expect(body).toMatchObject({
      apiVersion: 'ray.io/v1',
      kind: 'RayJob',
      metadata: { name: JOB, annotations: { [JOB_KEY]: JOB } },
      spec: {
        entrypoint: `bash recipes/verl-grpo/run.sh ${specFile}`,
        shutdownAfterJobFinishes: true,
        submissionMode: 'K8sJobMode',
        backoffLimit: 0,
      },
    });
    expect(parseYaml(body.spec.runtimeEnvYAML)).toEqual({ env_vars: { VLLM_USE_V1: '1' } });
    const head = body.spec.rayClusterSpec.headGroupSpec.template.spec.containers[0]!;
    expect(head).toMatchObject({ name: 'ray-head', volumeMounts: [{ name: 'shared', mountPath: shared }] });
    expect(body.spec.rayClusterSpec.workerGroupSpecs).toHaveLength(1);
    expect(body.spec.rayClusterSpec.workerGroupSpecs[0]).toMatchObject({
      replicas: 1,
      template: {
        spec: {
          containers: [
            { image: 'ghcr.io/example/looptool-trainer:1.0', resources: { limits: { 'nvidia.com/gpu': '2' } } },
          ],
          volumes: [{ name: 'shared', persistentVolumeClaim: { claimName: 'looptool-shared' } }],
          nodeSelector: { 'nvidia.com/gpu.product': 'NVIDIA-H100-80GB-HBM3' },
          serviceAccountName: 'looptool-trainer',
        },
      },
    });

    expect(await backend.status(JOB)).toMatchObject({ status: 'queued' });
    recipeWrites({ step: 3 });
    expect(await backend.status(JOB)).toMatchObject({ status: 'running', step: 3 });
    recipeWrites({ step: 40, manifest: true });
    expect(await backend.status(JOB)).toMatchObject({ status: 'succeeded', checkpoint: { kind: 'full', steps: 40 } });
  });

  test('a failed RayJob reports KubeRay reason and message; its logs come from the submitter pod', async () => {
    const backend = new KubernetesTrainingBackend(rayConfig());
    api.play(rays.alreadyExists!, rays.failed!);
    const failed = await backend.submit(spec());
    expect(failed.status).toBe('failed');
    expect(failed.error).toMatch(/^AppFailed: Job entrypoint command failed with exit code 1/);

    api.play(rays.podsSubmitter!, rays.logSubmitter!);
    expect(await backend.logs(JOB)).toContain(`Job 'tool-loop-iter-2-n4sxq' failed`);
    expect(api.seen.at(-1)!.query.get('container')).toBeNull();
  });

  test('without a submitter pod the logs are the Ray head pod of its cluster', async () => {
    const backend = new KubernetesTrainingBackend(rayConfig());
    api.play(rays.podsNone!, rays.running!, rays.podsHead!, rays.logHead!);
    expect(await backend.logs(JOB)).toContain('Ray runtime started.');
    expect(api.seen[2]!.query.get('labelSelector')).toBe('ray.io/cluster=tool-loop-iter-2-8hv2x,ray.io/node-type=head');
    expect(api.seen[3]!.query.get('container')).toBe('ray-head');
  });

  test('cancel deletes the RayJob; while KubeRay stops it (its finalizer) the job reads cancelled', async () => {
    const backend = new KubernetesTrainingBackend(rayConfig());
    api.play(rays.create!, rays.delete!, rays.deleting!);
    await backend.submit(spec());
    await backend.cancel(JOB);
    expect(api.seen[1]).toMatchObject({ method: 'DELETE', path: `/apis/ray.io/v1/namespaces/training/rayjobs/${JOB}` });
    expect(await backend.status(JOB)).toMatchObject({ status: 'cancelled' });
  });

  test('a cluster without KubeRay is a clear, non-retryable error', async () => {
    const backend = new KubernetesTrainingBackend(rayConfig());
    api.play(rays.noKubeRay!);
    const failure = classified(await failureOf(backend.submit(spec())));
    expect(failure).toMatchObject({ type: ErrorType.TrainerRequestRejected, nonRetryable: true });
    expect(failure.message).toContain('is KubeRay installed?');
  });
});

describe('kubernetes backend configuration', () => {
  test('the loop config selects it', () => {
    const loop = LoopConfig.parse({
      data: { seedDataset: 'seed' },
      models: { policy: { model: 'p' }, judge: { model: 'j' }, generator: { model: 'g' } },
      training: { ...config(), kind: 'job' },
    });
    expect(trainingBackendFor(loop.training)).toBeInstanceOf(KubernetesTrainingBackend);
  });

  test('without credentials in the worker environment it refuses clearly instead of dialing localhost:8080', () => {
    const home = mkdtempSync(path.join(work, 'home-'));
    delete process.env.KUBECONFIG;
    process.env.HOME = home;
    try {
      const refused = (() => {
        try {
          new KubernetesTrainingBackend(config(), { inClusterToken: path.join(home, 'no-token') });
        } catch (err) {
          return err as ApplicationFailure;
        }
      })();
      expect(refused).toBeInstanceOf(ApplicationFailure);
      expect(refused).toMatchObject({ type: ErrorType.ConfigInvalid, nonRetryable: true });
      expect(refused!.message).toContain('no cluster credentials: set KUBECONFIG');
    } finally {
      process.env.KUBECONFIG = path.join(work, 'kubeconfig.yaml');
      process.env.HOME = savedEnv.HOME;
    }
  });

  test('a plain-http API server without insecure-skip-tls-verify is refused up front, not on every request', () => {
    process.env.KUBECONFIG = api.writeKubeconfig(mkdtempSync(path.join(work, 'tls-')), { skipTlsVerify: false });
    try {
      expect(() => new KubernetesTrainingBackend(config())).toThrow(/plain http .*insecure-skip-tls-verify: true/);
    } finally {
      process.env.KUBECONFIG = path.join(work, 'kubeconfig.yaml');
    }
  });

  test('a path the pod would not see is refused, naming it; a volume needs exactly one source', async () => {
    expect(() => new KubernetesTrainingBackend(config({ workDir: path.join(work, 'elsewhere') }))).toThrow(
      /would not see training.workDir/,
    );
    const backend = new KubernetesTrainingBackend(config());
    const outside = { ...spec(), dataset: { ...spec().dataset, path: path.join(work, 'local', 'train.parquet') } };
    const refused = (await failureOf(backend.submit(outside))) as ApplicationFailure;
    expect(refused).toMatchObject({ type: ErrorType.ConfigInvalid, nonRetryable: true });
    expect(refused.message).toContain(`the exported dataset (${path.join(work, 'local', 'train.parquet')})`);
    expect(existsSync(specFile)).toBe(false);

    const both = KubernetesTraining.safeParse({
      ...config(),
      volumes: [{ name: 'v', mountPath: shared, claimName: 'c', hostPath: '/data' }],
    });
    expect(both.success).toBe(false);
    expect(both.error?.issues[0]).toMatchObject({
      path: ['volumes', 0],
      message: expect.stringContaining('exactly one'),
    });
  });
});
