import type { ActivityDeps } from './deps.js';
import { toDatabaseFailure } from './failures.js';
import { keepHeartbeating } from './heartbeat.js';
import { createDatasetActivities } from './dataset.js';
import { createDecontamActivities } from './decontam.js';
import { createDeployActivities } from './deploy.js';
import { createEvaluateActivities } from './evaluate.js';
import { createHeldOutActivities } from './held-out.js';
import { createExpandActivities } from './expand.js';
import { createJudgeActivities } from './judge.js';
import { createLoopActivities } from './loops.js';
import { createProbeActivities } from './probe.js';
import { createTrainActivities } from './train.js';

/** Where the pool connects, as errors may name it: host and port, never the user or password. */
function databaseAddress(deps: ActivityDeps): string {
  const options = deps.pool.options as { host?: string; port?: number; connectionString?: string };
  if (options.connectionString) {
    try {
      const url = new URL(options.connectionString);
      return `${url.hostname || 'localhost'}:${url.port || 5432}`;
    } catch {
      return 'the configured server';
    }
  }
  return `${options.host ?? 'localhost'}:${options.port ?? 5432}`;
}

/**
 * Every activity's database outages reported as such: typed retryable failures that name the server, so the loop
 * shows "waiting for PostgreSQL at …" instead of a bare `ECONNREFUSED` (see toDatabaseFailure).
 */
function namingDatabaseOutages<T extends Record<string, (...args: never[]) => Promise<unknown>>>(
  activities: T,
  address: string,
): T {
  return Object.fromEntries(
    Object.entries(activities).map(([name, fn]) => [
      name,
      async (...args: never[]) => {
        try {
          return await fn(...args);
        } catch (err) {
          throw toDatabaseFailure(err, address);
        }
      },
    ]),
  ) as T;
}

/**
 * The database activities (the workflows' `db` group), which do not heartbeat on their own: they heartbeat every second
 * while they run, so a worker killed during one is noticed within the group's heartbeat timeout, not its 10-minute
 * start-to-close timeout.
 */
const DATABASE_ACTIVITIES = new Set([
  'registerLoop',
  'createInitialVersion',
  'assembleNextVersion',
  'planStageBatches',
  'summarizeEvaluation',
]);

function heartbeatingDatabaseWork<T extends Record<string, (...args: never[]) => Promise<unknown>>>(activities: T): T {
  return Object.fromEntries(
    Object.entries(activities).map(([name, fn]) => [
      name,
      DATABASE_ACTIVITIES.has(name)
        ? (...args: never[]) =>
            keepHeartbeating(
              () => undefined,
              () => fn(...args),
            )
        : fn,
    ]),
  ) as T;
}

/** All activities, bound to their dependencies. Workflows import only `ReturnType<typeof createActivities>`. */
export function createActivities(deps: ActivityDeps) {
  return namingDatabaseOutages(heartbeatingDatabaseWork(bindActivities(deps)), databaseAddress(deps));
}

function bindActivities(deps: ActivityDeps) {
  return {
    ...createLoopActivities(deps),
    ...createDatasetActivities(deps),
    ...createDecontamActivities(deps),
    ...createProbeActivities(deps),
    ...createJudgeActivities(deps),
    ...createExpandActivities(deps),
    ...createEvaluateActivities(deps),
    ...createHeldOutActivities(deps),
    ...createTrainActivities(deps),
    ...createDeployActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
export { type ActivityDeps, createActivityDeps } from './deps.js';
