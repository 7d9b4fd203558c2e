import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  ApiException,
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  findHomeDir,
  KubeConfig,
  type V1Container,
  type V1Job,
  type V1Pod,
  type V1PodSpec,
} from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/activity';
import { stringify as toYaml } from 'yaml';
import { shellWord } from '../../core/shell.js';
import type { KubernetesTraining } from '../../core/config.js';
import { ErrorType } from '../../core/errors.js';
import { TRAINING_SPEC_FILE } from '../../core/training.js';
import { HttpStatusError } from '../failures.js';
import {
  TERMINAL_STATUSES,
  type TrainingBackend,
  type TrainingJobSpec,
  type TrainingJobState,
  type TrainingJobStatus,
} from './backend.js';
import { readManifest, readProgress } from './job-files.js';

/** Where a pod's service-account token is mounted; `loadFromDefault` falls back to it (in-cluster credentials). */
export const IN_CLUSTER_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/** The annotation (always) and label (when the key is a legal label value) that tie an object to its job key. */
export const JOB_KEY = 'looptool.dev/job-key';
const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'looptool' } as const;

/**
 * Longest object name per kind. A Job's name becomes its pods' `job-name` label (≤ 63); KubeRay refuses RayJob names
 * over 47 characters (its RayCluster adds a 6-character suffix to stay under 53) and wants a DNS-1035 label.
 */
const NAME_LIMIT = { job: 63, rayjob: 47 } as const;
const KUBERAY = { group: 'ray.io', version: 'v1', plural: 'rayjobs' } as const;
const TRAINER_CONTAINER = 'trainer';
const RAY_HEAD_CONTAINER = 'ray-head';
const LOG_TAIL_LINES = 200;
/** Written into the job folder by `cancel`: a deleted Job leaves no object behind to say it was cancelled. */
const CANCELLED_FILE = 'cancelled.json';

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/**
 * The object name of a job key: the key itself when it is already a legal name (lowercase DNS-1035 label within the
 * kind's limit), else a legal prefix of it plus a short hash of the whole key, so two keys never share a name.
 */
export function kubernetesJobName(jobKey: string, kind: KubernetesTraining['kind']): string {
  const limit = NAME_LIMIT[kind];
  const legal = jobKey
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^[^a-z]+/, '')
    .replace(/-+$/, '');
  if (legal === jobKey && legal.length <= limit) return legal;
  const hash = createHash('sha256').update(jobKey).digest('hex').slice(0, 8);
  const stem = legal.slice(0, limit - hash.length - 1).replace(/-+$/, '') || 'job';
  return `${stem}-${hash}`;
}

/** argv as the one shell command line a RayJob's `entrypoint` is (Ray runs it through `/bin/sh`). */
export function rayEntrypoint(argv: string[]): string {
  return argv.map(shellWord).join(' ');
}

/**
 * The worker's Kubernetes credentials, found as `kubectl` finds them (`KUBECONFIG`, `~/.kube/config`, the pod's
 * service account) and never from the loop config, so secrets stay in the worker's environment. With none of them
 * `loadFromDefault` would quietly aim at http://localhost:8080 and the loop would wait forever on a refused connection,
 * so that is refused here, clearly.
 */
export function loadKubeConfig(inClusterToken = IN_CLUSTER_TOKEN): KubeConfig {
  const kubeconfig = process.env.KUBECONFIG?.trim();
  const home = findHomeDir();
  const homeConfig = home ? path.join(home, '.kube', 'config') : undefined;
  const source = kubeconfig
    ? `KUBECONFIG=${kubeconfig}`
    : homeConfig && existsSync(homeConfig)
      ? homeConfig
      : existsSync(inClusterToken)
        ? 'the in-cluster service account'
        : undefined;
  if (!source) {
    throw ApplicationFailure.nonRetryable(
      'the kubernetes training backend has no cluster credentials: set KUBECONFIG in the worker environment ' +
        '(or give it ~/.kube/config), or run the worker in a pod with a service account',
      ErrorType.ConfigInvalid,
    );
  }
  const config = new KubeConfig();
  try {
    config.loadFromDefault();
  } catch (err) {
    throw ApplicationFailure.nonRetryable(
      `the kubernetes training backend cannot load its credentials from ${source}: ${(err as Error).message}`,
      ErrorType.ConfigInvalid,
    );
  }
  const cluster = config.getCurrentCluster();
  if (!cluster) {
    throw ApplicationFailure.nonRetryable(
      `the kubeconfig from ${source} has no current context with a cluster (kubectl config use-context …)`,
      ErrorType.ConfigInvalid,
    );
  }
  // The client refuses plain http on every request unless TLS checks are off; say so once, up front.
  if (cluster.server.startsWith('http:') && !cluster.skipTLSVerify) {
    throw ApplicationFailure.nonRetryable(
      `the cluster in ${source} is plain http (${cluster.server}): the Kubernetes client talks to it only with ` +
        'insecure-skip-tls-verify: true on that cluster',
      ErrorType.ConfigInvalid,
    );
  }
  return config;
}

/** The `Status` object the API server answers a refused request with. */
interface ApiStatus {
  message?: string;
  reason?: string;
}

function apiStatusOf(err: ApiException<unknown>): ApiStatus {
  const body = err.body;
  if (typeof body === 'object' && body !== null) return body as ApiStatus;
  if (typeof body === 'string') {
    try {
      return JSON.parse(body) as ApiStatus;
    } catch {
      return { message: body.slice(0, 300) };
    }
  }
  return {};
}

/** What the RayJob status fields this backend reads look like (ray.io/v1 `RayJobStatus`). */
interface RayJobObject {
  metadata?: { name?: string; annotations?: Record<string, string>; deletionTimestamp?: string };
  status?: {
    jobStatus?: string;
    jobDeploymentStatus?: string;
    reason?: string;
    message?: string;
    rayClusterName?: string;
  };
}

interface ObservedJob {
  jobKey?: string;
  deleting: boolean;
  status: TrainingJobStatus;
  error?: string;
}

/** A batch/v1 Job's conditions and pod counts as a job status. */
function observeJob(job: V1Job): Omit<ObservedJob, 'jobKey' | 'deleting'> {
  const holds = (type: string) => job.status?.conditions?.find((c) => c.type === type && c.status === 'True');
  // FailureTarget comes first: the controller has decided, and Failed follows once the pods are gone.
  const failed = holds('Failed') ?? holds('FailureTarget');
  if (failed) return { status: 'failed', error: `${failed.reason ?? 'Failed'}: ${failed.message ?? ''}`.trim() };
  if (holds('Complete')) return { status: 'succeeded' };
  // A suspended Job (Kueue, an admin) waits for quota: queued, which the stall watch leaves alone.
  if (holds('Suspended')) return { status: 'queued' };
  const { active = 0, ready, succeeded = 0, failed: failedPods = 0, terminating = 0 } = job.status ?? {};
  // `ready` counts pods whose container runs; an active pod that is not ready is still scheduling or pulling.
  // Servers older than 1.24 leave `ready` out, and then an active pod is all there is to go on.
  const started = ready === undefined ? active > 0 : ready > 0;
  // A pod that already ended, before the controller writes the terminal condition, is the end of a running job.
  if (started || succeeded + failedPods + terminating > 0) return { status: 'running' };
  return { status: 'queued' };
}

/** A RayJob's deployment status (KubeRay's lifecycle) and job status (Ray's) as a job status. */
function observeRayJob(rayJob: RayJobObject): Omit<ObservedJob, 'jobKey' | 'deleting'> {
  const { jobStatus = '', jobDeploymentStatus = '', reason, message } = rayJob.status ?? {};
  const detail = [reason, message].filter(Boolean).join(': ');
  switch (jobDeploymentStatus) {
    case 'Complete':
      if (jobStatus === 'SUCCEEDED') return { status: 'succeeded' };
      if (jobStatus === 'STOPPED') return { status: 'cancelled', error: 'the Ray job was stopped' };
      return { status: 'failed', error: `Ray job ${jobStatus || 'ended'}${detail ? `: ${detail}` : ''}` };
    case 'Failed':
    case 'ValidationFailed':
      return { status: 'failed', error: detail || `RayJob ${jobDeploymentStatus}` };
    case 'Running':
      // PENDING: submitted, waiting for the entrypoint's resources.
      return { status: jobStatus === 'RUNNING' ? 'running' : 'queued' };
    default:
      // '' / New, Initializing (the RayCluster starts), Waiting, Suspending/Suspended (Kueue holds it), Retrying.
      return { status: 'queued' };
  }
}

/**
 * Training on Kubernetes: each job is a batch/v1 Job (`kind: job`) or a KubeRay RayJob (`kind: rayjob`) named from
 * the job key, in the configured namespace, with the configured image, GPUs, node selector, volumes and service
 * account. The worker and the pods share a volume: the worker writes the job spec into `workDir/jobs/<key>/` and
 * exports the dataset under its artifacts folder, the pod runs `command` (`{spec}`, `{dataset}`, `{output}`, `{job}`
 * substituted) and writes `progress.json` and `checkpoint.json` into `{output}`, as with the local backend; each of
 * those paths must lie under a volume's mountPath, at the same path in the worker and the pod.
 *
 * Creating is idempotent by name (an AlreadyExists re-attaches to the job of the same key), so a retried activity
 * never starts a second job on the GPUs. An API that does not answer (refused, 5xx, 429) is a retryable failure;
 * a refused request (401, 403, a missing namespace) is not.
 */
export class KubernetesTrainingBackend implements TrainingBackend {
  readonly name = 'kubernetes';
  private readonly batch: BatchV1Api;
  private readonly core: CoreV1Api;
  private readonly custom: CustomObjectsApi;
  private readonly server: string;

  constructor(
    private readonly config: KubernetesTraining,
    options: { inClusterToken?: string } = {},
  ) {
    this.requireShared(path.join(config.workDir, 'jobs'), 'training.workDir');
    const kubeConfig = loadKubeConfig(options.inClusterToken);
    this.server = kubeConfig.getCurrentCluster()?.server ?? 'the current context';
    this.batch = kubeConfig.makeApiClient(BatchV1Api);
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.custom = kubeConfig.makeApiClient(CustomObjectsApi);
  }

  get location(): string {
    return `${this.server}, namespace ${this.config.namespace}`;
  }

  private get namespace(): string {
    return this.config.namespace;
  }

  /** A path the pod must see exists only on the shared volume: refuse one outside every mount, naming it. */
  private requireShared(file: string, what: string): void {
    const resolved = path.resolve(file);
    const inside = this.config.volumes.some((volume) => {
      const relative = path.relative(path.resolve(volume.mountPath), resolved);
      return !relative.startsWith('..') && !path.isAbsolute(relative);
    });
    if (!inside) {
      const mounts = this.config.volumes.map((volume) => volume.mountPath).join(', ') || 'none';
      throw ApplicationFailure.nonRetryable(
        `training.volumes: the training pod would not see ${what} (${resolved}); mounted: ${mounts}. Mount the ` +
          "volume the worker shares with the pods at the same path in both (training.workDir and the worker's " +
          'LOOPTOOL_ARTIFACTS_DIR must lie on it)',
        ErrorType.ConfigInvalid,
      );
    }
  }

  private jobDir(jobKey: string): string {
    if (!/^[A-Za-z0-9._-]+$/.test(jobKey)) throw new Error(`job key ${JSON.stringify(jobKey)} is not a folder name`);
    return path.join(path.resolve(this.config.workDir), 'jobs', jobKey);
  }

  /** The job key of an object name, from the job folders (for an object that is gone and so has no annotation). */
  private jobKeyOfName(name: string): string | undefined {
    const jobs = path.join(path.resolve(this.config.workDir), 'jobs');
    if (!existsSync(jobs)) return undefined;
    return readdirSync(jobs).find((key) => kubernetesJobName(key, this.config.kind) === name);
  }

  /** Maps the client's errors to what the activity's failure classifier reads: status and the server's message. */
  private apiError(err: unknown, what: string): unknown {
    if (!(err instanceof ApiException)) return err;
    const status = apiStatusOf(err);
    const message =
      err.code === 401
        ? "the API server refused the worker's credentials (KUBECONFIG, or the pod's service account token)"
        : status.message || status.reason || 'no message';
    const hint =
      err.code === 404 && this.config.kind === 'rayjob' && /could not find the requested resource/.test(message)
        ? ' (is KubeRay installed? the ray.io/v1 RayJob resource is missing)'
        : '';
    const headers = new Headers(
      Object.entries((err.headers ?? {}) as Record<string, string>).filter(([, value]) => typeof value === 'string'),
    );
    return new HttpStatusError(err.code, `${what}: ${message}${hint}`, headers);
  }

  private async call<T>(what: string, request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (err) {
      throw this.apiError(err, what);
    }
  }

  private podSpec(containers: V1Container[]): V1PodSpec {
    const { volumes, nodeSelector, serviceAccount } = this.config;
    return {
      containers,
      volumes: volumes.map((volume) => ({
        name: volume.name,
        ...(volume.claimName
          ? { persistentVolumeClaim: { claimName: volume.claimName } }
          : { hostPath: { path: volume.hostPath! } }),
      })),
      ...(Object.keys(nodeSelector).length > 0 ? { nodeSelector } : {}),
      ...(serviceAccount ? { serviceAccountName: serviceAccount } : {}),
    };
  }

  private container(name: string, gpus: number, argv?: string[]): V1Container {
    return {
      name,
      image: this.config.image,
      ...(argv ? { command: argv.slice(0, 1), args: argv.slice(1) } : {}),
      ...(gpus > 0 ? { resources: { limits: { 'nvidia.com/gpu': String(gpus) } } } : {}),
      volumeMounts: this.config.volumes.map((volume) => ({ name: volume.name, mountPath: volume.mountPath })),
    };
  }

  private metadata(name: string, jobKey: string) {
    return {
      name,
      namespace: this.namespace,
      labels: { ...MANAGED_BY, ...(jobKey.length <= 63 && LABEL_VALUE.test(jobKey) ? { [JOB_KEY]: jobKey } : {}) },
      annotations: { [JOB_KEY]: jobKey },
    };
  }

  /** The batch/v1 Job: one pod, never retried by Kubernetes (a retry is the activity's decision), argv without a shell. */
  private jobManifest(name: string, jobKey: string, argv: string[]): V1Job {
    const metadata = this.metadata(name, jobKey);
    return {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata,
      spec: {
        backoffLimit: 0,
        template: {
          metadata: { labels: metadata.labels, annotations: metadata.annotations },
          spec: {
            restartPolicy: 'Never',
            ...this.podSpec([this.container(TRAINER_CONTAINER, this.config.gpus, argv)]),
          },
        },
      },
    };
  }

  /**
   * The KubeRay RayJob: a RayCluster of a head and one GPU worker group, both with the image, volumes and node selector,
   * torn down when the job ends; the entrypoint (the command) runs on the head, submitted by KubeRay's submitter Job.
   */
  private rayJobManifest(name: string, jobKey: string, argv: string[]): Record<string, unknown> {
    const { runtimeEnv, gpus } = this.config;
    const head = {
      ...this.container(RAY_HEAD_CONTAINER, 0),
      ports: [
        { containerPort: 6379, name: 'gcs-server' },
        { containerPort: 8265, name: 'dashboard' },
        { containerPort: 10001, name: 'client' },
      ],
    };
    return {
      apiVersion: `${KUBERAY.group}/${KUBERAY.version}`,
      kind: 'RayJob',
      metadata: this.metadata(name, jobKey),
      spec: {
        entrypoint: rayEntrypoint(argv),
        ...(Object.keys(runtimeEnv).length > 0 ? { runtimeEnvYAML: toYaml(runtimeEnv) } : {}),
        submissionMode: 'K8sJobMode',
        backoffLimit: 0,
        shutdownAfterJobFinishes: true,
        rayClusterSpec: {
          headGroupSpec: { rayStartParams: {}, template: { spec: this.podSpec([head]) } },
          workerGroupSpecs: [
            {
              groupName: 'gpu',
              replicas: 1,
              minReplicas: 1,
              maxReplicas: 1,
              rayStartParams: {},
              template: { spec: this.podSpec([this.container('ray-worker', gpus)]) },
            },
          ],
        },
      },
    };
  }

  async submit(spec: TrainingJobSpec): Promise<TrainingJobState> {
    const kind = this.config.kind;
    const name = kubernetesJobName(spec.jobKey, kind);
    const dir = this.jobDir(spec.jobKey);
    const specFile = path.join(dir, TRAINING_SPEC_FILE);
    this.requireShared(spec.outputDir, 'the output folder');
    this.requireShared(spec.dataset.path, 'the exported dataset');
    if (spec.init) this.requireShared(spec.init.path, 'the checkpoint it starts from');
    mkdirSync(dir, { recursive: true });
    mkdirSync(spec.outputDir, { recursive: true });
    writeFileSync(specFile, `${JSON.stringify(spec, null, 2)}\n`);
    const argv = this.config.command.map((arg) =>
      arg
        .replaceAll('{spec}', specFile)
        .replaceAll('{dataset}', spec.dataset.path)
        .replaceAll('{output}', spec.outputDir)
        .replaceAll('{job}', spec.jobKey),
    );
    let created: V1Job | RayJobObject;
    try {
      created =
        kind === 'job'
          ? await this.batch.createNamespacedJob({
              namespace: this.namespace,
              body: this.jobManifest(name, spec.jobKey, argv),
            })
          : ((await this.custom.createNamespacedCustomObject({
              ...KUBERAY,
              namespace: this.namespace,
              body: this.rayJobManifest(name, spec.jobKey, argv),
            })) as RayJobObject);
      // A fresh object: a cancellation recorded for an earlier job of this key no longer applies.
      rmSync(path.join(dir, CANCELLED_FILE), { force: true });
    } catch (err) {
      if (!(err instanceof ApiException && err.code === 409)) throw this.apiError(err, `create ${kind} ${name}`);
      // AlreadyExists: a retry, or a worker that died after creating it. Re-attach, if it is this key's job.
      const existing = await this.read(name);
      if (existing.jobKey !== spec.jobKey) {
        throw ApplicationFailure.nonRetryable(
          `a ${kind} named ${name} already exists in namespace ${this.namespace} for ` +
            `${existing.jobKey ? `job key ${existing.jobKey}` : 'something other than looptool'}, not ${spec.jobKey}: ` +
            'delete it, or train in another namespace',
          ErrorType.TrainerRequestRejected,
        );
      }
      return this.state(name, spec.jobKey, existing);
    }
    return this.state(name, spec.jobKey, this.observe(created));
  }

  private observe(object: V1Job | RayJobObject): ObservedJob {
    const metadata = object.metadata;
    const seen = this.config.kind === 'job' ? observeJob(object as V1Job) : observeRayJob(object as RayJobObject);
    return { ...seen, jobKey: metadata?.annotations?.[JOB_KEY], deleting: Boolean(metadata?.deletionTimestamp) };
  }

  /** The object by name, observed; a NotFound passes through as the client's error. */
  private async read(name: string): Promise<ObservedJob> {
    const object =
      this.config.kind === 'job'
        ? await this.call(`read Job ${name}`, () => this.batch.readNamespacedJob({ name, namespace: this.namespace }))
        : ((await this.call(`read RayJob ${name}`, () =>
            this.custom.getNamespacedCustomObject({ ...KUBERAY, namespace: this.namespace, name }),
          )) as RayJobObject);
    return this.observe(object);
  }

  /** The activity's view of an observed object: progress from the shared folder, the manifest once it succeeded. */
  private state(name: string, jobKey: string, observed: ObservedJob): TrainingJobState {
    const dir = this.jobDir(jobKey);
    let spec: TrainingJobSpec;
    try {
      spec = JSON.parse(readFileSync(path.join(dir, TRAINING_SPEC_FILE), 'utf8')) as TrainingJobSpec;
    } catch (err) {
      throw ApplicationFailure.nonRetryable(
        `${this.config.kind} ${name} is running but the worker cannot read its job spec (${(err as Error).message}): ` +
          'is training.workDir the same shared folder on every worker?',
        ErrorType.ConfigInvalid,
      );
    }
    const base = { externalId: name, ...readProgress(spec.outputDir) };
    // Being deleted (by our cancel, or with kubectl) before it ended: it will not finish.
    if (observed.deleting && !TERMINAL_STATUSES.has(observed.status)) return { ...base, status: 'cancelled' };
    if (observed.status === 'succeeded') {
      const manifest = readManifest(spec.outputDir);
      if (!manifest.ok) return { ...base, status: 'failed', error: manifest.error };
      return { ...base, status: 'succeeded', checkpoint: manifest.manifest, metrics: manifest.manifest.metrics };
    }
    return { ...base, status: observed.status, ...(observed.error ? { error: observed.error } : {}) };
  }

  async status(name: string): Promise<TrainingJobState> {
    let observed: ObservedJob;
    try {
      observed = await this.read(name);
    } catch (err) {
      if (!(err instanceof HttpStatusError && err.status === 404)) throw err;
      // Gone: a Job deleted in the background leaves nothing behind, so the cancellation is read from its folder.
      const jobKey = this.jobKeyOfName(name);
      if (jobKey && existsSync(path.join(this.jobDir(jobKey), CANCELLED_FILE))) {
        return this.state(name, jobKey, { status: 'cancelled', deleting: false });
      }
      return {
        externalId: name,
        status: 'failed',
        step: 0,
        totalSteps: 0,
        error: `the ${this.config.kind} ${name} no longer exists in namespace ${this.namespace} (deleted outside looptool?)`,
      };
    }
    if (!observed.jobKey) {
      throw ApplicationFailure.nonRetryable(
        `${this.config.kind} ${name} in namespace ${this.namespace} has no ${JOB_KEY} annotation: not a looptool job`,
        ErrorType.TrainerRequestRejected,
      );
    }
    return this.state(name, observed.jobKey, observed);
  }

  /** Records the cancellation, then deletes the object; its pods (or RayCluster) go with it. */
  async cancel(name: string): Promise<void> {
    const jobKey = this.jobKeyOfName(name);
    if (jobKey) {
      writeFileSync(
        path.join(this.jobDir(jobKey), CANCELLED_FILE),
        JSON.stringify({ cancelledAt: new Date().toISOString() }),
      );
    }
    try {
      if (this.config.kind === 'job') {
        await this.batch.deleteNamespacedJob({ name, namespace: this.namespace, propagationPolicy: 'Background' });
      } else {
        await this.custom.deleteNamespacedCustomObject({
          ...KUBERAY,
          namespace: this.namespace,
          name,
          propagationPolicy: 'Background',
        });
      }
    } catch (err) {
      // Already gone: cancelled before, or never created.
      if (err instanceof ApiException && err.code === 404) return;
      throw this.apiError(err, `delete ${this.config.kind} ${name}`);
    }
  }

  /**
   * The last lines of the job's log: its pod's (the Job's, or the RayJob's submitter, which follows the Ray job's
   * logs), else the Ray head's. A pod that has not started yet says why (unschedulable, pulling its image) instead.
   */
  async logs(name: string): Promise<string> {
    let pod = await this.newestPod(`job-name=${name}`);
    let container: string | undefined = this.config.kind === 'job' ? TRAINER_CONTAINER : undefined;
    if (!pod && this.config.kind === 'rayjob') {
      const rayJob = (await this.call(`read RayJob ${name}`, () =>
        this.custom.getNamespacedCustomObject({ ...KUBERAY, namespace: this.namespace, name }),
      )) as RayJobObject;
      const cluster = rayJob.status?.rayClusterName;
      if (cluster) pod = await this.newestPod(`ray.io/cluster=${cluster},ray.io/node-type=head`);
      container = RAY_HEAD_CONTAINER;
    }
    if (!pod?.metadata?.name) return '';
    const podName = pod.metadata.name;
    if (pod.status?.phase === 'Pending') return describePending(pod);
    return this.call(`log of pod ${podName}`, () =>
      this.core.readNamespacedPodLog({
        name: podName,
        namespace: this.namespace,
        ...(container ? { container } : {}),
        tailLines: LOG_TAIL_LINES,
      }),
    );
  }

  private async newestPod(labelSelector: string): Promise<V1Pod | undefined> {
    const pods = await this.call(`list pods ${labelSelector}`, () =>
      this.core.listNamespacedPod({ namespace: this.namespace, labelSelector }),
    );
    const created = (pod: V1Pod) => pod.metadata?.creationTimestamp?.getTime() ?? 0;
    return [...pods.items].sort((a, b) => created(b) - created(a))[0];
  }
}

/** Why a pod has not started: not scheduled (no node has the GPUs), or a container waiting (image pull). */
function describePending(pod: V1Pod): string {
  const unscheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False');
  const waiting = pod.status?.containerStatuses?.find((c) => c.state?.waiting)?.state?.waiting;
  const why = unscheduled
    ? `${unscheduled.reason ?? 'Unschedulable'}: ${unscheduled.message ?? ''}`
    : waiting
      ? `${waiting.reason ?? 'Waiting'}${waiting.message ? `: ${waiting.message}` : ''}`
      : 'waiting to start';
  return `pod ${pod.metadata?.name} is Pending: ${why}`.trim();
}
