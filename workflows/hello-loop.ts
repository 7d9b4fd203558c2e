import { log, setCurrentDetails, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { SEARCH_ATTRIBUTES } from '../core/constants.js';
import { dbActivities } from './activity-proxies.js';

export interface HelloLoopInput {
  loopName: string;
  iterations: number;
}

export interface HelloLoopResult {
  loopName: string;
  iterationsRun: number;
  configHash: string;
  createdLoopRecord: boolean;
}

/**
 * The smallest end-to-end loop: registers the loop in PostgreSQL through an activity, then walks its iterations while
 * keeping the UI's search attributes and current details up to date. It proves the wiring (server, worker, bundle,
 * database, visibility) that the real `loopWorkflow` stands on.
 */
export async function helloLoopWorkflow(input: HelloLoopInput): Promise<HelloLoopResult> {
  const registered = await dbActivities.registerLoop({
    loopName: input.loopName,
    workflowId: workflowInfo().workflowId,
    config: { iterations: input.iterations },
  });
  for (let iteration = 1; iteration <= input.iterations; iteration++) {
    upsertSearchAttributes([
      { key: SEARCH_ATTRIBUTES.loopName, value: input.loopName },
      { key: SEARCH_ATTRIBUTES.loopIteration, value: iteration },
      { key: SEARCH_ATTRIBUTES.loopStage, value: 'hello' },
    ]);
    setCurrentDetails(`**${input.loopName}**: iteration ${iteration} of ${input.iterations}`);
    log.info('hello loop iteration', { iteration });
  }
  return {
    loopName: input.loopName,
    iterationsRun: input.iterations,
    configHash: registered.configHash,
    createdLoopRecord: registered.created,
  };
}
