import { setMaxListeners } from 'node:events';
import { ApplicationFailure, Context } from '@temporalio/activity';
import {
  bfclCheckKind,
  categoryFromId,
  compileBfclQuestion,
  decodeBfclResult,
  scoreBfcl,
} from '../core/checker/index.js';
import { ErrorType } from '../core/errors.js';
import {
  bfclAnswerFromRecord,
  bfclQuestionFromRecord,
  type BfclAnswer,
  type BfclQuestion,
} from '../core/formats/index.js';
import { EvaluateFileInput, parseInput, SummarizeEvaluationInput } from '../core/inputs.js';
import type { Sample } from '../core/schemas/sample.js';
import { bfclV3Summary, type CategoryScore } from '../core/stages/bfcl-overall.js';
import { readRecords } from '../datasets/read-records.js';
import { getEvaluations, upsertEvaluations } from '../db/queries/evaluations.js';
import { recordModelCalls } from '../db/queries/model-calls.js';
import { projectPath } from '../services/paths.js';
import type { ActivityDeps } from './deps.js';
import { keepHeartbeating } from './heartbeat.js';
import { callModel, Ledger } from './llm/calls.js';
import { policyChat } from './llm/policy-chat.js';

/**
 * Scores the deployed policy on one BFCL file of a held-out set with the core checker (BFCL AST semantics), and
 * writes per-category accuracy. Each question is shown as the probe shows a sample (`policyChat`: one prompt
 * everywhere), and its reply decoded as BFCL decodes it (`<tool_call>` blocks in the text, or `tool_calls`). The whole file is re-scored on a retry (the model is greedy, the write an upsert), so
 * nothing is counted twice. A response body that is JSON but no chat completion counts as a wrong answer (ledger ok =
 * false, no tokens). Heartbeats the number of questions answered.
 */
export function createEvaluateActivities(deps: ActivityDeps) {
  return {
    async evaluateFile(rawInput: EvaluateFileInput): Promise<CategoryScore[]> {
      const input = parseInput(EvaluateFileInput, rawInput, 'evaluateFile');
      const context = Context.current();
      const signal = context.cancellationSignal;
      // Every in-flight request listens on this one signal; hundreds at once is expected, not a leak.
      setMaxListeners(0, signal);
      const endpoints = deps.llm.pool('policy', input.policy);
      // Relative eval-set paths are resolved against the project root, where `data/bfcl/` lives.
      const questionsFile = projectPath(input.file.questions);
      const answers = new Map<string, BfclAnswer>();
      if (input.file.answers) {
        for await (const item of readRecords(projectPath(input.file.answers))) {
          if (item.kind === 'record') {
            const answer = bfclAnswerFromRecord(item.value);
            if (answer.ok) answers.set(answer.value.id, answer.value);
          }
        }
      }
      const questions: BfclQuestion[] = [];
      for await (const item of readRecords(questionsFile)) {
        if (item.kind === 'rejection')
          throw ApplicationFailure.nonRetryable(
            `${item.rejection.file}:${item.rejection.line}: ${item.rejection.reason}`,
            ErrorType.ConfigInvalid,
          );
        const question = bfclQuestionFromRecord(item.value);
        if (!question.ok)
          throw ApplicationFailure.nonRetryable(
            `${questionsFile}:${item.line}: ${question.rejection.field}: ${question.rejection.reason}`,
            ErrorType.ConfigInvalid,
          );
        questions.push(question.value);
      }
      const scores = new Map<string, CategoryScore>();
      const ledger = new Ledger();
      let answered = 0;
      // Heartbeats every second (the questions answered so far) while the questions are out, however slow the server.
      await keepHeartbeating(
        () => ({ answered, of: questions.length }),
        () =>
          Promise.all(
            questions.map(async (question) => {
              const category = categoryFromId(question.id);
              const kind = bfclCheckKind(category);
              const compiled = kind
                ? compileBfclQuestion({
                    kind,
                    functions: question.functions,
                    possibleAnswer: answers.get(question.id)?.calls,
                  })
                : undefined;
              if (!compiled?.ok) {
                throw ApplicationFailure.nonRetryable(
                  `${questionsFile}: ${question.id} cannot be scored: ${compiled ? compiled.error : `category ${category} is not supported`}`,
                  ErrorType.ConfigInvalid,
                );
              }
              const call = {
                purpose: 'evaluate',
                role: 'policy',
                model: input.policy.model,
                loopName: input.loopName,
                iteration: input.iteration,
                key: [input.evalSet, question.id],
              } as const;
              const what = `evaluation of ${question.id}`;
              // The question as a sample, shown to the policy as the probe shows a training sample (the prompt never reads
              // the target; the possible answers stay with the checker).
              const sample: Sample = {
                tools: question.functions,
                messages: question.messages,
                target: { kind: 'text' },
              };
              await callModel(endpoints, signal, what, async (endpoint) => {
                const reply = await policyChat(endpoint, {
                  model: input.policy.model,
                  sample,
                  maxTokens: input.maxTokens,
                  logprobs: false,
                  signal,
                });
                // The evaluation has no per-sample data to record a refusal in: the set itself cannot be served.
                if (reply.kind === 'rejected')
                  throw ApplicationFailure.nonRetryable(
                    `${what} on ${endpoint.baseURL}: HTTP ${reply.status}: ${reply.message}`,
                    ErrorType.ModelRequestRejected,
                  );
                // A body that is JSON but no chat completion is this question's answer, scored as wrong (BFCL scores an
                // answer it cannot decode so): asking again would get the same body, and failing the file would lose the
                // set's other answers on every retry.
                const valid =
                  reply.kind === 'reply' &&
                  scoreBfcl(compiled.question, decodeBfclResult(reply.toolCalls ?? reply.content ?? '')).valid;
                if (reply.kind === 'invalid')
                  context.log.warn(`${what} on ${endpoint.baseURL}: invalid response, scored as wrong: ${reply.error}`);
                const score = scores.get(category) ?? { category, correct: 0, total: 0 };
                score.total++;
                if (valid) score.correct++;
                scores.set(category, score);
                ledger.record(call, {
                  endpoint: endpoint.baseURL,
                  usage: reply.kind === 'reply' ? reply.usage : undefined,
                  latencyMs: reply.latencyMs,
                  ok: reply.kind === 'reply',
                });
              });
              answered++;
            }),
          ),
      );
      const key = { loopName: input.loopName, iteration: input.iteration };
      const rows = [...scores.values()].map((s) => ({
        evalSet: input.evalSet,
        ...s,
        accuracy: s.total === 0 ? 0 : s.correct / s.total,
      }));
      await upsertEvaluations(deps.pool, key, rows);
      await recordModelCalls(deps.pool, ledger.drain());
      return [...scores.values()];
    },

    /**
     * Adds BFCL v3's summary rows (`non_live`, `live`, `overall`) for an eval set from its category rows, after every
     * file of the set was evaluated. Returns the overall accuracy (the value the UI shows as LoopAccuracy).
     */
    async summarizeEvaluation(rawInput: SummarizeEvaluationInput): Promise<{ overall: number | null }> {
      const input = parseInput(SummarizeEvaluationInput, rawInput, 'summarizeEvaluation');
      const key = { loopName: input.loopName, iteration: input.iteration };
      const rows = (await getEvaluations(deps.pool, { ...key, evalSet: input.evalSet })).filter(
        (r) => !['non_live', 'live', 'overall'].includes(r.category),
      );
      const summary = bfclV3Summary(rows);
      const total = rows.reduce((sum, r) => sum + r.total, 0);
      const correct = rows.reduce((sum, r) => sum + r.correct, 0);
      await upsertEvaluations(
        deps.pool,
        key,
        (['nonLive', 'live', 'overall'] as const).flatMap((group) =>
          summary[group] === undefined
            ? []
            : [
                {
                  evalSet: input.evalSet,
                  category: group === 'nonLive' ? 'non_live' : group,
                  total,
                  correct,
                  accuracy: summary[group],
                },
              ],
        ),
      );
      return { overall: summary.overall ?? null };
    },
  };
}
