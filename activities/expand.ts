import { setMaxListeners } from 'node:events';
import { Context } from '@temporalio/activity';
import type OpenAI from 'openai';
import { parseJson } from '../core/json.js';
import { wireToolName } from '../core/schemas/function-def.js';
import type { ChatMessage } from '../core/schemas/messages.js';
import { GeneratorOutput, ValidatorOutput } from '../core/schemas/model-io.js';
import { Sample } from '../core/schemas/sample.js';
import { predictionFrom, relabeledSample } from '../core/stages/relabel.js';
import { SCENARIO_GUIDANCE, scenarioFocusFor } from '../core/stages/scenario.js';
import { validateCalls } from '../core/validate/calls.js';
import { recordOrigins } from '../db/queries/origins.js';
import { getSamples, insertSamples, type StoredSample } from '../db/queries/samples.js';
import {
  type ExpansionRow,
  type ExpansionSeed,
  insertExpansions,
  type ModelCallRow,
  pendingExpansionSeeds,
  recordModelCalls,
  samplesKnownToLoop,
  type SeqRange, getStageBatch, batchCounts } from '../db/queries/stages.js';
import { decodeSample, encodeSample } from '../db/sample-codec.js';
import { withTransaction } from '../db/tx.js';
import type { ActivityDeps } from './deps.js';
import type { Endpoint, EndpointPool } from './llm/endpoint-pool.js';
import { toApplicationFailure } from './llm/failures.js';
import { pickPrompt, type PromptTemplate, renderTemplate } from './llm/prompts.js';
import type { ModelEndpoints } from './llm/registry.js';
import { conversationDate, promptConversation, promptTarget, promptTools } from './llm/render.js';
import { completeStructured, requestSeed, type StructuredResult } from './llm/structured.js';

export interface ExpandBatchInput {
  loopName: string;
  iteration: number;
  /** The seq range to work through, or the number of a batch planned by `planStageBatches`. */
  batch: SeqRange | { batchNo: number };
  generator: ModelEndpoints & { model: string };
  /** Validation judge; omit to skip the LLM tier (the rule tier always runs). */
  validator?: ModelEndpoints & { model: string };
  /** The loop's seed: scenario focuses and sampling seeds derive from it, so reruns and retries draw the same. */
  seed?: number;
  /** New samples per error seed. @default 4 (the paper's k; the official code used 3) */
  k?: number;
  /** Generation attempts per slot when the reply does not fit the schema. @default 3 */
  maxAttempts?: number;
  /** Generator sampling (the official code's). @default 1.0 / 0.9 */
  temperature?: number;
  topP?: number;
  generatorPromptVersion?: string;
  validatorPromptVersion?: string;
  /** @default 8 */
  pageSize?: number;
}

export interface ExpandBatchResult {
  seeds: number;
  byStatus: Partial<Record<ExpansionRow['status'], number>>;
}

interface SlotOutcome {
  row: ExpansionRow;
  accepted?: StoredSample;
}

/**
 * Error-Driven Data Expansion over one batch of error seeds: k new samples per seed, each under a scenario focus drawn
 * uniformly, then the two-tier check the paper requires (and the official code skipped): rule validation (functions
 * exist, required parameters present, no unknown parameters, JSON types) and a validation judge, then dedup by content
 * hash. Every slot is recorded with its status, raw output and reason; accepted samples get lineage to their seed and
 * the judge's analysis of the seed's error.
 *
 * Durability: slots already recorded are skipped, so a retried batch generates and writes nothing twice.
 */
export function createExpandActivities(deps: ActivityDeps) {
  return {
    async expandBatch(input: ExpandBatchInput): Promise<ExpandBatchResult> {
      const context = Context.current();
      const signal = context.cancellationSignal;
      // Every in-flight request listens on this one signal; hundreds at once is expected, not a leak.
      setMaxListeners(0, signal);
      const k = input.k ?? 4;
      const generators = deps.llm.pool('generator', input.generator);
      const validators = input.validator ? deps.llm.pool('judge', input.validator) : undefined;
      const generatorPrompt = pickPrompt(deps.prompts, 'generator', input.generatorPromptVersion);
      const validatorPrompt = pickPrompt(deps.prompts, 'validator', input.validatorPromptVersion);
      const key = { loopName: input.loopName, iteration: input.iteration };
      const batch = 'batchNo' in input.batch ? await getStageBatch(deps.pool, { ...key, stage: 'expand', batchNo: input.batch.batchNo }) : input.batch;
      const result: ExpandBatchResult = { seeds: 0, byStatus: {} };
      let cursor = batch.afterSeq;
      for (;;) {
        const seeds = await pendingExpansionSeeds(deps.pool, { ...key, afterSeq: cursor, lastSeq: batch.lastSeq, k, limit: input.pageSize ?? 8 });
        if (seeds.length === 0) break;
        const stored = await getSamples(deps.pool, seeds.flatMap((s) => [s.sampleId, ...(s.correctedSampleId ? [s.correctedSampleId] : [])]));
        const samples = new Map(stored.map((s) => [s.id, decodeSample(s)]));
        const ledger: ModelCallRow[] = [];
        const settled = await Promise.allSettled(
          seeds.flatMap((seed) =>
            Array.from({ length: k }, (_, slot) => slot)
              .filter((slot) => !seed.doneK.includes(slot))
              .map((slot) =>
                expandSlot({ seed, slot, samples, input, generators, validators, generatorPrompt, validatorPrompt, ledger, signal }),
              ),
          ),
        );
        const slots = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
        // Dedup against what the loop has and within this page: the first of equal samples wins.
        const known = await samplesKnownToLoop(deps.pool, input.loopName, slots.flatMap((s) => (s.accepted ? [s.accepted.id] : [])));
        for (const slot of slots) {
          if (!slot.accepted) continue;
          if (known.has(slot.accepted.id)) {
            slot.row = { ...slot.row, status: 'duplicate', rejectionReason: `same content as sample ${slot.accepted.id}, which the loop already has` };
            slot.accepted = undefined;
          } else {
            known.add(slot.accepted.id);
          }
        }
        await withTransaction(deps.pool, async (tx) => {
          const accepted = slots.flatMap((s) => (s.accepted ? [s] : []));
          await insertSamples(tx, accepted.map((s) => s.accepted!));
          await recordOrigins(
            tx,
            accepted.map((s) => ({
              sampleId: s.accepted!.id,
              kind: 'expansion' as const,
              parentSampleId: parentOf(seeds.find((seed) => seed.sampleId === s.row.seedSampleId)!),
              loopName: input.loopName,
              iteration: input.iteration,
              detail: { k: s.row.k, scenarioFocus: s.row.scenarioFocus, judgeAnalysis: seeds.find((seed) => seed.sampleId === s.row.seedSampleId)?.errorAnalysis ?? null },
            })),
          );
          await insertExpansions(tx, key, slots.map((s) => s.row));
          await recordModelCalls(tx, ledger);
        });
        result.seeds += seeds.length;
        for (const slot of slots) result.byStatus[slot.row.status] = (result.byStatus[slot.row.status] ?? 0) + 1;
        const failure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
        if (failure) throw failure.reason;
        cursor = seeds[seeds.length - 1]!.seq;
        context.heartbeat({ lastSeq: seeds[seeds.length - 1]!.seq, ...result });
      }
      // Counted from the table, so a batch retried after writing part of its work still reports all of it.
      const { seeds = 0, ...byStatus } = await batchCounts(deps.pool, { ...key, ...batch, stage: 'expand' });
      return { seeds, byStatus };
    },
  };
}

/** For a corrected label the seed in D^LR is the corrected sample; otherwise the original. */
function parentOf(seed: ExpansionSeed): string {
  return seed.verdict === 'label_wrong' && seed.correctedSampleId ? seed.correctedSampleId : seed.sampleId;
}

async function expandSlot(args: {
  seed: ExpansionSeed;
  slot: number;
  samples: Map<string, Sample>;
  input: ExpandBatchInput;
  generators: EndpointPool;
  validators: EndpointPool | undefined;
  generatorPrompt: PromptTemplate;
  validatorPrompt: PromptTemplate;
  ledger: ModelCallRow[];
  signal: AbortSignal;
}): Promise<SlotOutcome> {
  const { seed, slot, input } = args;
  const original = args.samples.get(seed.sampleId)!;
  const parsed = seed.parsedCallsJson ? parseJson(seed.parsedCallsJson) : undefined;
  const prediction = predictionFrom(parsed?.ok ? parsed.value : null, seed.rawOutput);
  const predicted = relabeledSample(original, prediction);
  // LABEL_WRONG: the prediction was right and the label wrong; PRED_WRONG: the other way round.
  const [correct, incorrect] = seed.verdict === 'label_wrong' ? [predicted.target, original.target] : [original.target, predicted.target];
  const focus = scenarioFocusFor({ seed: input.seed ?? 0, iteration: input.iteration, seedSampleId: seed.sampleId, k: slot });
  const userTurns = original.messages.filter((m) => m.role === 'user').length;
  const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [
    { role: 'system', content: renderTemplate(args.generatorPrompt.system, { date: conversationDate(original), tools: promptTools(original.tools) }) },
    {
      role: 'user',
      content: renderTemplate(args.generatorPrompt.user, {
        seed_conversation: promptConversation(original.messages),
        correct_response: promptTarget(correct),
        incorrect_response: promptTarget(incorrect),
        error_analysis: seed.errorAnalysis ?? 'not available',
        scenario_focus: focus,
        scenario_guidance: SCENARIO_GUIDANCE[focus],
        // The official prompt flips single- and multi-turn relative to the seed, for diversity.
        turn_guidance: userTurns > 1 ? 'make the new sample a single-turn request' : 'make the new sample a multi-turn dialogue',
      }),
    },
  ];
  const base = { seedSampleId: seed.sampleId, k: slot, scenarioFocus: focus, model: input.generator.model, promptVersion: args.generatorPrompt.version };
  const maxAttempts = input.maxAttempts ?? 3;
  let reply: StructuredResult<GeneratorOutput> | undefined;
  let attempts = 0;
  while (attempts < maxAttempts) {
    attempts++;
    const attempt = attempts;
    const current: StructuredResult<GeneratorOutput> = await call(args.generators, args.signal, `expansion ${slot} of seed ${seed.sampleId}`, (endpoint) =>
      completeStructured(endpoint, {
        model: input.generator.model,
        messages,
        schema: GeneratorOutput,
        name: 'generated_sample',
        temperature: input.temperature ?? 1.0,
        topP: input.topP ?? 0.9,
        seed: requestSeed('expand', input.seed ?? 0, input.iteration, seed.sampleId, slot, attempt),
        signal: args.signal,
      }).then((r) => {
        args.ledger.push(ledgerRow(input, 'expand', 'generator', input.generator.model, endpoint.baseURL, `${seed.sampleId}:k${slot}:a${attempt}`, r));
        return r;
      }),
    );
    reply = current;
    if (current.ok) break;
  }
  if (!reply?.ok) {
    return { row: { ...base, status: 'generation_failed', sampleId: null, attempts, rawOutput: reply?.raw ?? null, rejectionReason: reply && !reply.ok ? reply.reason : 'no reply' } };
  }
  const generated = reply.value;
  const raw = reply.raw;
  const conversation: ChatMessage[] = [
    ...original.messages.filter((m) => m.role === 'system'),
    ...generated.conversation.map((turn): ChatMessage => (turn.role === 'user' ? { role: 'user', content: turn.content } : { role: 'assistant', content: turn.content })),
  ];
  const lastTurn = generated.conversation[generated.conversation.length - 1];
  const violations = validateCalls(generated.tool_calls, original.tools).map((v) => `${v.field}: ${v.message}`);
  if (lastTurn?.role !== 'user') violations.unshift('conversation: must end with the user turn to answer');
  if (violations.length > 0) return { row: { ...base, status: 'rejected_rule', sampleId: null, attempts, rawOutput: raw, rejectionReason: violations.join('; ') } };

  const byWireName = new Map(original.tools.map((tool) => [wireToolName(tool.name), tool.name]));
  const candidate = Sample.safeParse({
    tools: original.tools,
    messages: conversation,
    target: { kind: 'calls', calls: generated.tool_calls.map((c) => ({ name: byWireName.get(wireToolName(c.name)) ?? c.name, arguments: c.arguments })) },
  });
  if (!candidate.success) {
    return { row: { ...base, status: 'rejected_rule', sampleId: null, attempts, rawOutput: raw, rejectionReason: candidate.error.issues[0]?.message ?? 'invalid sample' } };
  }
  if (args.validators && input.validator) {
    const validator = input.validator;
    const verdict = await validate({ ...args, validator, sample: candidate.data });
    if (!verdict.ok || verdict.value.verdict !== 'CORRECT') {
      const reason = verdict.ok ? `validation judge: ${verdict.value.error_analysis || 'INCORRECT'}` : `validation judge reply unusable: ${verdict.reason}`;
      return { row: { ...base, status: 'rejected_judge', sampleId: null, attempts, rawOutput: raw, rejectionReason: reason } };
    }
  }
  let stored: StoredSample;
  try {
    stored = encodeSample(candidate.data);
  } catch (err) {
    return { row: { ...base, status: 'rejected_rule', sampleId: null, attempts, rawOutput: raw, rejectionReason: (err as Error).message } };
  }
  return { row: { ...base, status: 'accepted', sampleId: stored.id, attempts, rawOutput: raw, rejectionReason: null }, accepted: stored };
}

async function validate(args: {
  sample: Sample;
  seed: ExpansionSeed;
  slot: number;
  input: ExpandBatchInput;
  validator: ModelEndpoints & { model: string };
  validators: EndpointPool | undefined;
  validatorPrompt: PromptTemplate;
  ledger: ModelCallRow[];
  signal: AbortSignal;
}): Promise<StructuredResult<ValidatorOutput>> {
  const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [
    { role: 'system', content: renderTemplate(args.validatorPrompt.system, { tools: promptTools(args.sample.tools) }) },
    {
      role: 'user',
      content: renderTemplate(args.validatorPrompt.user, {
        conversation: promptConversation(args.sample.messages),
        response: promptTarget(args.sample.target),
      }),
    },
  ];
  let reply: StructuredResult<ValidatorOutput> | undefined;
  for (let attempt = 1; attempt <= 2 && !reply?.ok; attempt++) {
    const current = attempt;
    reply = await call(args.validators!, args.signal, `validation of expansion ${args.slot} of seed ${args.seed.sampleId}`, (endpoint) =>
      completeStructured(endpoint, { model: args.validator.model, messages, schema: ValidatorOutput, name: 'sample_validation', temperature: 0, signal: args.signal }).then((r) => {
        args.ledger.push(ledgerRow(args.input, 'validate', 'judge', args.validator.model, endpoint.baseURL, `${args.seed.sampleId}:k${args.slot}:v${current}`, r));
        return r;
      }),
    );
  }
  if (!reply) throw new Error('unreachable: the validation loop runs at least once');
  return reply;
}

/** One model call through a pool, with HTTP failures mapped for Temporal's retry policy. */
function call<T>(pool: EndpointPool, signal: AbortSignal, what: string, fn: (endpoint: Endpoint) => Promise<T>): Promise<T> {
  return pool.withEndpoint(async (endpoint) => {
    try {
      return await fn(endpoint);
    } catch (err) {
      throw toApplicationFailure(err, `${what} on ${endpoint.baseURL}`);
    }
  }, signal);
}

function ledgerRow(
  input: { loopName: string; iteration: number },
  stage: 'expand' | 'validate',
  role: 'generator' | 'judge',
  model: string,
  endpoint: string,
  suffix: string,
  reply: StructuredResult<unknown>,
): ModelCallRow {
  return {
    callKey: `${stage}:${input.loopName}:${input.iteration}:${suffix}`,
    loopName: input.loopName,
    iteration: input.iteration,
    stage,
    role,
    model,
    endpoint,
    promptTokens: reply.usage.promptTokens,
    completionTokens: reply.usage.completionTokens,
    latencyMs: reply.latencyMs,
    ok: reply.ok,
  };
}
