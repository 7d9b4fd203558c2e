import { createHash } from 'node:crypto';
import { registerLoop } from '../db/queries/loops.js';
import type { ActivityDeps } from './deps.js';

export interface RegisterLoopActivityInput {
  loopName: string;
  workflowId: string;
  config: Record<string, unknown>;
}

/** Database activities about the loop record itself. */
export function createLoopActivities(deps: ActivityDeps) {
  return {
    /** Records the loop row (idempotent by loop name); returns whether this call created it. */
    async registerLoop(input: RegisterLoopActivityInput): Promise<{ created: boolean; configHash: string }> {
      const configHash = createHash('sha256').update(JSON.stringify(input.config)).digest('hex');
      const { created, loop } = await registerLoop(deps.pool, {
        name: input.loopName,
        config: input.config,
        configHash,
        workflowId: input.workflowId,
      });
      return { created, configHash: loop.configHash };
    },
  };
}
