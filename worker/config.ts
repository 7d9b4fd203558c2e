import { z } from 'zod';
import { EMBEDDED_DATABASE_URL } from '../db/embedded-server.js';

const csvUrls = z
  .string()
  .transform((value) => value.split(',').map((part) => part.trim()).filter(Boolean))
  .pipe(z.array(z.url({ protocol: /^https?$/ })));

const positiveInt = z.coerce.number().int().positive();

const booleanFlag = z.enum(['true', 'false', '1', '0']).transform((value) => value === 'true' || value === '1');

/**
 * Every environment variable the worker reads, with its default. This schema is the one list of them: the compose file
 * test checks `docker-compose.yml` against these names, and `.env.example` documents them.
 */
export const WorkerEnvSchema = z.object({
  /** Temporal frontend, `host:port`. Defaults to the embedded dev server's `127.0.0.1:7233`. */
  TEMPORAL_ADDRESS: z.string().regex(/^[^\s:]+:\d+$/, 'expected host:port').default('127.0.0.1:7233'),
  /** Temporal namespace. @default "default" */
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  /** PostgreSQL URL of the app database. Defaults to the embedded server that `looptool services up` starts. */
  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).default(EMBEDDED_DATABASE_URL),
  /** Which task queues this process serves, comma-separated. @default all three */
  LOOPTOOL_TASK_QUEUES: z
    .string()
    .transform((value) => value.split(',').map((part) => part.trim()).filter(Boolean))
    .pipe(z.array(z.enum(['control', 'llm', 'gpu'])).min(1))
    .default(['control', 'llm', 'gpu']),
  /** Appended to every task queue name (`looptool-llm<suffix>`), to run separate worker sets on one namespace. */
  LOOPTOOL_TASK_QUEUE_SUFFIX: z.string().regex(/^[A-Za-z0-9._-]*$/).default(''),
  /** OpenAI-compatible base URLs (vLLM `…/v1`) of the policy being trained, comma-separated, used round robin. */
  LOOPTOOL_POLICY_BASE_URLS: csvUrls.optional(),
  /** Base URLs of the judge model servers (JGLV), comma-separated. */
  LOOPTOOL_JUDGE_BASE_URLS: csvUrls.optional(),
  /** Base URLs of the generator model servers (EDDE), comma-separated. */
  LOOPTOOL_GENERATOR_BASE_URLS: csvUrls.optional(),
  /** API key sent to the model servers (vLLM `--api-key`); never logged or put into workflow history. */
  LOOPTOOL_LLM_API_KEY: z.string().optional(),
  /** Where exported training data and checkpoints go; must be readable by the trainer. Default: `.data/artifacts`. */
  LOOPTOOL_ARTIFACTS_DIR: z.string().min(1).optional(),
  /** In-flight model-calling activities on this worker. @default 16 */
  LOOPTOOL_LLM_CONCURRENCY: positiveInt.default(16),
  /** In-flight training/deploy activities on this worker: one per GPU pool. @default 1 */
  LOOPTOOL_GPU_CONCURRENCY: positiveInt.default(1),
  /** Run database migrations at worker start. @default true */
  LOOPTOOL_MIGRATE_ON_START: booleanFlag.default(true),
  /** How long in-flight activities get to finish (and flush heartbeats) on SIGTERM. @unit seconds @default 30 */
  LOOPTOOL_SHUTDOWN_GRACE_SECONDS: positiveInt.default(30),
});

export type WorkerConfig = z.infer<typeof WorkerEnvSchema>;

/** Thrown at start-up when the environment is invalid; lists every problem with the variable it concerns. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid worker configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Parses the worker's environment once. Empty strings count as unset, as in t3-env's `emptyStringAsUndefined`. */
export function loadWorkerConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const relevant = Object.fromEntries(
    Object.keys(WorkerEnvSchema.shape)
      .map((key) => [key, env[key]?.trim()] as const)
      .filter(([, value]) => value !== undefined && value !== ''),
  );
  const parsed = WorkerEnvSchema.safeParse(relevant);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((issue) => `${issue.path.join('.') || '(env)'}: ${issue.message}`));
  }
  return parsed.data;
}
