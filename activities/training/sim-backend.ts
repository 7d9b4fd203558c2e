import { HttpStatusError } from '../failures.js';
import type { TrainingBackend, TrainingJobSpec, TrainingJobState } from './backend.js';

interface JobBody {
  id: string;
  job_key: string;
  status: TrainingJobState['status'];
  step?: number;
  total_steps?: number;
  checkpoint_uri?: string;
  base_model?: string;
  error?: string;
  metrics?: Record<string, number>;
}

/**
 * The sim trainer writes adapter-like checkpoints that the sim policy server hot-loads, so each is reported as a LoRA
 * manifest on top of the job's base model.
 */
const toState = (job: JobBody): TrainingJobState => ({
  externalId: job.id,
  status: job.status,
  step: job.step ?? 0,
  totalSteps: job.total_steps ?? 0,
  ...(job.checkpoint_uri && job.status === 'succeeded'
    ? {
        checkpoint: {
          kind: 'lora' as const,
          path: job.checkpoint_uri,
          baseModel: job.base_model ?? 'sim',
          steps: job.step ?? 0,
          metrics: job.metrics ?? {},
        },
      }
    : {}),
  ...(job.error ? { error: job.error } : {}),
  ...(job.metrics ? { metrics: job.metrics } : {}),
});

/**
 * The simulated trainer's job API (`sim/`), the stand-in for a GPU trainer at its real boundary: HTTP jobs that read
 * the exported dataset file and write a checkpoint folder.
 */
export class SimTrainingBackend implements TrainingBackend {
  readonly name = 'sim';

  constructor(
    private readonly baseUrl: string,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {}

  get location(): string {
    return this.baseUrl;
  }

  private async request(path: string, init: RequestInit = {}): Promise<unknown> {
    const response = await this.fetchImpl(`${this.baseUrl.replace(/\/$/, '')}${path}`, {
      ...init,
      headers: { 'content-type': 'application/json', ...(init.headers ?? {}) },
    });
    const text = await response.text();
    if (!response.ok)
      throw new HttpStatusError(
        response.status,
        `trainer ${init.method ?? 'GET'} ${path}: ${text.slice(0, 300)}`,
        response.headers,
      );
    try {
      return text ? JSON.parse(text) : {};
    } catch {
      // A body that is not JSON is a broken gateway or a crashed server, not an answer: retryable, as a 502.
      throw new HttpStatusError(502, `trainer ${path}: body is not JSON: ${text.slice(0, 200)}`);
    }
  }

  async submit(spec: TrainingJobSpec, signal?: AbortSignal): Promise<TrainingJobState> {
    const body = {
      job_key: spec.jobKey,
      dataset_path: spec.dataset.path,
      base_checkpoint: spec.init?.path ?? null,
      base_model: spec.baseModel,
      output_dir: spec.outputDir,
      epochs: spec.grpo.epochs,
      grpo: spec.grpo,
    };
    return toState(
      (await this.request('/trainer/v1/jobs', {
        method: 'POST',
        body: JSON.stringify(body),
        ...(signal ? { signal } : {}),
      })) as JobBody,
    );
  }

  async status(externalId: string, signal?: AbortSignal): Promise<TrainingJobState> {
    return toState(
      (await this.request(`/trainer/v1/jobs/${encodeURIComponent(externalId)}`, signal ? { signal } : {})) as JobBody,
    );
  }

  async cancel(externalId: string): Promise<void> {
    await this.request(`/trainer/v1/jobs/${encodeURIComponent(externalId)}/cancel`, { method: 'POST' });
  }

  async logs(externalId: string): Promise<string> {
    const body = (await this.request(`/trainer/v1/jobs/${encodeURIComponent(externalId)}/logs`)) as { lines?: unknown };
    return Array.isArray(body.lines) ? body.lines.map(String).join('\n') : JSON.stringify(body);
  }
}
