import type { ActivityDeps } from './deps.js';
import { createDatasetActivities } from './dataset.js';
import { createDeployActivities } from './deploy.js';
import { createEvaluateActivities } from './evaluate.js';
import { createExpandActivities } from './expand.js';
import { createJudgeActivities } from './judge.js';
import { createLoopActivities } from './loops.js';
import { createProbeActivities } from './probe.js';
import { createTrainActivities } from './train.js';

/** All activities, bound to their dependencies. Workflows import only `ReturnType<typeof createActivities>`. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createLoopActivities(deps),
    ...createDatasetActivities(deps),
    ...createProbeActivities(deps),
    ...createJudgeActivities(deps),
    ...createExpandActivities(deps),
    ...createEvaluateActivities(deps),
    ...createTrainActivities(deps),
    ...createDeployActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
export { type ActivityDeps, createActivityDeps } from './deps.js';
