import { ApplicationFailure } from '@temporalio/activity';
import type OpenAI from 'openai';
import { ErrorType } from '../core/errors.js';
import { ExpandBatchInput, parseInput } from '../core/inputs.js';
import { wireToolName } from '../core/schemas/function-def.js';
import { GeneratorOutput, generatedTurnMessage, ValidatorOutput } from '../core/schemas/model-io.js';
import { Sample, type Target } from '../core/schemas/sample.js';
import { relabeledSample, storedPrediction } from '../core/stages/relabel.js';
import { SCENARIO_GUIDANCE, scenarioFocusFor } from '../core/stages/scenario.js';
import { validateCalls, validateConversation } from '../core/validate/calls.js';
import type { ExpansionStatus } from '../core/vocabulary.js';
import {
  type ExpansionRow,
  type ExpansionSeed,
  insertExpansions,
  pendingExpansionSeeds,
  samplesKnownToLoop,
} from '../db/queries/expansions.js';
import { recordModelCalls } from '../db/queries/model-calls.js';
import { recordOrigins } from '../db/queries/origins.js';
import { insertSamples, type StoredSample } from '../db/queries/samples.js';
import { encodeSample } from '../db/sample-codec.js';
import type { ActivityDeps } from './deps.js';
import { type CallContext, Ledger, structuredCall } from './llm/calls.js';
import type { EndpointPool } from './llm/endpoint-pool.js';
import { pickPrompt, type PromptName, type PromptTemplate, renderTemplate } from './llm/prompts.js';
import { conversationDate, promptConversation, promptTarget, promptTools } from './llm/render.js';
import { requestSeed, type StructuredResult } from './llm/structured.js';
import { runStageBatch } from './stage-batch.js';

export interface ExpandBatchResult {
  seeds: number;
  byStatus: Partial<Record<ExpansionStatus, number>>;
}

type Input = ReturnType<typeof ExpandBatchInput.parse>;

interface SlotOutcome {
  row: ExpansionRow;
  accepted?: StoredSample;
}

/**
 * Error-Driven Data Expansion over one batch of error seeds: k new samples per seed, each under a scenario focus drawn
 * uniformly and mirroring the seed (earlier tool calls with their results where the seed has them; a text answer, a
 * clarification or "no tool fits", where the seed's correct answer is text), drawn with the config's sampling. Then
 * the two-tier check the paper requires (and the official code skipped): rule validation (functions exist, required
 * parameters present, no unknown parameters, JSON types; for the history's calls as for the answer's, and tool results
 * after the calls they answer) and a validation judge, then dedup by content hash. Every slot is recorded with its status, raw output and reason; accepted samples get lineage to their seed and
 * the judge's analysis of the seed's error.
 *
 * Durability: slots already recorded are skipped, so a retried batch generates and writes nothing twice.
 */
export function createExpandActivities(deps: ActivityDeps) {
  return {
    async expandBatch(rawInput: ExpandBatchInput): Promise<ExpandBatchResult> {
      const input = parseInput(ExpandBatchInput, rawInput, 'expandBatch');
      const generators = deps.llm.pool('generator', input.generator);
      const validators = input.validator ? deps.llm.pool('judge', input.validator) : undefined;
      const generatorPrompt = promptFor(deps.prompts, 'generator', input.generatorPromptVersion);
      const validatorPrompt = promptFor(deps.prompts, 'validator', input.validatorPromptVersion);
      const key = { loopName: input.loopName, iteration: input.iteration };
      const ledger = new Ledger();
      const seedsById = new Map<string, ExpansionSeed>();

      const { seeds = 0, ...byStatus } = await runStageBatch(deps.pool, {
        stage: 'expand',
        input,
        pending: async (range) => {
          const seeds = await pendingExpansionSeeds(deps.pool, { ...key, ...range, k: input.k });
          seedsById.clear();
          for (const seed of seeds) seedsById.set(seed.sampleId, seed);
          return seeds;
        },
        work: (seeds, samples, signal) =>
          seeds.flatMap((seed) =>
            Array.from({ length: input.k }, (_, slot) => slot)
              .filter((slot) => !seed.doneK.includes(slot))
              .map((slot) =>
                expandSlot({
                  seed,
                  slot,
                  samples,
                  input,
                  generators,
                  validators,
                  generatorPrompt,
                  validatorPrompt,
                  calls: { ledger, signal },
                }),
              ),
          ),
        // Dedup against what the loop has and within this page: the first of equal samples wins.
        review: async (slots) => {
          const known = await samplesKnownToLoop(
            deps.pool,
            input.loopName,
            slots.flatMap((s) => (s.accepted ? [s.accepted.id] : [])),
          );
          for (const slot of slots) {
            if (!slot.accepted) continue;
            if (known.has(slot.accepted.id)) {
              slot.row = {
                ...slot.row,
                status: 'duplicate',
                rejectionReason: `same content as sample ${slot.accepted.id}, which the loop already has`,
              };
              slot.accepted = undefined;
            } else {
              known.add(slot.accepted.id);
            }
          }
        },
        write: async (tx, slots) => {
          const accepted = slots.flatMap((s) => (s.accepted ? [{ slot: s, sample: s.accepted }] : []));
          await insertSamples(
            tx,
            accepted.map((a) => a.sample),
          );
          await recordOrigins(
            tx,
            accepted.map(({ slot, sample }) => {
              const seed = seedsById.get(slot.row.seedSampleId)!;
              return {
                sampleId: sample.id,
                kind: 'expansion' as const,
                parentSampleId: parentOf(seed),
                ...key,
                detail: {
                  k: slot.row.k,
                  scenarioFocus: slot.row.scenarioFocus,
                  judgeAnalysis: seed.errorAnalysis ?? null,
                },
              };
            }),
          );
          await insertExpansions(
            tx,
            key,
            slots.map((s) => s.row),
          );
          await recordModelCalls(tx, ledger.drain());
        },
        tally: ({ row }) => ({ [row.status]: 1 }),
      });
      return { seeds, byStatus };
    },
  };
}

/** A configured prompt version; one this worker does not have fails the batch once, not on every retry. */
function promptFor(prompts: Map<string, PromptTemplate>, name: PromptName, version: string): PromptTemplate {
  try {
    return pickPrompt(prompts, name, version);
  } catch (err) {
    throw ApplicationFailure.nonRetryable(
      `expand: ${(err as Error).message} (expand.${name}PromptVersion; the worker has ${[...prompts.keys()].filter((k) => k.startsWith(`${name}.v`)).join(', ') || 'none'})`,
      ErrorType.ConfigInvalid,
    );
  }
}

/** For a corrected label the seed in D^LR is the corrected sample; otherwise the original. */
function parentOf(seed: ExpansionSeed): string {
  return seed.verdict === 'label_wrong' && seed.correctedSampleId ? seed.correctedSampleId : seed.sampleId;
}

async function expandSlot(args: {
  seed: ExpansionSeed;
  slot: number;
  samples: ReadonlyMap<string, Sample>;
  input: Input;
  generators: EndpointPool;
  validators: EndpointPool | undefined;
  generatorPrompt: PromptTemplate;
  validatorPrompt: PromptTemplate;
  calls: CallContext;
}): Promise<SlotOutcome> {
  const { seed, slot, input } = args;
  const original = args.samples.get(seed.sampleId)!;
  const prediction = storedPrediction(seed);
  const predicted = relabeledSample(original, prediction);
  // LABEL_WRONG: the prediction was right and the label wrong; PRED_WRONG: the other way round.
  const [correct, incorrect] =
    seed.verdict === 'label_wrong' ? [predicted.target, original.target] : [original.target, predicted.target];
  const focus = scenarioFocusFor({
    seed: input.seed,
    iteration: input.iteration,
    seedSampleId: seed.sampleId,
    k: slot,
  });
  const userTurns = original.messages.filter((m) => m.role === 'user').length;
  const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [
    {
      role: 'system',
      content: renderTemplate(args.generatorPrompt.system, {
        date: conversationDate(original),
        tools: promptTools(original.tools),
      }),
    },
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
        turn_guidance:
          userTurns > 1 ? 'make the new sample a single-turn request' : 'make the new sample a multi-turn dialogue',
      }),
    },
  ];
  // Every slot records how it was drawn: the sampling sent and both prompt versions (none for a skipped LLM tier).
  const base = {
    seedSampleId: seed.sampleId,
    k: slot,
    scenarioFocus: focus,
    model: input.generator.model,
    promptVersion: args.generatorPrompt.version,
    validatorPromptVersion: args.validators && input.validator ? args.validatorPrompt.version : null,
    temperature: input.temperature,
    topP: input.topP,
    topK: input.topK,
    presencePenalty: input.presencePenalty,
    maxTokens: input.maxTokens,
  };
  const maxAttempts = input.maxAttempts;
  let reply: StructuredResult<GeneratorOutput> | undefined;
  let attempts = 0;
  while (attempts < maxAttempts) {
    attempts++;
    const attempt = attempts;
    const call = {
      purpose: 'expand',
      role: 'generator',
      model: input.generator.model,
      loopName: input.loopName,
      iteration: input.iteration,
      key: [seed.sampleId, `k${slot}`, `a${attempt}`],
    } as const;
    const current: StructuredResult<GeneratorOutput> = await structuredCall(
      args.generators,
      args.calls,
      call,
      `expansion ${slot} of seed ${seed.sampleId}`,
      {
        messages,
        schema: GeneratorOutput,
        name: 'generated_sample',
        temperature: input.temperature,
        topP: input.topP,
        topK: input.topK,
        presencePenalty: input.presencePenalty,
        maxTokens: input.maxTokens,
        seed: requestSeed('expand', input.seed, input.iteration, seed.sampleId, slot, attempt),
      },
    );
    reply = current;
    if (current.ok) break;
  }
  /** A slot that yields no sample: why, with the generator's raw output kept as data. */
  const notAccepted = (
    status: Exclude<ExpansionStatus, 'accepted' | 'duplicate'>,
    reason: string,
    rawOutput: string | null,
  ): SlotOutcome => ({
    row: { ...base, status, sampleId: null, attempts, rawOutput, rejectionReason: reason },
  });
  if (!reply?.ok) return notAccepted('generation_failed', reply?.reason ?? 'no reply', reply?.raw ?? null);
  const generated = reply.value;
  const raw = reply.raw;
  const byWireName = new Map(original.tools.map((tool) => [wireToolName(tool.name), tool.name]));
  const toolName = (name: string) => byWireName.get(wireToolName(name)) ?? name;
  const turns = generated.conversation.map((turn) => generatedTurnMessage(turn, toolName));
  // The rule tier over the whole sample: the history's calls and their results (each violation names its turn), the
  // target's calls, and a text answer only where the seed's own answer is text (EDDE mirrors the seed's target).
  const violations = validateConversation(turns, original.tools).map((v) => `${v.field}: ${v.message}`);
  const textAnswer = generated.tool_calls.length === 0 ? (generated.content ?? '') : undefined;
  if (textAnswer !== undefined && correct.kind !== 'text')
    violations.push("content: a text answer, but the seed's correct answer is tool calls; answer with tool_calls");
  violations.push(...validateCalls(generated.tool_calls, original.tools).map((v) => `${v.field}: ${v.message}`));
  if (violations.length > 0) return notAccepted('rejected_rule', violations.join('; '), raw);

  const target: Target =
    textAnswer !== undefined
      ? { kind: 'text', text: textAnswer }
      : {
          kind: 'calls',
          calls: generated.tool_calls.map((c) => ({ name: toolName(c.name), arguments: c.arguments })),
        };
  const candidate = Sample.safeParse({
    tools: original.tools,
    messages: [...original.messages.filter((m) => m.role === 'system'), ...turns],
    target,
  });
  if (!candidate.success)
    return notAccepted('rejected_rule', candidate.error.issues[0]?.message ?? 'invalid sample', raw);
  if (args.validators && input.validator) {
    const validator = input.validator;
    const verdict = await validate({ ...args, validator, sample: candidate.data });
    if (!verdict.ok || verdict.value.verdict !== 'CORRECT') {
      const reason = verdict.ok
        ? `validation judge: ${verdict.value.error_analysis || 'INCORRECT'}`
        : `validation judge reply unusable: ${verdict.reason}`;
      return notAccepted('rejected_judge', reason, raw);
    }
  }
  let stored: StoredSample;
  try {
    stored = encodeSample(candidate.data);
  } catch (err) {
    return notAccepted('rejected_rule', (err as Error).message, raw);
  }
  return {
    row: { ...base, status: 'accepted', sampleId: stored.id, attempts, rawOutput: raw, rejectionReason: null },
    accepted: stored,
  };
}

async function validate(args: {
  sample: Sample;
  seed: ExpansionSeed;
  slot: number;
  input: Input;
  validator: NonNullable<Input['validator']>;
  validators: EndpointPool | undefined;
  validatorPrompt: PromptTemplate;
  calls: CallContext;
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
    const call = {
      purpose: 'validate',
      role: 'judge',
      model: args.validator.model,
      loopName: args.input.loopName,
      iteration: args.input.iteration,
      key: [args.seed.sampleId, `k${args.slot}`, `v${attempt}`],
    } as const;
    const what = `validation of expansion ${args.slot} of seed ${args.seed.sampleId}`;
    reply = await structuredCall(args.validators!, args.calls, call, what, {
      messages,
      schema: ValidatorOutput,
      name: 'sample_validation',
      temperature: 0,
    });
  }
  if (!reply) throw new Error('unreachable: the validation loop runs at least once');
  return reply;
}
