import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { workflowIds } from '../../core/constants.js';
import type { loopWorkflow } from '../../workflows/loop.js';
import { connectTestTemporal, quietTemporalLogs, type TestTemporal } from '../helpers/temporal.js';
import {
  Gates,
  loopInput,
  stubActivities,
  stubLoopConfig,
  uniqueLoopName,
  withStubWorker,
} from '../helpers/workflow-stubs.js';

/**
 * The loop hands EDDE the `expand` section of its config: the generator's sampling and both prompt versions reach
 * every expand batch (workflows/loop.ts `expand()`), on the suite's dev server with stub activities.
 */

let temporal: TestTemporal;

beforeAll(async () => {
  quietTemporalLogs();
  temporal = await connectTestTemporal();
});
afterAll(async () => temporal?.close());

describe('the loop and the expand config', () => {
  test("every expand batch gets the config's sampling and prompt versions; unset ones are the defaults", async () => {
    const stubs = stubActivities();
    const gates = new Gates();
    await withStubWorker(temporal, stubs, gates, async ({ taskQueue, track }) => {
      const run = async (expand: Record<string, unknown>) => {
        const loopName = uniqueLoopName('expand-cfg');
        // Two iterations: the first builds D_2, so it expands.
        const config = stubLoopConfig({ iterations: 2, expand });
        const handle = await temporal.client.workflow.start<typeof loopWorkflow>('loopWorkflow', {
          taskQueue,
          workflowId: track(workflowIds.loop(loopName)),
          args: [loopInput(loopName, config, taskQueue)],
        });
        await handle.result();
        return stubs.inputsOf('expandBatch').filter((input) => input.loopName === loopName);
      };

      const custom = await run({
        temperature: 0.6,
        topP: 0.8,
        topK: 5,
        presencePenalty: 0.4,
        maxTokens: 1024,
        generatorPromptVersion: 'generator.v1',
        validatorPromptVersion: 'validator.v1',
      });
      expect(custom.length).toBeGreaterThan(0);
      for (const input of custom)
        expect(input).toMatchObject({
          temperature: 0.6,
          topP: 0.8,
          topK: 5,
          presencePenalty: 0.4,
          maxTokens: 1024,
          generatorPromptVersion: 'generator.v1',
          validatorPromptVersion: 'validator.v1',
        });

      const defaults = await run({});
      expect(defaults.length).toBeGreaterThan(0);
      for (const input of defaults)
        expect(input).toMatchObject({
          temperature: 1,
          topP: 0.9,
          topK: 20,
          presencePenalty: 1.2,
          maxTokens: 8192,
          generatorPromptVersion: 'generator.v2',
          validatorPromptVersion: 'validator.v1',
        });
    });
  });
});
