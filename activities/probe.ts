import { compileSampleChecker } from '../core/checker/index.js';
import { parseInput, ProbeBatchInput } from '../core/inputs.js';
import { type PolicyPromptMessage, policyPrompt, withSystemPrompt } from '../core/formats/policy-prompt.js';
import { canonicalJson } from '../core/json.js';
import { parseModelOutput } from '../core/parse/model-output.js';
import type { Sample } from '../core/schemas/sample.js';
import type { ProbeOutcome } from '../core/vocabulary.js';
import { insertProbePage, pendingProbeItems, type ProbeResultRow } from '../db/queries/probe-results.js';
import type { BatchItem } from '../db/queries/stage-batches.js';
import { ToolsetCache } from '../db/sample-codec.js';
import type { ActivityDeps } from './deps.js';
import { callModel, Ledger } from './llm/calls.js';
import { mayHaveBatchRoute, policyChatBatch } from './llm/policy-batch.js';
import { policyChat, type PolicyReply } from './llm/policy-chat.js';
import {
  countPromptTokens,
  isContextLengthRejection,
  knownServerContext,
  promptTokenLimit,
  promptTokenUpperBound,
} from './llm/prompt-length.js';
import { pickPrompt } from './llm/prompts.js';
import { runStageBatch } from './stage-batch.js';

/** The heartbeat's name for each outcome's running count (the names of {@link ProbeBatchResult}). */
const HEARTBEAT_COUNT_OF: Record<ProbeOutcome, keyof ProbeBatchResult> = {
  match: 'match',
  mismatch: 'mismatch',
  parse_error: 'parseError',
  too_long: 'tooLong',
};

export interface ProbeBatchResult {
  probed: number;
  match: number;
  mismatch: number;
  parseError: number;
  /** Prompts longer than the policy's context or the trainer's prompt budget: not asked, never error seeds. */
  tooLong: number;
}

/** Mean log-probability and perplexity of the generated tokens (LOOPTOOL-METHOD.md §3.1), or nulls without logprobs. */
export function perplexityOf(logprobs: readonly number[] | null | undefined): {
  meanLogprob: number | null;
  perplexity: number | null;
} {
  if (!logprobs || logprobs.length === 0) return { meanLogprob: null, perplexity: null };
  const mean = logprobs.reduce((sum, logprob) => sum + logprob, 0) / logprobs.length;
  return { meanLogprob: mean, perplexity: Math.exp(-mean) };
}

/**
 * Greedy Capability Probing over one batch: for each member of the version in the batch's seq range that has no probe
 * result yet, call the policy at temperature 0 with logprobs, parse the reply with core/, check it against the label,
 * and write the result (raw output, parsed calls, verdict, perplexity, tokens, latency) with a ledger entry.
 *
 * Length-aware: a prompt that may not fit (its byte length is over the limit) is counted by the server first
 * (llm/prompt-length.ts); one longer than the policy's context less the reply budget, or than the trainer's prompt
 * budget (`grpo.maxPromptTokens`: verl drops such prompts from training), is recorded as `too_long` without asking,
 * as is a request the server refuses for its length and a reply whose reported prompt tokens exceed the budget.
 * `too_long` samples are never judged nor error seeds, and training exports leave them out. Any other refusal of this
 * one sample (400) is recorded as that sample's data, as is a response body that is JSON but not a chat completion
 * (`parse_error` / `request_rejected` or `invalid_response`, the body's text as raw output, a ledger entry with
 * ok = false and no tokens); neither is judged.
 *
 * Durability and cancellation: see {@link runStageBatch}.
 */
export function createProbeActivities(deps: ActivityDeps) {
  // One for all batches of this worker: consecutive batches of a version share many toolsets.
  const toolsets = new ToolsetCache();
  return {
    async probeBatch(rawInput: ProbeBatchInput): Promise<ProbeBatchResult> {
      const input = parseInput(ProbeBatchInput, rawInput, 'probeBatch');
      const endpoints = deps.llm.pool('policy', input.policy);
      const systemPrompt = input.systemPromptVersion
        ? pickPrompt(deps.prompts, 'probe-system', input.systemPromptVersion)
        : undefined;
      const key = { loopName: input.loopName, iteration: input.iteration };
      const ledger = new Ledger();
      const call = (ledgerKey: readonly (string | number)[]) =>
        ({ purpose: 'probe', role: 'policy', model: input.policy.model, ...key, key: ledgerKey }) as const;
      const limitWithin = (maxModelLen: number | null) =>
        promptTokenLimit({
          maxPromptTokens: input.maxPromptTokens,
          maxTokens: input.maxTokens,
          contextTokens: input.contextTokens ?? maxModelLen,
        });

      /** A sample as it is asked: what is shown (the optional probe system prompt joined) and its rendered prompt. */
      interface Asked {
        item: BatchItem;
        sample: Sample;
        shown: Sample;
        prompt: PolicyPromptMessage[];
      }
      const askedOf = (item: BatchItem, sample: Sample): Asked => {
        // The optional probe system prompt joins the sample's own system message (when it has none), so the tools are
        // rendered after it as a training export of that sample would render them.
        const shown = systemPrompt ? withSystemPrompt(sample, systemPrompt.system) : sample;
        // Rendered once for the length check, the count and the request.
        return { item, sample, shown, prompt: policyPrompt(shown) };
      };
      const promptVersion = systemPrompt?.version ?? 'none';
      // Each result row is written out whole: properties added after a leading spread (`{ ...base, outcome, … }`) go
      // through V8's slow path, about 0.7 µs each (node 20), which was 8 µs of every probed sample's CPU.
      const tooLong = (asked: Asked, promptTokens: number | null, why: string, rawOutput = ''): ProbeResultRow => ({
        sampleId: asked.item.sampleId,
        model: input.policy.model,
        promptVersion,
        outcome: 'too_long',
        rawOutput,
        parsedCalls: null,
        errorType: 'prompt_too_long',
        error: why,
        meanLogprob: null,
        perplexity: null,
        promptTokens,
        completionTokens: null,
        latencyMs: null,
      });

      /**
       * A reply as the sample's result: checked against its label, or, when there is no reply to check, what came back
       * instead (the refusal, or the body that is not a completion), so the page's write succeeds and a retry never
       * asks again. `promptTokens`: the server's count of this prompt, where it reported one.
       */
      const resultOf = (
        asked: Asked,
        reply: PolicyReply,
        tokens: { prompt: number | null; completion: number | null },
      ) => {
        if (reply.kind === 'rejected' && isContextLengthRejection(reply.message))
          return tooLong(asked, null, `HTTP ${reply.status}: ${reply.message}`);
        if (tokens.prompt !== null && tokens.prompt > input.maxPromptTokens)
          return tooLong(
            asked,
            tokens.prompt,
            `prompt of ${tokens.prompt} tokens (as the server counted it) is over the training prompt ` +
              `budget of ${input.maxPromptTokens}`,
            reply.kind === 'reply' ? reply.rawOutput : '',
          );
        if (reply.kind !== 'reply') {
          return {
            sampleId: asked.item.sampleId,
            model: input.policy.model,
            promptVersion,
            outcome: 'parse_error',
            rawOutput: reply.kind === 'invalid' ? reply.raw : '',
            parsedCalls: null,
            errorType: reply.kind === 'invalid' ? 'invalid_response' : 'request_rejected',
            error: reply.kind === 'invalid' ? reply.error : `HTTP ${reply.status}: ${reply.message}`,
            meanLogprob: null,
            perplexity: null,
            promptTokens: null,
            completionTokens: null,
            latencyMs: reply.latencyMs,
          } satisfies ProbeResultRow;
        }
        const parsed = parseModelOutput(
          { content: reply.content, tool_calls: reply.toolCalls },
          {
            format: input.checker.contentFormat ?? 'auto',
            onMalformedBlock: input.checker.onMalformedBlock ?? 'error',
          },
        );
        const compiled = compileSampleChecker({ sample: asked.sample, config: input.checker });
        const verdict = compiled.ok
          ? compiled.checker.checkParsed(parsed)
          : { valid: false, errorType: 'checker:invalid_target', error: compiled.error };
        const { meanLogprob, perplexity } = perplexityOf(reply.logprobs);
        return {
          sampleId: asked.item.sampleId,
          model: input.policy.model,
          promptVersion,
          outcome: !parsed.ok ? 'parse_error' : verdict.valid ? 'match' : 'mismatch',
          rawOutput: reply.rawOutput,
          parsedCalls: parsed.ok ? canonicalJson(parsed.calls) : null,
          errorType: parsed.ok ? (verdict.errorType ?? null) : parsed.error.kind,
          error: parsed.ok ? (verdict.error ?? null) : parsed.error.reason,
          meanLogprob,
          perplexity,
          promptTokens: tokens.prompt,
          completionTokens: tokens.completion,
          latencyMs: reply.latencyMs,
        } satisfies ProbeResultRow;
      };

      /** One sample in a request of its own, its length checked first on the server it goes to. */
      const probeOne = (asked: Asked, signal: AbortSignal): Promise<ProbeResultRow> =>
        callModel(endpoints, signal, `probe of sample ${asked.item.sampleId}`, async (endpoint) => {
          // Without a configured context the server's is needed: learned from its first count, then only prompts
          // that could be too long by their byte length are counted.
          const context = input.contextTokens ?? knownServerContext(endpoint);
          if (context === undefined || promptTokenUpperBound(asked.shown, asked.prompt) > limitWithin(context)) {
            const counted = await countPromptTokens(endpoint, {
              model: input.policy.model,
              sample: asked.shown,
              prompt: asked.prompt,
              signal,
            });
            if (counted && counted.promptTokens > limitWithin(counted.maxModelLen))
              return tooLong(
                asked,
                counted.promptTokens,
                `prompt of ${counted.promptTokens} tokens is over the limit of ${limitWithin(counted.maxModelLen)} ` +
                  `(context ${input.contextTokens ?? counted.maxModelLen ?? 'unknown'} less ${input.maxTokens} ` +
                  `for the reply; training prompt budget ${input.maxPromptTokens})`,
              );
          }
          const reply = await policyChat(endpoint, {
            model: input.policy.model,
            sample: asked.shown,
            prompt: asked.prompt,
            maxTokens: input.maxTokens,
            logprobs: true,
            signal,
          });
          ledger.record(call([asked.item.sampleId]), {
            endpoint: endpoint.baseURL,
            usage: reply.kind === 'reply' ? reply.usage : undefined,
            latencyMs: reply.latencyMs,
            ok: reply.kind === 'reply',
          });
          const usage = reply.kind === 'reply' ? reply.usage : undefined;
          return resultOf(asked, reply, {
            prompt: usage?.promptTokens ?? null,
            completion: usage?.completionTokens ?? null,
          });
        });

      /**
       * Samples asked together (`conversationsPerRequest`): the ones that surely fit the limit (by their byte length)
       * go in one request to vLLM's batch route; the rest, and all of them where the server has no batch route, refuses
       * the batch or answers something that is not one completion per conversation, are asked one at a time. One
       * promise per sample: a sample asked on its own succeeds or fails alone, as without batches.
       */
      const probeGroup = (group: Asked[], signal: AbortSignal): Promise<ProbeResultRow>[] => {
        const first = group[0]!.item.sampleId;
        const batched =
          group.length < 2
            ? Promise.resolve(undefined)
            : callModel(endpoints, signal, `probe of ${group.length} samples from ${first}`, async (endpoint) => {
                if (!mayHaveBatchRoute(endpoint)) return undefined;
                let context = input.contextTokens ?? knownServerContext(endpoint);
                if (context === undefined) {
                  // The server's context is learned from its count of a prompt (null: it cannot count), as a single
                  // request learns it; which samples go in a batch then never depends on which request came first.
                  const [{ shown, prompt }] = group as [Asked];
                  await countPromptTokens(endpoint, { model: input.policy.model, sample: shown, prompt, signal });
                  context = knownServerContext(endpoint) ?? null;
                }
                const limit = limitWithin(context);
                const fit = group.filter((asked) => promptTokenUpperBound(asked.shown, asked.prompt) <= limit);
                if (fit.length < 2) return undefined;
                const answer = await policyChatBatch(endpoint, {
                  model: input.policy.model,
                  prompts: fit.map((asked) => asked.prompt),
                  maxTokens: input.maxTokens,
                  logprobs: true,
                  signal,
                });
                if (answer.kind === 'no_batch_route') return undefined;
                // One ledger row per request: the route reports only the batch's total usage.
                ledger.record(call(['batch', fit[0]!.item.sampleId, fit.length]), {
                  endpoint: endpoint.baseURL,
                  usage: answer.kind === 'replies' ? answer.usage : undefined,
                  latencyMs: answer.latencyMs,
                  ok: answer.kind === 'replies',
                });
                if (answer.kind !== 'replies') return undefined;
                return new Map(
                  fit.map((asked, j) => {
                    const reply = answer.replies[j]!;
                    return [
                      asked.item.sampleId,
                      resultOf(asked, reply, { prompt: null, completion: reply.logprobs?.length ?? null }),
                    ];
                  }),
                );
              });
        return group.map(async (asked) => (await batched)?.get(asked.item.sampleId) ?? probeOne(asked, signal));
      };

      const counts = await runStageBatch(deps.pool, {
        stage: 'probe',
        input,
        pending: (range) => pendingProbeItems(deps.pool, { ...key, ...range, versionId: input.versionId }),
        // The next page's members and samples are read while this page's requests are in flight.
        prefetch: true,
        work: (items, samples, signal) => {
          const size = input.conversationsPerRequest;
          const asked = items.map((item) => askedOf(item, samples.get(item.sampleId)!));
          return asked.flatMap((_, at) => (at % size === 0 ? probeGroup(asked.slice(at, at + size), signal) : []));
        },
        // Results and ledger rows in one statement: one round trip per page.
        writeIsOneStatement: true,
        write: async (q, rows) => {
          await insertProbePage(q, key, rows, ledger.drain());
        },
        tally: (row) => ({ probed: 1, [HEARTBEAT_COUNT_OF[row.outcome]]: 1 }),
        toolsets,
      });
      const match = counts.match ?? 0;
      const mismatch = counts.mismatch ?? 0;
      const parseError = counts.parse_error ?? 0;
      const tooLongCount = counts.too_long ?? 0;
      return {
        probed: match + mismatch + parseError + tooLongCount,
        match,
        mismatch,
        parseError,
        tooLong: tooLongCount,
      };
    },
  };
}
