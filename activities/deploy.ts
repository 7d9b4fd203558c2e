import { Context } from '@temporalio/activity';
import { DeployCheckpointInput, parseInput } from '../core/inputs.js';
import type { ActivityDeps } from './deps.js';
import { HttpStatusError, MODEL_SERVER, toApplicationFailure } from './failures.js';

/** The name each iteration's checkpoint is served under. */
export const servedModelName = (loopName: string, iteration: number) => `${loopName}-iter-${iteration}`;

/**
 * Makes π_j servable on every policy server through vLLM's runtime LoRA API (`/v1/load_lora_adapter`, enabled by
 * VLLM_ALLOW_RUNTIME_LORA_UPDATING), then waits until each lists it in `/v1/models`. Idempotent: an adapter that is
 * already loaded counts as deployed. Failures are classified like every model-server call (5xx, 429, connection:
 * retry; other 4xx: fail).
 */
export function createDeployActivities(deps: ActivityDeps) {
  return {
    async deployCheckpoint(rawInput: DeployCheckpointInput): Promise<{ model: string }> {
      const input = parseInput(DeployCheckpointInput, rawInput, 'deployCheckpoint');
      const context = Context.current();
      const model = servedModelName(input.loopName, input.iteration);
      const headers = {
        'content-type': 'application/json',
        ...(deps.llm.apiKey ? { authorization: `Bearer ${deps.llm.apiKey}` } : {}),
      };
      for (const baseUrl of deps.llm.baseUrlsFor('policy', input.policyBaseUrls)) {
        const root = baseUrl.replace(/\/$/, '');
        try {
          const response = await fetch(`${root}/load_lora_adapter`, {
            method: 'POST',
            headers,
            body: JSON.stringify({ lora_name: model, lora_path: input.checkpoint.path }),
            signal: context.cancellationSignal,
          });
          const text = await response.text();
          const alreadyLoaded = response.status === 400 && /already (been )?loaded/i.test(text);
          if (!response.ok && !alreadyLoaded)
            throw new HttpStatusError(response.status, text.slice(0, 200), response.headers);
          const listed = await fetch(`${root}/models`, { headers, signal: context.cancellationSignal });
          if (!listed.ok) throw new HttpStatusError(listed.status, (await listed.text()).slice(0, 200), listed.headers);
          const models = (await listed.json()) as { data?: { id: string }[] };
          if (!models.data?.some((entry) => entry.id === model))
            throw new HttpStatusError(503, `does not list ${model} after loading it`);
        } catch (err) {
          throw toApplicationFailure(err, `deploying ${model} on ${root}`, MODEL_SERVER);
        }
        context.heartbeat({ deployed: root });
      }
      return { model };
    },
  };
}
