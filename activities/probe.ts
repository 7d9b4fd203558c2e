import { setMaxListeners } from 'node:events';
import { Context } from '@temporalio/activity';
import { APIError } from 'openai';
import type OpenAI from 'openai';
import { compileSampleChecker, type CheckerConfig } from '../core/checker/index.js';
import { canonicalJson, type JsonValue } from '../core/json.js';
import { parseModelOutput } from '../core/parse/model-output.js';
import type { Sample } from '../core/schemas/sample.js';
import { getSamples } from '../db/queries/samples.js';
import { type BatchItem, insertProbeResults, type ModelCallRow, pendingProbeItems, type ProbeResultRow, recordModelCalls, type SeqRange, getStageBatch, batchCounts } from '../db/queries/stages.js';
import { decodeSample } from '../db/sample-codec.js';
import { withTransaction } from '../db/tx.js';
import type { ActivityDeps } from './deps.js';
import type { Endpoint } from './llm/endpoint-pool.js';
import { withRequestSignal } from './llm/abort.js';
import { toApplicationFailure } from './llm/failures.js';
import { pickPrompt } from './llm/prompts.js';
import type { ModelEndpoints } from './llm/registry.js';
import { openAiMessages, openAiTools } from './llm/render.js';

export interface ProbeBatchInput {
  loopName: string;
  iteration: number;
  versionId: number;
  /** The seq range to work through, or the number of a batch planned by `planStageBatches`. */
  batch: SeqRange | { batchNo: number };
  policy: ModelEndpoints & { model: string };
  checker: CheckerConfig;
  /** @default 1024 */
  maxTokens?: number;
  /** A probe-system prompt version to prepend to samples that have no system message; none by default, so the probe
   * sees exactly what training and evaluation see. */
  systemPromptVersion?: string | null;
  /** Samples per database round trip. @default 128 */
  pageSize?: number;
}

export interface ProbeBatchResult {
  probed: number;
  match: number;
  mismatch: number;
  parseError: number;
}

/** Mean log-probability and perplexity of the generated tokens (LOOPTOOL-METHOD.md §3.1), or nulls without logprobs. */
export function perplexityOf(tokens: readonly { logprob: number }[] | null | undefined): { meanLogprob: number | null; perplexity: number | null } {
  if (!tokens || tokens.length === 0) return { meanLogprob: null, perplexity: null };
  const mean = tokens.reduce((sum, token) => sum + token.logprob, 0) / tokens.length;
  return { meanLogprob: mean, perplexity: Math.exp(-mean) };
}

/** Statuses vLLM answers for one request it cannot serve (prompt too long, bad tool schema): a fact about the sample. */
const PER_SAMPLE_REJECTION = new Set([400, 413, 422]);

/**
 * Greedy Capability Probing over one batch: for each member of the version in the batch's seq range that has no probe
 * result yet, call the policy at temperature 0 with logprobs, parse the reply with core/, check it against the label,
 * and write the result (raw output, parsed calls, verdict, perplexity, tokens, latency) with a ledger entry.
 *
 * Durability: results are written page by page; a retry re-reads what is left from the results table, so it resumes
 * after the last written sample and never probes or writes a sample twice. Heartbeats carry the last written seq.
 * Cancellation aborts in-flight requests at once (the activity's signal is passed to every request).
 */
export function createProbeActivities(deps: ActivityDeps) {
  return {
    async probeBatch(input: ProbeBatchInput): Promise<ProbeBatchResult> {
      const context = Context.current();
      const signal = context.cancellationSignal;
      // Every request waiting for an endpoint slot listens on this signal; hundreds at once is expected, not a leak.
      setMaxListeners(0, signal);
      const endpoints = deps.llm.pool('policy', input.policy);
      const systemPrompt = input.systemPromptVersion ? pickPrompt(deps.prompts, 'probe-system', input.systemPromptVersion) : undefined;
      const promptVersion = systemPrompt?.version ?? 'none';
      const totals: ProbeBatchResult = { probed: 0, match: 0, mismatch: 0, parseError: 0 };
      const key = { loopName: input.loopName, iteration: input.iteration };
      const batch = 'batchNo' in input.batch ? await getStageBatch(deps.pool, { ...key, stage: 'probe', batchNo: input.batch.batchNo }) : input.batch;
      // Each page is written whole (or the activity fails), so the next page starts after the last one's items; the
      // results table, not this cursor, is what a retry resumes from.
      let cursor = batch.afterSeq;
      for (;;) {
        const items = await pendingProbeItems(deps.pool, { ...key, afterSeq: cursor, lastSeq: batch.lastSeq, versionId: input.versionId, limit: input.pageSize ?? 128 });
        if (items.length === 0) break;
        const samples = new Map((await getSamples(deps.pool, items.map((i) => i.sampleId))).map((s) => [s.id, decodeSample(s)]));
        // Settle the whole page before writing: what finished is kept even when one request failed, and no request
        // is left running after the activity gives up.
        const settled = await Promise.allSettled(
          items.map((item) =>
            endpoints.withEndpoint(
              (endpoint) => probeOne({ endpoint, item, sample: samples.get(item.sampleId)!, input, systemPrompt: systemPrompt?.system, promptVersion, signal }),
              signal,
            ),
          ),
        );
        const outcomes = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
        await withTransaction(deps.pool, async (tx) => {
          await insertProbeResults(tx, key, outcomes.map((o) => o.row));
          await recordModelCalls(tx, outcomes.map((o) => o.ledger));
        });
        for (const { row } of outcomes) {
          totals.probed++;
          if (row.outcome === 'match') totals.match++;
          else if (row.outcome === 'mismatch') totals.mismatch++;
          else totals.parseError++;
        }
        const failure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
        if (failure) throw failure.reason;
        cursor = items[items.length - 1]!.seq;
        context.heartbeat({ lastSeq: items[items.length - 1]!.seq, ...totals });
      }
      // Counted from the table, so a batch retried after writing part of its work still reports all of it.
      const recorded = await batchCounts(deps.pool, { ...key, ...batch, stage: 'probe' });
      const match = recorded.match ?? 0;
      const mismatch = recorded.mismatch ?? 0;
      const parseError = recorded.parse_error ?? 0;
      return { probed: match + mismatch + parseError, match, mismatch, parseError };
    },
  };
}

async function probeOne(args: {
  endpoint: Endpoint;
  item: BatchItem;
  sample: Sample;
  input: ProbeBatchInput;
  systemPrompt: string | undefined;
  promptVersion: string;
  signal: AbortSignal;
}): Promise<{ row: ProbeResultRow; ledger: ModelCallRow }> {
  const { endpoint, item, sample, input } = args;
  const messages = openAiMessages(sample.messages);
  if (args.systemPrompt && sample.messages[0]?.role !== 'system') messages.unshift({ role: 'system', content: args.systemPrompt });
  const started = performance.now();
  const ledger = (ok: boolean, usage?: { prompt_tokens?: number; completion_tokens?: number }): ModelCallRow => ({
    callKey: `probe:${input.loopName}:${input.iteration}:${item.sampleId}`,
    loopName: input.loopName,
    iteration: input.iteration,
    stage: 'probe',
    role: 'policy',
    model: input.policy.model,
    endpoint: endpoint.baseURL,
    promptTokens: usage?.prompt_tokens ?? 0,
    completionTokens: usage?.completion_tokens ?? 0,
    latencyMs: Math.round(performance.now() - started),
    ok,
  });
  const base = { sampleId: item.sampleId, model: input.policy.model, promptVersion: args.promptVersion };
  let completion: OpenAI.Chat.ChatCompletion;
  try {
    completion = await withRequestSignal(args.signal, (signal) => endpoint.client.chat.completions.create(
      {
        model: input.policy.model,
        messages: messages as unknown as OpenAI.Chat.ChatCompletionMessageParam[],
        ...(sample.tools.length > 0 ? { tools: openAiTools(sample.tools) as unknown as OpenAI.Chat.ChatCompletionTool[] } : {}),
        temperature: 0,
        max_tokens: input.maxTokens ?? 1024,
        logprobs: true,
      },
      { signal },
    ));
  } catch (err) {
    if (err instanceof APIError && typeof err.status === 'number' && PER_SAMPLE_REJECTION.has(err.status)) {
      return {
        row: {
          ...base,
          outcome: 'parse_error',
          rawOutput: '',
          parsedCallsJson: null,
          errorType: 'request_rejected',
          error: `HTTP ${err.status}: ${err.message}`,
          meanLogprob: null,
          perplexity: null,
          promptTokens: null,
          completionTokens: null,
          latencyMs: Math.round(performance.now() - started),
        },
        ledger: ledger(false),
      };
    }
    throw toApplicationFailure(err, `probe of sample ${item.sampleId} on ${endpoint.baseURL}`);
  }
  const message = completion.choices[0]?.message;
  const toolCalls = (message?.tool_calls ?? null) as unknown as JsonValue[] | null;
  const rawOutput = toolCalls && toolCalls.length > 0 ? canonicalJson(toolCalls) : (message?.content ?? '');
  const parsed = parseModelOutput(
    { content: message?.content ?? null, tool_calls: toolCalls },
    { format: input.checker.contentFormat ?? 'auto', onMalformedBlock: input.checker.onMalformedBlock ?? 'error' },
  );
  const compiled = compileSampleChecker({ sample, config: input.checker });
  const verdict = compiled.ok ? compiled.checker.checkParsed(parsed) : { valid: false, errorType: 'checker:invalid_target', error: compiled.error };
  const { meanLogprob, perplexity } = perplexityOf(completion.choices[0]?.logprobs?.content);
  return {
    row: {
      ...base,
      outcome: !parsed.ok ? 'parse_error' : verdict.valid ? 'match' : 'mismatch',
      rawOutput,
      parsedCallsJson: parsed.ok ? canonicalJson(parsed.calls) : null,
      errorType: parsed.ok ? (verdict.errorType ?? null) : parsed.error.kind,
      error: parsed.ok ? (verdict.error ?? null) : parsed.error.reason,
      meanLogprob,
      perplexity,
      promptTokens: completion.usage?.prompt_tokens ?? null,
      completionTokens: completion.usage?.completion_tokens ?? null,
      latencyMs: Math.round(performance.now() - started),
    },
    ledger: ledger(true, completion.usage),
  };
}
