/**
 * BFCL possible answers may hold an empty list of acceptable values for a parameter (live_simple has two such entries,
 * the real ones in test/fixtures/bfcl-live/). BFCL scores them: no value can match, and leaving the parameter out is
 * still "missing" unless `""` is listed. Every reader of BFCL data must take them, and the checkers must score them.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import { checkSample, compileBfclQuestion, decodeBfclResult, scoreBfcl } from '../../../core/checker/index.js';
import { bfclAnswerFromRecord, bfclQuestionFromRecord } from '../../../core/formats/bfcl.js';
import { parseJson, type JsonValue } from '../../../core/json.js';
import { AcceptableCall } from '../../../core/schemas/tool-call.js';
import { Sample } from '../../../core/schemas/sample.js';
import { readSamples, type SampleReadItem } from '../../../datasets/read-samples.js';
import { runLooptool } from '../../helpers/cli.js';

const FIXTURE = fileURLToPath(new URL('../../fixtures/bfcl-live/', import.meta.url));
const QUESTIONS = `${FIXTURE}BFCL_v4_live_simple.json`;
const ANSWERS = `${FIXTURE}possible_answer/BFCL_v4_live_simple.json`;
const EMPTY_IDS = ['live_simple_106-63-0', 'live_simple_112-68-0'];
const dir = mkdtempSync(join(tmpdir(), 'looptool-bfcl-empty-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function records(file: string): JsonValue[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const parsed = parseJson(line);
      if (!parsed.ok) throw new Error(`${file}: not JSON`);
      return parsed.value;
    });
}

function entry(id: string) {
  const question = records(QUESTIONS)
    .map((r) => bfclQuestionFromRecord(r))
    .find((q) => q.ok && q.value.id === id);
  const answer = records(ANSWERS)
    .map((r) => bfclAnswerFromRecord(r))
    .find((a) => a.ok && a.value.id === id);
  if (!question?.ok || !answer?.ok) throw new Error(`${id} did not read`);
  return { question: question.value, answer: answer.value };
}

describe('empty acceptable-value lists (BFCL live_simple)', () => {
  test('the fixture really has them', () => {
    const empties = records(ANSWERS).filter((r) =>
      (r as { ground_truth: Record<string, Record<string, unknown[]>>[] }).ground_truth.some((call) =>
        Object.values(call).some((args) => Object.values(args).some((values) => values.length === 0)),
      ),
    );
    expect(empties.map((r) => (r as { id: string }).id)).toEqual(EMPTY_IDS);
  });

  test('possible-answer records and AcceptableCall accept them', () => {
    for (const record of records(ANSWERS)) {
      const answer = bfclAnswerFromRecord(record);
      expect(answer.ok, JSON.stringify(answer)).toBe(true);
    }
    const { answer } = entry('live_simple_112-68-0');
    const call = answer.calls[0]!;
    expect(call.arguments.acc_routing_start).toEqual([]);
    expect(call.arguments.outofscope).toEqual([['what is the weather like']]);
    expect(AcceptableCall.safeParse(call).success).toBe(true);
  });

  test('data import reads every question with its answer into a sample', async () => {
    const items: SampleReadItem[] = [];
    for await (const item of readSamples({ file: QUESTIONS, answersFile: ANSWERS, format: 'bfcl' })) items.push(item);
    expect(items.map((i) => i.kind)).toEqual(['sample', 'sample', 'sample', 'sample', 'sample']);
    for (const item of items) if (item.kind === 'sample') expect(Sample.safeParse(item.sample).success).toBe(true);
  });

  // The verdicts BFCL's own ast_checker gives for these outputs (bfcl-eval 2026.3.23, run on this fixture); the
  // agreement test (test/e2e/bfcl-harness-agreement.test.ts) compares every live_simple entry with the harness.
  test('the BFCL checker scores them as BFCL does: a value never matches, leaving it out is missing', () => {
    const { question, answer } = entry('live_simple_112-68-0');
    const compiled = compileBfclQuestion({
      kind: 'simple',
      functions: question.functions,
      possibleAnswer: answer.calls,
    });
    if (!compiled.ok) throw new Error(compiled.error);
    const score = (args: Record<string, unknown>) =>
      scoreBfcl(compiled.question, decodeBfclResult([{ record: args }] as unknown as JsonValue));
    const others = { outofscope: ['what is the weather like'] };
    // Every parameter is required here, so omitting one is missing_required before the values are looked at.
    expect(score(others)).toMatchObject({ valid: false, errorType: 'simple_function_checker:missing_required' });
    // A value for an array parameter with no acceptable values fails BFCL's nested type check: no alternative is a list
    // to check the items against, and no alternative gives a "variable" type, so it ends as type_error:simple.
    const all = {
      acc_routing_start: [],
      atm_finder_start: [],
      faq_link_accounts_start: [],
      get_balance_start: [],
      get_transactions_start: [],
      ...others,
    };
    expect(score(all)).toMatchObject({ valid: false, errorType: 'type_error:simple' });
    expect(score({ ...all, acc_routing_start: ['what is my routing number'] })).toMatchObject({
      valid: false,
      errorType: 'type_error:simple',
    });
  });

  test('exact mode and the sample checker take them too (nothing matches an empty list)', () => {
    const { question, answer } = entry('live_simple_106-63-0');
    const sample: Sample = {
      tools: question.functions,
      messages: question.messages,
      target: { kind: 'acceptable', calls: answer.calls },
    };
    const reply = { content: null, tool_calls: [] };
    for (const mode of ['bfcl', 'exact'] as const) {
      const verdict = checkSample({ sample, reply, config: { mode } });
      expect(verdict.valid).toBe(false);
      expect(verdict.errorType).not.toBe('checker:invalid_target');
    }
  });

  test('looptool score scores the whole file instead of "Nothing was scored"', async () => {
    const predictions = join(dir, 'predictions.jsonl');
    const lines = records(ANSWERS).map((record) => {
      const { id, ground_truth } = record as { id: string; ground_truth: Record<string, Record<string, unknown[]>>[] };
      // Each argument's first acceptable value; an empty list gives the parameter an empty list.
      const calls = ground_truth.map((call) =>
        Object.fromEntries(
          Object.entries(call).map(([name, args]) => [
            name,
            Object.fromEntries(Object.entries(args).map(([param, values]) => [param, values.length ? values[0] : []])),
          ]),
        ),
      );
      return JSON.stringify({ id, result: calls });
    });
    writeFileSync(predictions, `${lines.join('\n')}\n`);
    const result = await runLooptool([
      'score',
      '--questions',
      QUESTIONS,
      '--answers',
      ANSWERS,
      '--predictions',
      predictions,
    ]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    // The three ordinary entries are right; the two with empty lists cannot be.
    expect(result.stdout).toMatch(/live_simple\s+3\s+5\s+60\.00%/);
  });
});
