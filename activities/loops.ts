import { parseInput, RegisterLoopInput } from '../core/inputs.js';
import { registerLoop } from '../db/queries/loops.js';
import type { ActivityDeps } from './deps.js';

/** Database activities about the loop record itself. */
export function createLoopActivities(deps: ActivityDeps) {
  return {
    /**
     * Records the loop row (idempotent by loop name) with the config hash the client computed when it parsed the
     * config, so the row, the workflow's memo and every dataset version name one hash. Returns whether this call
     * created the row, and the hash the row holds.
     */
    async registerLoop(rawInput: RegisterLoopInput): Promise<{ created: boolean; configHash: string }> {
      const input = parseInput(RegisterLoopInput, rawInput, 'registerLoop');
      const { created, loop } = await registerLoop(deps.pool, {
        name: input.loopName,
        config: input.config,
        configHash: input.configHash,
        workflowId: input.workflowId,
      });
      return { created, configHash: loop.configHash };
    },
  };
}
