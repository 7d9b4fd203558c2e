import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { shellWord } from '../../core/shell.js';
import type { RayTraining } from '../../core/config.js';
import { TRAINING_SPEC_FILE } from '../../core/training.js';
import { HttpStatusError } from '../failures.js';
import type { TrainingBackend, TrainingJobSpec, TrainingJobState, TrainingJobStatus } from './backend.js';
import { jobFolder, readManifest, readProgress } from './job-files.js';

/** Ray's job statuses (`ray.job_submission.JobStatus`) in our vocabulary. */
const STATUSES: Readonly<Record<string, TrainingJobStatus>> = {
  PENDING: 'queued',
  RUNNING: 'running',
  SUCCEEDED: 'succeeded',
  FAILED: 'failed',
  STOPPED: 'cancelled',
};

/** The metadata keys a submission carries, so any worker finds the job's output folder from Ray's answer alone. */
const METADATA = { jobKey: 'looptool_job_key', spec: 'looptool_spec', outputDir: 'looptool_output_dir' } as const;

/** Lines `logs()` returns. */
const LOG_TAIL_LINES = 200;
/**
 * How long one API call may go unanswered before it counts as a connection failure (retryable): a head that accepts
 * connections but never answers must not hold the activity's poll, and with it its heartbeat, forever.
 * @unit milliseconds
 */
const REQUEST_TIMEOUT_MS = 60_000;

/** What `GET /api/jobs/<id>` answers (the fields used here). */
interface RayJobInfo {
  submission_id: string;
  status: string;
  message?: string | null;
  metadata?: Record<string, string> | null;
  driver_exit_code?: number | null;
}

/**
 * The Ray submission id of a job key: `looptool-<key>`. Ray takes any string, but the id becomes a URL path segment,
 * a log file name (`job-driver-<id>.log`) and an actor name, so a key with characters outside `[A-Za-z0-9._-]`, or
 * longer than 100 characters, has them replaced by `_` (and is cut) and gets the first 12 hex digits of its SHA-256
 * appended, which keeps two keys that differ only there apart. Today's keys (`<loop>-iter-<j>`, loop names being
 * lowercase letters, digits, `.`, `_` and `-`) map to `looptool-<loop>-iter-<j>` unchanged.
 */
export function raySubmissionId(jobKey: string): string {
  const safe = jobKey.replace(/[^A-Za-z0-9._-]/g, '_');
  if (safe === jobKey && safe.length <= 100) return `looptool-${safe}`;
  return `looptool-${safe.slice(0, 100)}-${createHash('sha256').update(jobKey).digest('hex').slice(0, 12)}`;
}

/**
 * Ray's token for the Jobs API, found as Ray's own clients find it: `RAY_AUTH_TOKEN`, else the file
 * `RAY_AUTH_TOKEN_PATH` names, else `~/.ray/auth_token`. Undefined when there is none (a cluster without token
 * authentication). Read when a backend is made, so a token rotated on disk applies to the next activity.
 */
export function rayAuthToken(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const fromEnv = env.RAY_AUTH_TOKEN?.trim();
  if (fromEnv) return fromEnv;
  const file = env.RAY_AUTH_TOKEN_PATH?.trim() || path.join(os.homedir(), '.ray', 'auth_token');
  try {
    return readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Training on a Ray cluster through the dashboard's Jobs REST API: each job is one submission whose entrypoint is the
 * configured command (argv shell-quoted into the one string Ray runs with `sh -c`; `{spec}`, `{dataset}`, `{output}`
 * and `{job}` substituted), with the config's `runtime_env` plus `LOOPTOOL_TRAINING_SPEC` and
 * `LOOPTOOL_TRAINING_JOB_KEY` in its `env_vars`. The job folder (`spec.json`) is `workDir/jobs/<key>`; `workDir` and
 * the artifacts folder must be on a filesystem the Ray nodes share with the worker, because progress
 * (`<outputDir>/progress.json`) and the manifest (`<outputDir>/checkpoint.json`) are read from there.
 *
 * Requests go through `node:http`, not `fetch`: Ray's dashboard refuses POSTs that look like a browser's, and
 * `fetch` always sends a `Sec-Fetch-Mode` header, which is one of its signs. Every failure to reach the API
 * (connection refused, 5xx) surfaces as the error the activity's classifier retries; only Ray's answer about the job
 * itself decides its status.
 */
export class RayTrainingBackend implements TrainingBackend {
  readonly name = 'ray';

  constructor(
    private readonly config: Pick<
      RayTraining,
      'address' | 'command' | 'workDir' | 'runtimeEnv' | 'entrypointCpus' | 'entrypointGpus'
    >,
    private readonly options: { authToken?: string | undefined } = {},
  ) {}

  get location(): string {
    return this.config.address;
  }

  private jobDir(jobKey: string): string {
    return jobFolder(this.config.workDir, jobKey);
  }

  /** One request to the Jobs API; a non-2xx answer throws HttpStatusError with Ray's text (a traceback for 500s). */
  private call(method: 'GET' | 'POST', route: string, body?: unknown, signal?: AbortSignal): Promise<unknown> {
    const url = new URL(route, this.config.address.endsWith('/') ? this.config.address : `${this.config.address}/`);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (payload !== undefined) headers['content-type'] = 'application/json';
    if (this.options.authToken) headers.authorization = `Bearer ${this.options.authToken}`;
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send(url, { method, headers, ...(signal ? { signal } : {}) }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          if (status < 200 || status >= 300) {
            const hint =
              status === 401 || status === 403
                ? ' (set the worker’s RAY_AUTH_TOKEN, or RAY_AUTH_TOKEN_PATH, to the cluster’s token)'
                : '';
            reject(
              new HttpStatusError(
                status,
                `Ray ${method} ${url.pathname}: ${text.slice(-600)}${hint}`,
                toHeaders(res.headers),
              ),
            );
            return;
          }
          try {
            resolve(text ? JSON.parse(text) : {});
          } catch {
            // A body that is not JSON is a proxy's error page or a cut-off answer, not Ray's: retryable, as a 502.
            reject(new HttpStatusError(502, `Ray ${method} ${url.pathname}: body is not JSON: ${text.slice(0, 200)}`));
          }
        });
      });
      req.setTimeout(REQUEST_TIMEOUT_MS, () =>
        req.destroy(
          Object.assign(new Error(`Ray ${method} ${url.pathname}: no answer in ${REQUEST_TIMEOUT_MS / 1000} s`), {
            code: 'ETIMEDOUT',
          }),
        ),
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** The job as Ray knows it, or undefined when Ray has no job with this id. */
  private async info(submissionId: string, signal?: AbortSignal): Promise<RayJobInfo | undefined> {
    try {
      return (await this.call('GET', `api/jobs/${encodeURIComponent(submissionId)}`, undefined, signal)) as RayJobInfo;
    } catch (err) {
      if (err instanceof HttpStatusError && err.status === 404) return undefined;
      throw err;
    }
  }

  /**
   * Submits the job; when Ray has one with this submission id already (a retried activity, a second worker), it
   * re-attaches and reports that job. Ray answers a duplicate `submission_id` with an error (HTTP 500 whose text says
   * "already exists"), which is what tells the two apart: no lookup first, so two racing submits cannot both start one.
   */
  async submit(spec: TrainingJobSpec, signal?: AbortSignal): Promise<TrainingJobState> {
    const submissionId = raySubmissionId(spec.jobKey);
    const dir = this.jobDir(spec.jobKey);
    const specFile = path.join(dir, TRAINING_SPEC_FILE);
    mkdirSync(dir, { recursive: true });
    mkdirSync(spec.outputDir, { recursive: true });
    // Atomically: on a re-attach the running job may be reading the file this (identical) write replaces.
    const temp = `${specFile}.${process.pid}.tmp`;
    writeFileSync(temp, `${JSON.stringify(spec, null, 2)}\n`);
    renameSync(temp, specFile);
    const substitute = (arg: string) =>
      arg
        .replaceAll('{spec}', specFile)
        .replaceAll('{dataset}', spec.dataset.path)
        .replaceAll('{output}', spec.outputDir)
        .replaceAll('{job}', spec.jobKey);
    const runtimeEnv = this.config.runtimeEnv;
    const body = {
      entrypoint: this.config.command.map((arg) => shellWord(substitute(arg))).join(' '),
      submission_id: submissionId,
      runtime_env: {
        ...runtimeEnv,
        env_vars: { ...runtimeEnv.env_vars, LOOPTOOL_TRAINING_SPEC: specFile, LOOPTOOL_TRAINING_JOB_KEY: spec.jobKey },
      },
      metadata: { [METADATA.jobKey]: spec.jobKey, [METADATA.spec]: specFile, [METADATA.outputDir]: spec.outputDir },
      ...(this.config.entrypointCpus !== undefined ? { entrypoint_num_cpus: this.config.entrypointCpus } : {}),
      ...(this.config.entrypointGpus !== undefined ? { entrypoint_num_gpus: this.config.entrypointGpus } : {}),
    };
    try {
      await this.call('POST', 'api/jobs/', body, signal);
    } catch (err) {
      if (!(err instanceof HttpStatusError && /already exists/.test(err.message))) throw err;
    }
    const submitted = await this.info(submissionId, signal);
    // Ray stores the job before it answers the POST; should a lookup still miss it, it is queued, not lost.
    return submitted ? this.toState(submitted) : { externalId: submissionId, status: 'queued', step: 0, totalSteps: 0 };
  }

  async status(submissionId: string, signal?: AbortSignal): Promise<TrainingJobState> {
    const info = await this.info(submissionId, signal);
    if (!info)
      return {
        externalId: submissionId,
        status: 'failed',
        step: 0,
        totalSteps: 0,
        error: `Ray at ${this.config.address} has no job ${submissionId} (was the cluster restarted without its job history?)`,
      };
    return this.toState(info);
  }

  private toState(info: RayJobInfo): TrainingJobState {
    const externalId = info.submission_id;
    const outputDir = info.metadata?.[METADATA.outputDir];
    const base = { externalId, ...(outputDir ? readProgress(outputDir) : { step: 0, totalSteps: 0 }) };
    const status = STATUSES[info.status];
    if (!status) return { ...base, status: 'failed', error: `Ray reports job ${externalId} as ${info.status}` };
    // Ray's message and exit code; the training activity adds the job's last log lines (`logs`) to what it reports.
    if (status === 'failed') {
      const exit = info.driver_exit_code != null ? ` (exit code ${info.driver_exit_code})` : '';
      return { ...base, status, error: `${info.message ?? 'the job failed'}${exit}` };
    }
    if (status !== 'succeeded') return { ...base, status };
    if (!outputDir)
      return { ...base, status: 'failed', error: `Ray job ${externalId} has no ${METADATA.outputDir} in its metadata` };
    const manifest = readManifest(outputDir);
    if (!manifest.ok) return { ...base, status: 'failed', error: manifest.error };
    return { ...base, status, checkpoint: manifest.manifest, metrics: manifest.manifest.metrics };
  }

  /** Asks Ray to stop the job (SIGTERM, then SIGKILL after Ray's grace period); a job Ray does not know is left. */
  async cancel(submissionId: string): Promise<void> {
    try {
      await this.call('POST', `api/jobs/${encodeURIComponent(submissionId)}/stop`);
    } catch (err) {
      if (err instanceof HttpStatusError && err.status === 404) return;
      throw err;
    }
  }

  /** The last lines of the job's log (the entrypoint's stdout and stderr, and Ray's own lines about the job). */
  async logs(submissionId: string): Promise<string> {
    const body = (await this.call('GET', `api/jobs/${encodeURIComponent(submissionId)}/logs`)) as { logs?: string };
    return (body.logs ?? '').trimEnd().split('\n').slice(-LOG_TAIL_LINES).join('\n');
  }
}

function toHeaders(raw: IncomingHttpHeaders): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(raw)) {
    if (typeof value === 'string') headers.set(name, value);
    else if (Array.isArray(value)) for (const item of value) headers.append(name, item);
  }
  return headers;
}
