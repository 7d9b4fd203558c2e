import type { ActivityDeps } from './deps.js';
import { createLoopActivities } from './loops.js';

/** All activities, bound to their dependencies. Workflows import only `ReturnType<typeof createActivities>`. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createLoopActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
export type { ActivityDeps } from './deps.js';
