import { setMaxListeners } from 'node:events';
import { Context } from '@temporalio/activity';
import type OpenAI from 'openai';
import { parseJson } from '../core/json.js';
import { JudgeOutput, VERDICT_OF_JUDGE_TOKEN, type JudgeVerdict } from '../core/schemas/model-io.js';
import type { Sample } from '../core/schemas/sample.js';
import { majorityVerdict } from '../core/stages/consensus.js';
import { predictionFrom, relabeledSample } from '../core/stages/relabel.js';
import { recordOrigins } from '../db/queries/origins.js';
import { getSamples, insertSamples } from '../db/queries/samples.js';
import { insertJudgements, type JudgeItem, type JudgementRow, type ModelCallRow, pendingJudgeItems, recordModelCalls, type SeqRange, getStageBatch, batchCounts } from '../db/queries/stages.js';
import { decodeSample, encodeSample } from '../db/sample-codec.js';
import { withTransaction } from '../db/tx.js';
import type { ActivityDeps } from './deps.js';
import type { EndpointPool } from './llm/endpoint-pool.js';
import { toApplicationFailure } from './llm/failures.js';
import { pickPrompt, type PromptTemplate, renderTemplate } from './llm/prompts.js';
import type { ModelEndpoints } from './llm/registry.js';
import { conversationDate, promptConversation, promptResponse, promptTarget, promptTools } from './llm/render.js';
import { completeStructured, requestSeed } from './llm/structured.js';

export interface JudgeBatchInput {
  loopName: string;
  iteration: number;
  /** The seq range to work through, or the number of a batch planned by `planStageBatches`. */
  batch: SeqRange | { batchNo: number };
  judge: ModelEndpoints & { model: string };
  /** The loop's seed: sampled votes derive their request seed from it, so a retried vote draws the same. */
  seed?: number;
  /** Independent votes per mismatch. @default 3 */
  votes?: number;
  /** Sampling temperature when votes > 1 (one vote is greedy). @default 0.7 */
  voteTemperature?: number;
  /** Extra attempts for a vote whose reply does not fit the schema. @default 2 */
  parseRetries?: number;
  promptVersion?: string;
  /** @default 32 */
  pageSize?: number;
}

export interface JudgeBatchResult {
  judged: number;
  byVerdict: Partial<Record<JudgementRow['verdict'], number>>;
  relabeled: number;
}

interface Vote {
  ok: boolean;
  verdict?: JudgeVerdict;
  token?: string;
  errorAnalysis?: string;
  correctApproach?: string;
  raw: string;
  reason?: string;
  attempts: number;
}

/**
 * Judgement-Guided Label Verification over one batch of this iteration's mismatches: N votes from the judge with the
 * 4-way verdict as structured output, consensus from the votes actually cast, each vote's raw reply stored. A reply
 * that does not fit the schema is retried up to a cap, then counts as a failed vote; with no valid vote the row says
 * `judge_failed` and keeps the raw texts. LABEL_WRONG writes the corrected sample (label ← prediction) with lineage to
 * the original. Parse errors from the probe need no judge: the prediction is wrong by construction.
 *
 * Durability as the probe's: what is left is read from the table, so a retry writes nothing twice.
 */
export function createJudgeActivities(deps: ActivityDeps) {
  return {
    async judgeBatch(input: JudgeBatchInput): Promise<JudgeBatchResult> {
      const context = Context.current();
      const signal = context.cancellationSignal;
      // Every in-flight request listens on this one signal; hundreds at once is expected, not a leak.
      setMaxListeners(0, signal);
      const judges = deps.llm.pool('judge', input.judge);
      const template = pickPrompt(deps.prompts, 'judge', input.promptVersion);
      const key = { loopName: input.loopName, iteration: input.iteration };
      const batch = 'batchNo' in input.batch ? await getStageBatch(deps.pool, { ...key, stage: 'judge', batchNo: input.batch.batchNo }) : input.batch;
      const result: JudgeBatchResult = { judged: 0, byVerdict: {}, relabeled: 0 };
      let cursor = batch.afterSeq;
      for (;;) {
        const items = await pendingJudgeItems(deps.pool, { ...key, afterSeq: cursor, lastSeq: batch.lastSeq, limit: input.pageSize ?? 32 });
        if (items.length === 0) break;
        const samples = new Map((await getSamples(deps.pool, items.map((i) => i.sampleId))).map((s) => [s.id, decodeSample(s)]));
        // Settled before writing: finished judgements are kept when one fails, and none is left running.
        const settled = await Promise.allSettled(items.map((item) => judgeOne({ item, sample: samples.get(item.sampleId)!, input, judges, template, signal })));
        const judged = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
        await withTransaction(deps.pool, async (tx) => {
          const corrections = judged.flatMap((j) => (j.corrected ? [j.corrected] : []));
          await insertSamples(tx, corrections.map((c) => c.stored));
          await recordOrigins(
            tx,
            corrections.map((c) => ({
              sampleId: c.stored.id,
              kind: 'label_correction' as const,
              parentSampleId: c.parentId,
              loopName: input.loopName,
              iteration: input.iteration,
              detail: { verdict: 'label_wrong', errorAnalysis: c.errorAnalysis },
            })),
          );
          await insertJudgements(tx, key, judged.map((j) => j.row));
          await recordModelCalls(tx, judged.flatMap((j) => j.ledger));
        });
        for (const { row } of judged) {
          result.judged++;
          result.byVerdict[row.verdict] = (result.byVerdict[row.verdict] ?? 0) + 1;
          if (row.correctedSampleId) result.relabeled++;
        }
        const failure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
        if (failure) throw failure.reason;
        cursor = items[items.length - 1]!.seq;
        context.heartbeat({ lastSeq: items[items.length - 1]!.seq, ...result });
      }
      // Counted from the table, so a batch retried after writing part of its work still reports all of it.
      const { relabeled = 0, ...byVerdict } = await batchCounts(deps.pool, { ...key, ...batch, stage: 'judge' });
      return { judged: Object.values(byVerdict).reduce((sum, n) => sum + n, 0), byVerdict, relabeled };
    },
  };
}

async function judgeOne(args: {
  item: JudgeItem;
  sample: Sample;
  input: JudgeBatchInput;
  judges: EndpointPool;
  template: PromptTemplate;
  signal: AbortSignal;
}): Promise<{ row: JudgementRow; ledger: ModelCallRow[]; corrected?: { stored: ReturnType<typeof encodeSample>; parentId: string; errorAnalysis: string } }> {
  const { item, sample, input } = args;
  const parsedCalls = item.parsedCallsJson ? parseJson(item.parsedCallsJson) : undefined;
  const prediction = predictionFrom(parsedCalls?.ok ? parsedCalls.value : null, item.rawOutput);
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
      ledger: [],
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
        response_2: prediction.kind === 'calls' ? promptResponse({ calls: prediction.calls }) : promptResponse({ text: prediction.text }),
      }),
    },
  ];
  const voteCount = Math.max(1, input.votes ?? 3);
  const ledger: ModelCallRow[] = [];
  const votes = await Promise.all(
    Array.from({ length: voteCount }, (_, index) => castVote({ ...args, messages, voteIndex: index, voteCount, ledger })),
  );
  const { verdict, consensus } = majorityVerdict(votes.map((v) => v.verdict));
  const agreeing = votes.find((v) => v.ok && v.verdict === verdict);
  const corrected =
    verdict === 'label_wrong' && consensus ? { stored: encodeSample(relabeledSample(sample, prediction)), parentId: item.sampleId, errorAnalysis: agreeing?.errorAnalysis ?? '' } : undefined;
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
    ledger,
    ...(corrected ? { corrected } : {}),
  };
}

async function castVote(args: {
  item: JudgeItem;
  input: JudgeBatchInput;
  judges: EndpointPool;
  messages: OpenAI.Chat.ChatCompletionMessageParam[];
  voteIndex: number;
  voteCount: number;
  ledger: ModelCallRow[];
  signal: AbortSignal;
}): Promise<Vote> {
  const { input } = args;
  const maxAttempts = 1 + (input.parseRetries ?? 2);
  let last: Vote = { ok: false, raw: '', reason: 'no attempt', attempts: 0 };
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const outcome = await args.judges.withEndpoint(async (endpoint) => {
      try {
        const reply = await completeStructured(endpoint, {
          model: input.judge.model,
          messages: args.messages,
          schema: JudgeOutput,
          name: 'judge_verdict',
          temperature: args.voteCount > 1 ? (input.voteTemperature ?? 0.7) : 0,
          seed: requestSeed('judge', input.seed ?? 0, input.iteration, args.item.sampleId, args.voteIndex, attempt),
          signal: args.signal,
        });
        args.ledger.push({
          callKey: `judge:${input.loopName}:${input.iteration}:${args.item.sampleId}:v${args.voteIndex}:a${attempt}`,
          loopName: input.loopName,
          iteration: input.iteration,
          stage: 'judge',
          role: 'judge',
          model: input.judge.model,
          endpoint: endpoint.baseURL,
          promptTokens: reply.usage.promptTokens,
          completionTokens: reply.usage.completionTokens,
          latencyMs: reply.latencyMs,
          ok: reply.ok,
        });
        return reply;
      } catch (err) {
        throw toApplicationFailure(err, `judge vote for sample ${args.item.sampleId} on ${endpoint.baseURL}`);
      }
    }, args.signal);
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
