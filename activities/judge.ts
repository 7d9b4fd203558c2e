import type OpenAI from 'openai';
import { JudgeBatchInput, parseInput } from '../core/inputs.js';
import { JudgeOutput, VERDICT_OF_JUDGE_TOKEN, type VoteVerdict } from '../core/schemas/model-io.js';
import type { Sample } from '../core/schemas/sample.js';
import { majorityVerdict } from '../core/stages/consensus.js';
import { relabeledSample, storedPrediction } from '../core/stages/relabel.js';
import type { JudgeVerdict } from '../core/vocabulary.js';
import { insertJudgements, type JudgeItem, type JudgementRow, pendingJudgeItems } from '../db/queries/judgements.js';
import { recordModelCalls } from '../db/queries/model-calls.js';
import { recordOrigins } from '../db/queries/origins.js';
import { insertSamples, type StoredSample } from '../db/queries/samples.js';
import { encodeSample } from '../db/sample-codec.js';
import type { ActivityDeps } from './deps.js';
import { type CallContext, Ledger, structuredCall } from './llm/calls.js';
import type { EndpointPool } from './llm/endpoint-pool.js';
import { pickPrompt, type PromptTemplate, renderTemplate } from './llm/prompts.js';
import { conversationDate, promptConversation, promptResponse, promptTarget, promptTools } from './llm/render.js';
import { requestSeed } from './llm/structured.js';
import { runStageBatch } from './stage-batch.js';

export interface JudgeBatchResult {
  judged: number;
  byVerdict: Partial<Record<JudgeVerdict, number>>;
  relabeled: number;
}

interface Vote {
  ok: boolean;
  verdict?: VoteVerdict;
  token?: string;
  errorAnalysis?: string;
  correctApproach?: string;
  raw: string;
  reason?: string;
  attempts: number;
}

interface Judged {
  row: JudgementRow;
  corrected?: { stored: StoredSample; parentId: string; errorAnalysis: string };
}

type Input = ReturnType<typeof JudgeBatchInput.parse>;

/**
 * Judgement-Guided Label Verification over one batch of this iteration's mismatches: N votes from the judge with the
 * 4-way verdict as structured output, consensus a majority of the votes requested (config: or of the valid ones), each vote's raw reply stored. A reply
 * that does not fit the schema is retried up to a cap, then counts as a failed vote; with no valid vote the row says
 * `judge_failed` and keeps the raw texts. LABEL_WRONG writes the corrected sample (label ← prediction) with lineage to
 * the original. Parse errors from the probe need no judge: the prediction is wrong by construction.
 *
 * Durability and cancellation: see {@link runStageBatch}.
 */
export function createJudgeActivities(deps: ActivityDeps) {
  return {
    async judgeBatch(rawInput: JudgeBatchInput): Promise<JudgeBatchResult> {
      const input = parseInput(JudgeBatchInput, rawInput, 'judgeBatch');
      const judges = deps.llm.pool('judge', input.judge);
      const template = pickPrompt(deps.prompts, 'judge', input.promptVersion);
      const key = { loopName: input.loopName, iteration: input.iteration };
      const ledger = new Ledger();

      const { relabeled = 0, ...byVerdict } = await runStageBatch(deps.pool, {
        stage: 'judge',
        input,
        pending: (range) => pendingJudgeItems(deps.pool, { ...key, ...range }),
        work: (items, samples, signal) =>
          items.map((item) =>
            judgeOne({ item, sample: samples.get(item.sampleId)!, input, judges, template, calls: { ledger, signal } }),
          ),
        write: async (tx, judged) => {
          const corrections = judged.flatMap((j) => (j.corrected ? [j.corrected] : []));
          await insertSamples(
            tx,
            corrections.map((c) => c.stored),
          );
          await recordOrigins(
            tx,
            corrections.map((c) => ({
              sampleId: c.stored.id,
              kind: 'label_correction' as const,
              parentSampleId: c.parentId,
              ...key,
              detail: { verdict: 'label_wrong', errorAnalysis: c.errorAnalysis },
            })),
          );
          await insertJudgements(
            tx,
            key,
            judged.map((j) => j.row),
          );
          await recordModelCalls(tx, ledger.drain());
        },
        tally: ({ row }) => ({ judged: 1, [row.verdict]: 1, ...(row.correctedSampleId ? { relabeled: 1 } : {}) }),
      });
      return { judged: Object.values(byVerdict).reduce((sum, n) => sum + n, 0), byVerdict, relabeled };
    },
  };
}

async function judgeOne(args: {
  item: JudgeItem;
  sample: Sample;
  input: Input;
  judges: EndpointPool;
  template: PromptTemplate;
  calls: CallContext;
}): Promise<Judged> {
  const { item, sample, input } = args;
  const prediction = storedPrediction(item);
  if (item.outcome === 'parse_error') {
    return {
      row: {
        sampleId: item.sampleId,
        verdict: 'pred_wrong',
        consensus: true,
        voteCount: 0,
        votes: [],
        errorAnalysis: `The model output could not be parsed as tool calls: ${item.error ?? 'malformed output'}.`,
        correctApproach: 'Emit well-formed tool calls that match the reference.',
        correctedSampleId: null,
        model: 'rule',
        promptVersion: 'rule',
      },
    };
  }
  const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [
    { role: 'system', content: renderTemplate(args.template.system, { tools: promptTools(sample.tools) }) },
    {
      role: 'user',
      content: renderTemplate(args.template.user, {
        date: conversationDate(sample),
        conversation: promptConversation(sample.messages),
        response_1: promptTarget(sample.target),
        response_2:
          prediction.kind === 'calls'
            ? promptResponse({ calls: prediction.calls })
            : promptResponse({ text: prediction.text }),
      }),
    },
  ];
  const voteCount = input.votes;
  const votes = await Promise.all(
    Array.from({ length: voteCount }, (_, index) => castVote({ ...args, messages, voteIndex: index, voteCount })),
  );
  const { verdict, consensus } = majorityVerdict(
    votes.map((v) => v.verdict),
    input.consensusOver,
  );
  const agreeing = votes.find((v) => v.ok && v.verdict === verdict);
  const corrected =
    verdict === 'label_wrong' && consensus
      ? {
          stored: encodeSample(relabeledSample(sample, prediction)),
          parentId: item.sampleId,
          errorAnalysis: agreeing?.errorAnalysis ?? '',
        }
      : undefined;
  return {
    row: {
      sampleId: item.sampleId,
      verdict: verdict ?? 'judge_failed',
      consensus,
      voteCount,
      votes,
      errorAnalysis: agreeing?.errorAnalysis ?? null,
      correctApproach: agreeing?.correctApproach ?? null,
      correctedSampleId: corrected?.stored.id ?? null,
      model: input.judge.model,
      promptVersion: args.template.version,
    },
    ...(corrected ? { corrected } : {}),
  };
}

/** One vote, retried while its reply does not fit the schema (up to `parseRetries` more times). */
async function castVote(args: {
  item: JudgeItem;
  input: Input;
  judges: EndpointPool;
  messages: OpenAI.Chat.ChatCompletionMessageParam[];
  voteIndex: number;
  voteCount: number;
  calls: CallContext;
}): Promise<Vote> {
  const { input } = args;
  const maxAttempts = 1 + input.parseRetries;
  let last: Vote = { ok: false, raw: '', reason: 'no attempt', attempts: 0 };
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const call = {
      purpose: 'judge',
      role: 'judge',
      model: input.judge.model,
      loopName: input.loopName,
      iteration: input.iteration,
      key: [args.item.sampleId, `v${args.voteIndex}`, `a${attempt}`],
    } as const;
    const outcome = await structuredCall(args.judges, args.calls, call, `judge vote for sample ${args.item.sampleId}`, {
      messages: args.messages,
      schema: JudgeOutput,
      name: 'judge_verdict',
      temperature: args.voteCount > 1 ? input.voteTemperature : 0,
      seed: requestSeed('judge', input.seed, input.iteration, args.item.sampleId, args.voteIndex, attempt),
    });
    if (outcome.ok) {
      return {
        ok: true,
        token: outcome.value.verdict,
        verdict: VERDICT_OF_JUDGE_TOKEN[outcome.value.verdict],
        errorAnalysis: outcome.value.error_analysis,
        correctApproach: outcome.value.correct_approach,
        raw: outcome.raw,
        attempts: attempt,
      };
    }
    last = { ok: false, raw: outcome.raw, reason: outcome.reason, attempts: attempt };
  }
  return last;
}
