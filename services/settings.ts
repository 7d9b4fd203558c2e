import path from 'node:path';
import { z } from 'zod';
import { taskQueues, type TaskQueues } from '../core/constants.js';
import { DEFAULT_DATA_DIR } from './paths.js';

/** Where the embedded default listens unless told otherwise; side-by-side installations override these. */
export const LOCAL_DEFAULTS = {
  temporalPort: 7233,
  temporalUiPort: 8233,
  postgresPort: 54329,
  /** The database the embedded PostgreSQL creates for the app. */
  database: 'looptool',
  namespace: 'default',
} as const;

/** The embedded PostgreSQL's URL on `port` (its superuser is `postgres`, trust auth on 127.0.0.1 only). */
export function embeddedPostgresUrl(port: number, database: string = LOCAL_DEFAULTS.database): string {
  return `postgres://postgres@127.0.0.1:${port}/${database}`;
}

const port = z.coerce.number().int().min(1).max(65535);
const hostPort = z.string().regex(/^[^\s:]+:\d+$/, 'expected host:port');
const postgresUrl = z.url({ protocol: /^postgres(ql)?$/ });

/**
 * The settings every looptool process reads the same way (CLI, worker, demo, services, tests): where the local state
 * lives and where Temporal and PostgreSQL listen. A second installation on one machine sets these once in its
 * environment and every component follows, so it never talks to the first one's services.
 */
export const SharedEnvSchema = z.object({
  /** Local state: the dev server's SQLite file, the PostgreSQL cluster, logs, artifacts, reports. Default: `<root>/.data`. */
  LOOPTOOL_DATA_DIR: z.string().min(1).optional(),
  /** Port of the embedded Temporal dev server's frontend. @default 7233 */
  LOOPTOOL_TEMPORAL_PORT: port.default(LOCAL_DEFAULTS.temporalPort),
  /** Port of the embedded Temporal dev server's web UI. @default 8233 */
  LOOPTOOL_TEMPORAL_UI_PORT: port.default(LOCAL_DEFAULTS.temporalUiPort),
  /** Port of the embedded PostgreSQL. @default 54329 */
  LOOPTOOL_PG_PORT: port.default(LOCAL_DEFAULTS.postgresPort),
  /** An existing Temporal frontend, `host:port`: used as is, none is started. Default: the embedded dev server. */
  TEMPORAL_ADDRESS: hostPort.optional(),
  /** Temporal namespace. @default "default" */
  TEMPORAL_NAMESPACE: z.string().min(1).default(LOCAL_DEFAULTS.namespace),
  /** An existing PostgreSQL database for the app: used as is, none is started. Default: the embedded PostgreSQL. */
  DATABASE_URL: postgresUrl.optional(),
  /** Appended to every task queue name (`looptool-llm<suffix>`), to run separate worker sets on one namespace. */
  LOOPTOOL_TASK_QUEUE_SUFFIX: z
    .string()
    .regex(/^[A-Za-z0-9._-]*$/)
    .default(''),
});

/** The shared settings, resolved: defaults applied and the embedded addresses derived from the ports. */
export interface SharedSettings {
  dataDir: string;
  temporalPort: number;
  temporalUiPort: number;
  postgresPort: number;
  temporal: {
    address: string;
    namespace: string;
    /** True when `TEMPORAL_ADDRESS` names a server that looptool must use and never start. */
    external: boolean;
  };
  database: {
    url: string;
    /** True when `DATABASE_URL` names a database that looptool must use and never start. */
    external: boolean;
  };
  /** The suffix every task queue name carries (`LOOPTOOL_TASK_QUEUE_SUFFIX`), and the queues with it. */
  queueSuffix: string;
  queues: TaskQueues;
}

/** Thrown when the environment is invalid; lists every problem with the variable it concerns. */
export class ConfigError extends Error {
  constructor(
    readonly problems: string[],
    what = 'configuration',
  ) {
    super(`Invalid ${what}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Parses the variables `schema` names from `env`, once. Empty strings count as unset (as in t3-env's
 * `emptyStringAsUndefined`), and every problem is reported at once with its variable.
 */
export function parseEnv<S extends z.ZodObject>(schema: S, env: NodeJS.ProcessEnv, what: string): z.infer<S> {
  const relevant = Object.fromEntries(
    Object.keys(schema.shape)
      .map((key) => [key, env[key]?.trim()] as const)
      .filter(([, value]) => value !== undefined && value !== ''),
  );
  const parsed = schema.safeParse(relevant);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => `${issue.path.join('.') || '(env)'}: ${issue.message}`),
      what,
    );
  }
  return parsed.data;
}

/** Resolves parsed shared variables into settings. */
export function resolveSharedSettings(env: z.infer<typeof SharedEnvSchema>): SharedSettings {
  return {
    dataDir: path.resolve(env.LOOPTOOL_DATA_DIR ?? DEFAULT_DATA_DIR),
    temporalPort: env.LOOPTOOL_TEMPORAL_PORT,
    temporalUiPort: env.LOOPTOOL_TEMPORAL_UI_PORT,
    postgresPort: env.LOOPTOOL_PG_PORT,
    temporal: {
      address: env.TEMPORAL_ADDRESS ?? `127.0.0.1:${env.LOOPTOOL_TEMPORAL_PORT}`,
      namespace: env.TEMPORAL_NAMESPACE,
      external: env.TEMPORAL_ADDRESS !== undefined,
    },
    database: {
      url: env.DATABASE_URL ?? embeddedPostgresUrl(env.LOOPTOOL_PG_PORT),
      external: env.DATABASE_URL !== undefined,
    },
    queueSuffix: env.LOOPTOOL_TASK_QUEUE_SUFFIX,
    queues: taskQueues(env.LOOPTOOL_TASK_QUEUE_SUFFIX),
  };
}

/** The shared settings from the environment (the CLI, the demo, `services`, the benchmarks). */
export function loadSharedSettings(env: NodeJS.ProcessEnv = process.env): SharedSettings {
  return resolveSharedSettings(parseEnv(SharedEnvSchema, env, 'environment'));
}
