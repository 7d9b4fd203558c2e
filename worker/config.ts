import path from 'node:path';
import { z } from 'zod';
import { GPU_POOL_NAME_PATTERN } from '../core/constants.js';
import { ModelRole } from '../core/vocabulary.js';
import { parseEnv, resolveSharedSettings, SharedEnvSchema, type SharedSettings } from '../services/settings.js';

export { ConfigError } from '../services/settings.js';

const csvUrls = z
  .string()
  .transform((value) =>
    value
      .split(',')
      .map((part) => part.trim())
      .filter(Boolean),
  )
  .pipe(z.array(z.url({ protocol: /^https?$/ })).min(1));

const positiveInt = z.coerce.number().int().positive();

const booleanFlag = z.enum(['true', 'false', '1', '0']).transform((value) => value === 'true' || value === '1');

/**
 * Every environment variable the worker reads: the shared settings (where Temporal, PostgreSQL and the local state
 * are, read the same way by every looptool process) plus the worker's own. This schema is the one list of them: the
 * compose file test checks `docker-compose.yml` against these names, and `.env.example` documents them.
 */
export const WorkerEnvSchema = SharedEnvSchema.extend({
  /** Which task queues this process serves, comma-separated. @default all three */
  LOOPTOOL_TASK_QUEUES: z
    .string()
    .transform((value) =>
      value
        .split(',')
        .map((part) => part.trim())
        .filter(Boolean),
    )
    .pipe(z.array(z.enum(['control', 'llm', 'gpu'])).min(1))
    .default(['control', 'llm', 'gpu']),
  /**
   * OpenAI-compatible base URLs (vLLM `…/v1`) per model role, comma-separated, used round robin by every loop whose
   * config names no `baseUrls` for that role: the servers are a fact of the deployment, the loop config stays portable.
   */
  LOOPTOOL_POLICY_BASE_URLS: csvUrls.optional(),
  LOOPTOOL_JUDGE_BASE_URLS: csvUrls.optional(),
  LOOPTOOL_GENERATOR_BASE_URLS: csvUrls.optional(),
  /**
   * API key sent as the bearer token to every model server (vLLM `--api-key`) of a role that has no key of its own;
   * never logged or put into workflow history.
   */
  LOOPTOOL_LLM_API_KEY: z.string().optional(),
  /** The policy servers' key (chat, models, LoRA routes, health, restarts). @default LOOPTOOL_LLM_API_KEY */
  LOOPTOOL_POLICY_API_KEY: z.string().optional(),
  /** The judge servers' key (judge votes and expansion validation). @default LOOPTOOL_LLM_API_KEY */
  LOOPTOOL_JUDGE_API_KEY: z.string().optional(),
  /** The generator servers' key. @default LOOPTOOL_LLM_API_KEY */
  LOOPTOOL_GENERATOR_API_KEY: z.string().optional(),
  /** Where exported training data and checkpoints go; must be readable by the trainer. Default: `<data dir>/artifacts`. */
  LOOPTOOL_ARTIFACTS_DIR: z.string().min(1).optional(),
  /** A `looptool reward serve` every trainer can reach; unset: each training job's launcher starts its own. */
  LOOPTOOL_REWARD_URL: z.url({ protocol: /^https?$/ }).optional(),
  /** In-flight model-calling activities on this worker. @default 16 */
  LOOPTOOL_LLM_CONCURRENCY: positiveInt.default(16),
  /** In-flight training/deploy activities on this worker: one per GPU pool. @default 1 */
  LOOPTOOL_GPU_CONCURRENCY: positiveInt.default(1),
  /**
   * Named GPU pools this worker trains on, `name:concurrency` comma-separated (`a100:1,h100:2`): each gets its own task
   * queue, where at most `concurrency` training jobs of all the loops naming the pool (`training.pool`) run at once.
   * Run one worker per pool, or the concurrencies add up. Needs the gpu queue in LOOPTOOL_TASK_QUEUES.
   */
  LOOPTOOL_GPU_POOLS: z
    .string()
    .transform((value, ctx) => {
      const pools: { name: string; concurrency: number }[] = [];
      for (const entry of value
        .split(',')
        .map((part) => part.trim())
        .filter(Boolean)) {
        const match = /^([^:]+):(\d+)$/.exec(entry);
        const name = match?.[1] ?? '';
        const concurrency = Number(match?.[2]);
        if (!match || !GPU_POOL_NAME_PATTERN.test(name) || !(concurrency > 0)) {
          ctx.addIssue({ code: 'custom', message: `"${entry}" is not name:concurrency (e.g. a100:1)` });
          return z.NEVER;
        }
        if (pools.some((pool) => pool.name === name)) {
          ctx.addIssue({ code: 'custom', message: `pool ${name} is named twice` });
          return z.NEVER;
        }
        pools.push({ name, concurrency });
      }
      return pools;
    })
    .default([]),
  /** Run database migrations at worker start. @default true */
  LOOPTOOL_MIGRATE_ON_START: booleanFlag.default(true),
  /** How long in-flight activities get to finish (and flush heartbeats) on SIGTERM. @unit seconds @default 30 */
  LOOPTOOL_SHUTDOWN_GRACE_SECONDS: positiveInt.default(30),
});

/** The worker's configuration, resolved from its environment. */
export interface WorkerConfig extends SharedSettings {
  /** The queues (by role) this process serves. */
  serve: ('control' | 'llm' | 'gpu')[];
  /** Model servers per role for loops whose config names none. */
  defaultBaseUrls: Partial<Record<ModelRole, string[]>>;
  /** The API key per model role: the role's own variable, else LOOPTOOL_LLM_API_KEY; a role without one sends none. */
  apiKeys: Partial<Record<ModelRole, string>>;
  artifactsDir: string;
  rewardUrl?: string;
  llmConcurrency: number;
  gpuConcurrency: number;
  /** Named GPU pools, each its own task queue and concurrency. */
  gpuPools: { name: string; concurrency: number }[];
  migrateOnStart: boolean;
  shutdownGraceSeconds: number;
}

/** Parses the worker's environment once, at start-up; throws a ConfigError that lists every bad variable. */
export function loadWorkerConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const parsed = parseEnv(WorkerEnvSchema, env, 'worker configuration');
  const shared = resolveSharedSettings(parsed);
  return {
    ...shared,
    serve: parsed.LOOPTOOL_TASK_QUEUES,
    defaultBaseUrls: {
      ...(parsed.LOOPTOOL_POLICY_BASE_URLS ? { policy: parsed.LOOPTOOL_POLICY_BASE_URLS } : {}),
      ...(parsed.LOOPTOOL_JUDGE_BASE_URLS ? { judge: parsed.LOOPTOOL_JUDGE_BASE_URLS } : {}),
      ...(parsed.LOOPTOOL_GENERATOR_BASE_URLS ? { generator: parsed.LOOPTOOL_GENERATOR_BASE_URLS } : {}),
    },
    apiKeys: apiKeysOf(parsed),
    artifactsDir: path.resolve(parsed.LOOPTOOL_ARTIFACTS_DIR ?? path.join(shared.dataDir, 'artifacts')),
    ...(parsed.LOOPTOOL_REWARD_URL ? { rewardUrl: parsed.LOOPTOOL_REWARD_URL } : {}),
    llmConcurrency: parsed.LOOPTOOL_LLM_CONCURRENCY,
    gpuConcurrency: parsed.LOOPTOOL_GPU_CONCURRENCY,
    gpuPools: parsed.LOOPTOOL_GPU_POOLS,
    migrateOnStart: parsed.LOOPTOOL_MIGRATE_ON_START,
    shutdownGraceSeconds: parsed.LOOPTOOL_SHUTDOWN_GRACE_SECONDS,
  };
}

/** Each role's key falls back to the shared one, so a single key for every server stays a one-variable setting. */
function apiKeysOf(parsed: z.output<typeof WorkerEnvSchema>): Partial<Record<ModelRole, string>> {
  const own: Record<ModelRole, string | undefined> = {
    policy: parsed.LOOPTOOL_POLICY_API_KEY,
    judge: parsed.LOOPTOOL_JUDGE_API_KEY,
    generator: parsed.LOOPTOOL_GENERATOR_API_KEY,
  };
  return Object.fromEntries(
    ModelRole.options.flatMap((role) => {
      const key = own[role] ?? parsed.LOOPTOOL_LLM_API_KEY;
      return key ? [[role, key]] : [];
    }),
  );
}
