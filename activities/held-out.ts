import { setMaxListeners } from 'node:events';
import { Context } from '@temporalio/activity';
import { compileSampleChecker } from '../core/checker/index.js';
import { HELD_OUT_EVAL_SET } from '../core/constants.js';
import { parseInput, ScoreHeldOutInput } from '../core/inputs.js';
import { parseModelOutput } from '../core/parse/model-output.js';
import { heldOutSampleIds } from '../db/queries/assembly.js';
import { upsertEvaluations } from '../db/queries/evaluations.js';
import { recordModelCalls } from '../db/queries/model-calls.js';
import { getSamples } from '../db/queries/samples.js';
import { getVersion } from '../db/queries/versions.js';
import { decodeSample } from '../db/sample-codec.js';
import { heldOutSizeOf } from './dataset.js';
import type { ActivityDeps } from './deps.js';
import { keepHeartbeating } from './heartbeat.js';
import { callModel, Ledger } from './llm/calls.js';
import { policyChat } from './llm/policy-chat.js';

export interface HeldOutScore {
  total: number;
  correct: number;
  /** Samples the server refused (prompt longer than its context): not scored. */
  rejected: number;
  accuracy: number | null;
}

/**
 * Scores a policy on the seed pool's held-out slice (data.heldOutFraction): the samples no round trained on, from the
 * training distribution, answered greedily and checked as the probe checks them. Stored as the evaluation set
 * `held-out` (one category, `held-out`), beside the BFCL sets; the whole slice is re-scored on a retry (greedy, an
 * upsert), so nothing is counted twice. Heartbeats the number answered.
 */
export function createHeldOutActivities(deps: ActivityDeps) {
  return {
    async scoreHeldOut(rawInput: ScoreHeldOutInput): Promise<HeldOutScore> {
      const input = parseInput(ScoreHeldOutInput, rawInput, 'scoreHeldOut');
      const signal = Context.current().cancellationSignal;
      setMaxListeners(0, signal);
      const pool = await getVersion(deps.pool, input.seedVersionId);
      const size = heldOutSizeOf(pool.memberCount ?? 0, input.heldOutFraction);
      const ids = await heldOutSampleIds(deps.pool, { seedVersionId: input.seedVersionId, seed: input.seed, size });
      const samples = (await getSamples(deps.pool, ids)).map(decodeSample);
      const endpoints = deps.llm.pool('policy', input.policy);
      const ledger = new Ledger();
      let answered = 0;
      let correct = 0;
      let rejected = 0;
      await keepHeartbeating(
        () => ({ answered, of: samples.length }),
        () =>
          Promise.all(
            samples.map((sample, index) =>
              callModel(endpoints, signal, `held-out sample ${ids[index]}`, async (endpoint) => {
                const reply = await policyChat(endpoint, {
                  model: input.policy.model,
                  sample,
                  maxTokens: input.maxTokens,
                  logprobs: false,
                  signal,
                });
                ledger.record(
                  {
                    purpose: 'evaluate',
                    role: 'policy',
                    model: input.policy.model,
                    loopName: input.loopName,
                    iteration: input.iteration,
                    key: [HELD_OUT_EVAL_SET, ids[index]!],
                  },
                  {
                    endpoint: endpoint.baseURL,
                    usage: reply.kind === 'reply' ? reply.usage : undefined,
                    latencyMs: reply.latencyMs,
                    ok: reply.kind === 'reply',
                  },
                );
                answered++;
                if (reply.kind === 'rejected') {
                  rejected++;
                  return;
                }
                if (reply.kind !== 'reply') return;
                const parsed = parseModelOutput(
                  { content: reply.content, tool_calls: reply.toolCalls },
                  { format: input.checker.contentFormat ?? 'auto', onMalformedBlock: 'error' },
                );
                const compiled = compileSampleChecker({ sample, config: input.checker });
                if (parsed.ok && compiled.ok && compiled.checker.checkParsed(parsed).valid) correct++;
              }),
            ),
          ),
      );
      const total = samples.length - rejected;
      const accuracy = total === 0 ? null : correct / total;
      if (accuracy !== null)
        await upsertEvaluations(deps.pool, { loopName: input.loopName, iteration: input.iteration }, [
          { evalSet: HELD_OUT_EVAL_SET, category: HELD_OUT_EVAL_SET, total, correct, accuracy },
        ]);
      await recordModelCalls(deps.pool, ledger.drain());
      return { total, correct, rejected, accuracy };
    },
  };
}
