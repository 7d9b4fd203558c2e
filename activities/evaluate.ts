import { setMaxListeners } from 'node:events';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { bfclCheckKind, categoryFromId, compileBfclQuestion, scoreBfclResult } from '../core/checker/index.js';
import { ErrorType } from '../core/errors.js';
import {
  bfclAnswerFromRecord,
  bfclQuestionFromRecord,
  type BfclAnswer,
  type BfclQuestion,
} from '../core/formats/index.js';
import { EvaluateFileInput, EvaluateWithHarnessInput, parseInput, SummarizeEvaluationInput } from '../core/inputs.js';
import type { Sample } from '../core/schemas/sample.js';
import { bfclSummaryRows, type CategoryScore } from '../core/stages/bfcl-overall.js';
import { readRecords } from '../datasets/read-records.js';
import { getEvaluations, upsertEvaluations } from '../db/queries/evaluations.js';
import { recordModelCalls } from '../db/queries/model-calls.js';
import { projectPath } from '../services/paths.js';
import { ensurePythonEnvAsync } from '../services/python-env.js';
import type { ActivityDeps } from './deps.js';
import { keepHeartbeating } from './heartbeat.js';
import { callModel, Ledger } from './llm/calls.js';
import { policyChat } from './llm/policy-chat.js';
import { harnessWorkDir, runBfclHarness } from './evaluation/bfcl-harness.js';

/** The eval set name of the bfcl-eval backend's rows in `evaluations`. */
export const HARNESS_EVAL_SET = 'bfcl-eval';

/** What an evaluation returns to the loop: BFCL v3's overall (LoopAccuracy) and its groups. */
export interface EvaluationSummary {
  overall: number | null;
  groups: Record<string, number>;
}

/** Writes BFCL v3's summary rows beside an eval set's category rows, and returns them for the loop. */
async function storeSummary(
  deps: ActivityDeps,
  key: { loopName: string; iteration: number },
  evalSet: string,
  rows: readonly CategoryScore[],
): Promise<EvaluationSummary> {
  const summary = bfclSummaryRows(rows);
  await upsertEvaluations(
    deps.pool,
    key,
    summary.map((row) => ({ evalSet, ...row })),
  );
  const value = (category: string) => summary.find((row) => row.category === category)?.accuracy;
  const groups: Record<string, number> = {};
  for (const [name, category] of [
    ['nonLive', 'non_live'],
    ['live', 'live'],
    ['multiTurn', 'multi_turn'],
  ] as const) {
    const accuracy = value(category);
    if (accuracy !== undefined) groups[name] = accuracy;
  }
  return { overall: value('overall') ?? null, groups };
}

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
        if (input.maxPerCategory === undefined || questions.length < input.maxPerCategory)
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
                  scoreBfclResult(compiled.question, reply.toolCalls ?? reply.content ?? '').valid;
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
     * Adds BFCL v3's summary rows (`non_live`, `live`, `multi_turn`, `overall`) for an eval set from its category rows,
     * after every file of the set was evaluated. Returns the overall accuracy (the value the UI shows as LoopAccuracy)
     * and the groups.
     */
    async summarizeEvaluation(rawInput: SummarizeEvaluationInput): Promise<EvaluationSummary> {
      const input = parseInput(SummarizeEvaluationInput, rawInput, 'summarizeEvaluation');
      const key = { loopName: input.loopName, iteration: input.iteration };
      const rows = await getEvaluations(deps.pool, { ...key, evalSet: input.evalSet });
      return storeSummary(deps, key, input.evalSet, rows);
    },

    /**
     * Scores the deployed policy with BFCL's own harness (`evaluation.backend: bfcl-eval`): installs `.tools/py-bfcl`
     * on first use, runs recipes/bfcl-eval/run.py against the policy's OpenAI endpoint and served name, and upserts
     * one row per category plus the summary rows under the eval set `bfcl-eval`. Heartbeats the questions answered.
     * A retry resumes the harness's own result files (kept under the artifacts folder), so no question is asked twice
     * once answered, and the rows are rewritten with the same numbers. The harness's model calls are not in
     * `model_calls` (BFCL makes them).
     */
    async evaluateWithHarness(rawInput: EvaluateWithHarnessInput): Promise<EvaluationSummary> {
      const input = parseInput(EvaluateWithHarnessInput, rawInput, 'evaluateWithHarness');
      const context = Context.current();
      const key = { loopName: input.loopName, iteration: input.iteration };
      const baseUrls = deps.llm.baseUrlsFor('policy', input.policy.baseUrls);
      let progress: { phase: string; done?: number; total?: number } = { phase: 'installing bfcl-eval' };
      return keepHeartbeating(
        () => progress,
        async () => {
          let env;
          try {
            env = await ensurePythonEnvAsync('bfcl', { log: (line) => context.log.info(line) });
          } catch (err) {
            throw ApplicationFailure.nonRetryable((err as Error).message, ErrorType.ConfigInvalid);
          }
          const run = {
            baseUrls,
            model: input.policy.model,
            categories: input.categories,
            maxPerCategory: input.maxPerCategory,
            maxTokens: input.maxTokens,
          };
          progress = { phase: 'generating' };
          const rows = await runBfclHarness({
            ...run,
            python: env.python,
            apiKey: deps.llm.apiKeyFor('policy'),
            threads: input.policy.maxConcurrency * baseUrls.length,
            workDir: harnessWorkDir(deps.artifactsDir, key, run),
            signal: context.cancellationSignal,
            onProgress: ({ done, total }) => {
              progress = { phase: 'generating', done, total };
            },
          });
          progress = { phase: 'storing' };
          await upsertEvaluations(
            deps.pool,
            key,
            rows.map((row) => ({
              evalSet: HARNESS_EVAL_SET,
              category: row.category,
              correct: row.correct,
              total: row.total,
              accuracy: row.total === 0 ? 0 : row.correct / row.total,
            })),
          );
          return storeSummary(deps, key, HARNESS_EVAL_SET, rows);
        },
      );
    },
  };
}
