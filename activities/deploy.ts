import { ApplicationFailure, Context } from '@temporalio/activity';
import { ErrorType } from '../core/errors.js';
import type { ActivityDeps } from './deps.js';

export interface DeployCheckpointInput {
  loopName: string;
  iteration: number;
  checkpointUri: string;
  /** The policy servers' OpenAI base URLs (`…/v1`). */
  policyBaseUrls: string[];
}

/** The name each iteration's checkpoint is served under. */
export const servedModelName = (loopName: string, iteration: number) => `${loopName}-iter-${iteration}`;

/**
 * Makes π_j servable on every policy server through vLLM's runtime LoRA API (`/v1/load_lora_adapter`, enabled by
 * VLLM_ALLOW_RUNTIME_LORA_UPDATING), then waits until each lists it in `/v1/models`. Idempotent: an adapter that is
 * already loaded counts as deployed.
 */
export function createDeployActivities(_deps: ActivityDeps) {
  return {
    async deployCheckpoint(input: DeployCheckpointInput): Promise<{ model: string }> {
      const context = Context.current();
      const model = servedModelName(input.loopName, input.iteration);
      for (const baseUrl of input.policyBaseUrls) {
        const root = baseUrl.replace(/\/$/, '');
        const response = await fetch(`${root}/load_lora_adapter`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ lora_name: model, lora_path: input.checkpointUri }),
          signal: context.cancellationSignal,
        });
        const text = await response.text();
        const alreadyLoaded = response.status === 400 && /already (been )?loaded/i.test(text);
        if (!response.ok && !alreadyLoaded) {
          if (response.status >= 500 || response.status === 429) throw new Error(`load_lora_adapter on ${root}: HTTP ${response.status}: ${text.slice(0, 200)}`);
          throw ApplicationFailure.nonRetryable(`load_lora_adapter on ${root}: HTTP ${response.status}: ${text.slice(0, 200)}`, ErrorType.ConfigInvalid);
        }
        const models = (await (await fetch(`${root}/models`, { signal: context.cancellationSignal })).json()) as { data?: { id: string }[] };
        if (!models.data?.some((entry) => entry.id === model)) throw new Error(`${root} does not list ${model} after loading it`);
        context.heartbeat({ deployed: root });
      }
      return { model };
    },
  };
}
