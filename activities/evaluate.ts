import { setMaxListeners } from 'node:events';
import { ApplicationFailure, Context } from '@temporalio/activity';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type OpenAI from 'openai';
import { bfclCheckKind, categoryFromId, compileBfclQuestion, decodeBfclResult, scoreBfcl } from '../core/checker/index.js';
import { bfclAnswerFromRecord, bfclQuestionFromRecord, type BfclAnswer, type BfclQuestion } from '../core/formats/index.js';
import type { JsonValue } from '../core/json.js';
import { bfclV3Summary, type CategoryScore } from '../core/stages/bfcl-overall.js';
import { ErrorType } from '../core/errors.js';
import { getEvaluations, type ModelCallRow, recordModelCalls, upsertEvaluations } from '../db/queries/stages.js';
import { readRecords } from '../client/io/read-records.js';
import type { ActivityDeps } from './deps.js';
import { withRequestSignal } from './llm/abort.js';
import { toApplicationFailure } from './llm/failures.js';
import type { ModelEndpoints } from './llm/registry.js';
import { openAiMessages, openAiTools } from './llm/render.js';

/** Relative eval-set paths are resolved against the project root (where `data/bfcl/` lives). */
const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface EvalFile {
  /** A BFCL question file (`BFCL_v4_<category>.json`). */
  questions: string;
  /** Its possible answers; not needed for irrelevance categories. */
  answers?: string;
}

export interface EvaluateFileInput {
  loopName: string;
  iteration: number;
  evalSet: string;
  file: EvalFile;
  policy: ModelEndpoints & { model: string };
  /** @default 1024 */
  maxTokens?: number;
}

/**
 * Scores the deployed policy on one BFCL file of a held-out set with the core checker (BFCL AST semantics), and
 * writes per-category accuracy. The whole file is re-scored on a retry (the model is greedy, the write an upsert), so
 * nothing is counted twice. Heartbeats the number of questions answered.
 */
export function createEvaluateActivities(deps: ActivityDeps) {
  return {
    async evaluateFile(input: EvaluateFileInput): Promise<CategoryScore[]> {
      const context = Context.current();
      const signal = context.cancellationSignal;
      // Every in-flight request listens on this one signal; hundreds at once is expected, not a leak.
      setMaxListeners(0, signal);
      const endpoints = deps.llm.pool('policy', input.policy);
      const questionsFile = path.resolve(PROJECT_ROOT, input.file.questions);
      const answers = new Map<string, BfclAnswer>();
      if (input.file.answers) {
        for await (const item of readRecords(path.resolve(PROJECT_ROOT, input.file.answers))) {
          if (item.kind === 'record') {
            const answer = bfclAnswerFromRecord(item.value);
            if (answer.ok) answers.set(answer.value.id, answer.value);
          }
        }
      }
      const questions: BfclQuestion[] = [];
      for await (const item of readRecords(questionsFile)) {
        if (item.kind === 'rejection') throw ApplicationFailure.nonRetryable(`${item.rejection.file}:${item.rejection.line}: ${item.rejection.reason}`, ErrorType.ConfigInvalid);
        const question = bfclQuestionFromRecord(item.value);
        if (!question.ok) throw ApplicationFailure.nonRetryable(`${questionsFile}:${item.line}: ${question.rejection.field}: ${question.rejection.reason}`, ErrorType.ConfigInvalid);
        questions.push(question.value);
      }
      const scores = new Map<string, CategoryScore>();
      const ledger: ModelCallRow[] = [];
      let answered = 0;
      await Promise.all(
        questions.map((question) =>
          endpoints.withEndpoint(async (endpoint) => {
            const category = categoryFromId(question.id);
            const kind = bfclCheckKind(category);
            const compiled = kind ? compileBfclQuestion({ kind, functions: question.functions, possibleAnswer: answers.get(question.id)?.calls }) : undefined;
            if (!compiled?.ok) {
              throw ApplicationFailure.nonRetryable(`${questionsFile}: ${question.id} cannot be scored: ${compiled ? compiled.error : `category ${category} is not supported`}`, ErrorType.ConfigInvalid);
            }
            const started = performance.now();
            let completion: OpenAI.Chat.ChatCompletion;
            try {
              completion = await withRequestSignal(signal, (requestSignal) => endpoint.client.chat.completions.create(
                {
                  model: input.policy.model,
                  messages: openAiMessages(question.messages) as unknown as OpenAI.Chat.ChatCompletionMessageParam[],
                  tools: openAiTools(question.functions) as unknown as OpenAI.Chat.ChatCompletionTool[],
                  temperature: 0,
                  max_tokens: input.maxTokens ?? 1024,
                },
                { signal: requestSignal },
              ));
            } catch (err) {
              throw toApplicationFailure(err, `evaluation of ${question.id} on ${endpoint.baseURL}`);
            }
            const message = completion.choices[0]?.message;
            const toolCalls = message?.tool_calls as unknown as JsonValue[] | undefined;
            const result: JsonValue = toolCalls && toolCalls.length > 0 ? toolCalls : (message?.content ?? '');
            const verdict = scoreBfcl(compiled.question, decodeBfclResult(result));
            const score = scores.get(category) ?? { category, correct: 0, total: 0 };
            score.total++;
            if (verdict.valid) score.correct++;
            scores.set(category, score);
            ledger.push({
              callKey: `evaluate:${input.loopName}:${input.iteration}:${input.evalSet}:${question.id}`,
              loopName: input.loopName,
              iteration: input.iteration,
              stage: 'evaluate',
              role: 'policy',
              model: input.policy.model,
              endpoint: endpoint.baseURL,
              promptTokens: completion.usage?.prompt_tokens ?? 0,
              completionTokens: completion.usage?.completion_tokens ?? 0,
              latencyMs: Math.round(performance.now() - started),
              ok: true,
            });
            answered++;
            if (answered % 50 === 0) context.heartbeat({ answered, of: questions.length });
          }, signal),
        ),
      );
      const key = { loopName: input.loopName, iteration: input.iteration };
      const rows = [...scores.values()].map((s) => ({ evalSet: input.evalSet, ...s, accuracy: s.total === 0 ? 0 : s.correct / s.total }));
      await upsertEvaluations(deps.pool, key, rows);
      await recordModelCalls(deps.pool, ledger);
      return [...scores.values()];
    },

    /**
     * Adds BFCL v3's summary rows (`non_live`, `live`, `overall`) for an eval set from its category rows, after every
     * file of the set was evaluated. Returns the overall accuracy (the value the UI shows as LoopAccuracy).
     */
    async summarizeEvaluation(input: { loopName: string; iteration: number; evalSet: string }): Promise<{ overall: number | null }> {
      const key = { loopName: input.loopName, iteration: input.iteration };
      const rows = (await getEvaluations(deps.pool, { ...key, evalSet: input.evalSet })).filter((r) => !['non_live', 'live', 'overall'].includes(r.category));
      const summary = bfclV3Summary(rows);
      const total = rows.reduce((sum, r) => sum + r.total, 0);
      const correct = rows.reduce((sum, r) => sum + r.correct, 0);
      await upsertEvaluations(
        deps.pool,
        key,
        (['nonLive', 'live', 'overall'] as const).flatMap((group) =>
          summary[group] === undefined ? [] : [{ evalSet: input.evalSet, category: group === 'nonLive' ? 'non_live' : group, total, correct, accuracy: summary[group] }],
        ),
      );
      return { overall: summary.overall ?? null };
    },
  };
}
