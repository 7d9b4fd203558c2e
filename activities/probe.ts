import { compileSampleChecker } from '../core/checker/index.js';
import { parseInput, ProbeBatchInput } from '../core/inputs.js';
import { policyPrompt, withSystemPrompt } from '../core/formats/policy-prompt.js';
import { canonicalJson } from '../core/json.js';
import { parseModelOutput } from '../core/parse/model-output.js';
import type { Sample } from '../core/schemas/sample.js';
import type { ProbeOutcome } from '../core/vocabulary.js';
import { insertProbePage, pendingProbeItems, type ProbeResultRow } from '../db/queries/probe-results.js';
import type { BatchItem } from '../db/queries/stage-batches.js';
import type { ActivityDeps } from './deps.js';
import { callModel, Ledger } from './llm/calls.js';
import { policyChat } from './llm/policy-chat.js';
import {
  countPromptTokens,
  isContextLengthRejection,
  knownServerContext,
  promptTokenLimit,
  promptTokenUpperBound,
} from './llm/prompt-length.js';
import { pickPrompt } from './llm/prompts.js';
import { runStageBatch, ToolsetCache } from './stage-batch.js';

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
export function perplexityOf(tokens: readonly { logprob: number }[] | null | undefined): {
  meanLogprob: number | null;
  perplexity: number | null;
} {
  if (!tokens || tokens.length === 0) return { meanLogprob: null, perplexity: null };
  const mean = tokens.reduce((sum, token) => sum + token.logprob, 0) / tokens.length;
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

      const probeOne = async (item: BatchItem, sample: Sample, signal: AbortSignal): Promise<ProbeResultRow> => {
        const call = {
          purpose: 'probe',
          role: 'policy',
          model: input.policy.model,
          ...key,
          key: [item.sampleId],
        } as const;
        const base = {
          sampleId: item.sampleId,
          model: input.policy.model,
          promptVersion: systemPrompt?.version ?? 'none',
        };
        const tooLong = (promptTokens: number | null, why: string, rawOutput = ''): ProbeResultRow => ({
          ...base,
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
        return callModel(endpoints, signal, `probe of sample ${item.sampleId}`, async (endpoint) => {
          const shown = systemPrompt ? withSystemPrompt(sample, systemPrompt.system) : sample;
          // Rendered once for the length check, the count and the request.
          const prompt = policyPrompt(shown);
          const limitWithin = (maxModelLen: number | null) =>
            promptTokenLimit({
              maxPromptTokens: input.maxPromptTokens,
              maxTokens: input.maxTokens,
              contextTokens: input.contextTokens ?? maxModelLen,
            });
          // Without a configured context the server's is needed: learned from its first count, then only prompts
          // that could be too long by their byte length are counted.
          const context = input.contextTokens ?? knownServerContext(endpoint);
          if (context === undefined || promptTokenUpperBound(shown, prompt) > limitWithin(context)) {
            const counted = await countPromptTokens(endpoint, {
              model: input.policy.model,
              sample: shown,
              prompt,
              signal,
            });
            if (counted && counted.promptTokens > limitWithin(counted.maxModelLen))
              return tooLong(
                counted.promptTokens,
                `prompt of ${counted.promptTokens} tokens is over the limit of ${limitWithin(counted.maxModelLen)} ` +
                  `(context ${input.contextTokens ?? counted.maxModelLen ?? 'unknown'} less ${input.maxTokens} ` +
                  `for the reply; training prompt budget ${input.maxPromptTokens})`,
              );
          }
          const reply = await policyChat(endpoint, {
            model: input.policy.model,
            // The optional probe system prompt joins the sample's own system message (when it has none), so the
            // tools are rendered after it as a training export of that sample would render them.
            sample: shown,
            prompt,
            maxTokens: input.maxTokens,
            logprobs: true,
            signal,
          });
          ledger.record(call, {
            endpoint: endpoint.baseURL,
            usage: reply.kind === 'reply' ? reply.usage : undefined,
            latencyMs: reply.latencyMs,
            ok: reply.kind === 'reply',
          });
          if (reply.kind === 'rejected' && isContextLengthRejection(reply.message))
            return tooLong(null, `HTTP ${reply.status}: ${reply.message}`);
          const reportedPromptTokens = reply.kind === 'reply' ? reply.usage?.promptTokens : undefined;
          if (reportedPromptTokens !== undefined && reportedPromptTokens > input.maxPromptTokens)
            return tooLong(
              reportedPromptTokens,
              `prompt of ${reportedPromptTokens} tokens (as the server counted it) is over the training prompt ` +
                `budget of ${input.maxPromptTokens}`,
              reply.kind === 'reply' ? reply.rawOutput : '',
            );
          if (reply.kind !== 'reply') {
            // No reply to check: what came back instead (the refusal, or the body that is not a completion) is this
            // sample's result, so the page's write succeeds and a retry never asks again.
            return {
              ...base,
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
            };
          }
          const parsed = parseModelOutput(
            { content: reply.content, tool_calls: reply.toolCalls },
            {
              format: input.checker.contentFormat ?? 'auto',
              onMalformedBlock: input.checker.onMalformedBlock ?? 'error',
            },
          );
          const compiled = compileSampleChecker({ sample, config: input.checker });
          const verdict = compiled.ok
            ? compiled.checker.checkParsed(parsed)
            : { valid: false, errorType: 'checker:invalid_target', error: compiled.error };
          const { meanLogprob, perplexity } = perplexityOf(reply.logprobs);
          return {
            ...base,
            outcome: !parsed.ok ? 'parse_error' : verdict.valid ? 'match' : 'mismatch',
            rawOutput: reply.rawOutput,
            parsedCalls: parsed.ok ? canonicalJson(parsed.calls) : null,
            errorType: parsed.ok ? (verdict.errorType ?? null) : parsed.error.kind,
            error: parsed.ok ? (verdict.error ?? null) : parsed.error.reason,
            meanLogprob,
            perplexity,
            promptTokens: reply.usage?.promptTokens ?? null,
            completionTokens: reply.usage?.completionTokens ?? null,
            latencyMs: reply.latencyMs,
          };
        });
      };

      const counts = await runStageBatch(deps.pool, {
        stage: 'probe',
        input,
        pending: (range) => pendingProbeItems(deps.pool, { ...key, ...range, versionId: input.versionId }),
        // The next page's members and samples are read while this page's requests are in flight.
        prefetch: true,
        work: (items, samples, signal) => items.map((item) => probeOne(item, samples.get(item.sampleId)!, signal)),
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
      const tooLong = counts.too_long ?? 0;
      return { probed: match + mismatch + parseError + tooLong, match, mismatch, parseError, tooLong };
    },
  };
}
