import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { checkSample } from '../../../core/checker/index.js';
import {
  bfclAnswerFromRecord,
  bfclQuestionFromRecord,
  bfclToSample,
  type BfclAnswer,
} from '../../../core/formats/bfcl.js';
import { parseModelOutput } from '../../../core/parse/model-output.js';
import { toOpenAiTool } from '../../../core/schemas/function-def.js';
import type { Sample } from '../../../core/schemas/sample.js';
import { composeSample, PROFILE_WEIGHTS, type ComposedSample } from '../../../sim/compose.js';
import { ANSWER_ERROR_KINDS } from '../../../sim/mutations.js';
import { Rng } from '../../../sim/random.js';
import { addExposure, SKILLS, type Exposure, type Skill } from '../../../sim/skills.js';
import {
  BASE_CHECKPOINT,
  SimStudent,
  type StudentAnswer,
  type StudentCheckpoint,
  type StudentOutput,
} from '../../../sim/student.js';
import { TruthResolver } from '../../../sim/truth.js';
import { getWorld } from '../../../sim/world.js';
import { readSmallJsonLines } from '../../../datasets/read-records.js';

const world = getWorld();
const resolver = new TruthResolver({ world });

function corpus(name: string, count: number): ComposedSample[] {
  return Array.from({ length: count }, (_, i) => {
    const rng = new Rng(`${name}/${i}`);
    return composeSample(world, rng.weighted(PROFILE_WEIGHTS), rng);
  });
}

function asSample(c: ComposedSample): Sample {
  return {
    tools: c.tools,
    messages: c.messages,
    target: c.truth === 'no_call' ? { kind: 'text' } : { kind: 'calls', calls: c.truth },
  };
}

function reply(output: StudentOutput) {
  if (output.kind === 'calls')
    return {
      content: null,
      tool_calls: output.calls.map((c) => ({ function: { name: c.name, arguments: c.arguments } })),
    };
  return output.text;
}

/** Whether an answer is right by the checker against the composed truth, independent of what the student believes. */
function isRight(c: ComposedSample, answer: StudentAnswer): boolean {
  return checkSample({ sample: asSample(c), reply: reply(answer.output), config: { mode: 'exact' } }).valid;
}

function accuracy(student: SimStudent, samples: readonly ComposedSample[], checkpoint: StudentCheckpoint): number {
  const right = samples.filter((c, i) =>
    isRight(c, student.answer({ key: `k${i}`, tools: c.tools, messages: c.messages }, checkpoint)),
  ).length;
  return right / samples.length;
}

/** Exposure from training on these samples for `epochs`, with labels right or wrong. */
function trainedOn(samples: readonly ComposedSample[], labelsRight: boolean, epochs: number): Exposure {
  const exposure: Exposure = { good: {}, bad: {} };
  for (const c of samples) {
    const truth = resolver.resolve(c.tools, c.messages);
    if (!truth) throw new Error('unsolvable training sample');
    addExposure(exposure, resolver.skills(truth, c.tools), labelsRight, epochs);
  }
  return exposure;
}

describe('the simulated student', () => {
  const student = new SimStudent(resolver, { seed: 7 });
  const evalSet = corpus('eval', 800);
  const trainSet = corpus('train', 1500);

  test('the base model gets most but clearly not all samples right', () => {
    const base = accuracy(student, evalSet, BASE_CHECKPOINT);
    expect(base).toBeGreaterThan(0.55);
    expect(base).toBeLessThan(0.85);
  });

  test('accuracy rises with exposure to correctly labelled samples, with diminishing returns', () => {
    const base = accuracy(student, evalSet, BASE_CHECKPOINT);
    const once = accuracy(student, evalSet, { id: 'clean-1', exposure: trainedOn(trainSet, true, 2) });
    const thrice = accuracy(student, evalSet, { id: 'clean-3', exposure: trainedOn(trainSet, true, 6) });
    expect(once - base).toBeGreaterThan(0.05);
    expect(thrice).toBeGreaterThan(once);
    expect(thrice - once).toBeLessThan(once - base + 0.05);
  });

  test('accuracy falls with exposure to wrongly labelled samples', () => {
    const base = accuracy(student, evalSet, BASE_CHECKPOINT);
    const poisoned = accuracy(student, evalSet, { id: 'wrong', exposure: trainedOn(trainSet.slice(0, 400), false, 2) });
    expect(base - poisoned).toBeGreaterThan(0.05);
    const clean = trainedOn(trainSet, true, 2);
    const noisy = trainedOn(trainSet.slice(0, 300), false, 2);
    const mixed: Exposure = { good: clean.good, bad: noisy.bad };
    expect(accuracy(student, evalSet, { id: 'mixed', exposure: mixed })).toBeLessThan(
      accuracy(student, evalSet, { id: 'clean', exposure: clean }),
    );
  });

  test('wrong answers are of the listed kinds, look like real mistakes, and are wrong by the checker', () => {
    const kinds = new Map<string, number>();
    for (const [i, c] of evalSet.entries()) {
      const answer = student.answer({ key: `k${i}`, tools: c.tools, messages: c.messages }, BASE_CHECKPOINT);
      if (answer.correct) continue;
      expect(answer.correct).toBe(false);
      expect(ANSWER_ERROR_KINDS).toContain(answer.errorKind);
      kinds.set(answer.errorKind as string, (kinds.get(answer.errorKind as string) ?? 0) + 1);
      expect(isRight(c, answer), `${answer.errorKind} on sample ${i}`).toBe(false);
      if (answer.errorKind === 'malformed_json') {
        expect(answer.output.kind).toBe('malformed');
        expect(answer.output.kind === 'malformed' && answer.output.text).toContain('<tool_call>');
        expect(parseModelOutput(answer.output.kind === 'malformed' ? answer.output.text : '').ok).toBe(false);
      }
      if (answer.errorKind === 'dropped_call' && c.truth !== 'no_call' && answer.output.kind === 'calls') {
        expect(answer.output.calls.length).toBe(c.truth.length - 1);
      }
      if (answer.errorKind === 'hallucinated_call') expect(c.truth).toBe('no_call');
    }
    expect(kinds.size).toBeGreaterThanOrEqual(7);
  });

  test('is deterministic, and more confident (higher mean logprob) when right than when wrong', () => {
    let right = 0;
    let wrong = 0;
    let rightSum = 0;
    let wrongSum = 0;
    for (const [i, c] of evalSet.entries()) {
      const input = { key: `k${i}`, tools: c.tools, messages: c.messages };
      const answer = student.answer(input, BASE_CHECKPOINT);
      expect(student.answer(input, BASE_CHECKPOINT)).toEqual(answer);
      expect(answer.meanLogprob).toBeLessThan(0);
      if (answer.correct) {
        right++;
        rightSum += answer.meanLogprob;
      } else {
        wrong++;
        wrongSum += answer.meanLogprob;
      }
    }
    expect(rightSum / right).toBeGreaterThan(wrongSum / wrong);
  });

  test('answers every BFCL question it is sent as the BFCL checker expects, when fully competent', () => {
    const perfect = new SimStudent(resolver, {
      seed: 7,
      learning: { base: Object.fromEntries(SKILLS.map((s) => [s, 1])) as Record<Skill, number>, ceiling: 1 },
    });
    const questions = bfclSamples();
    expect(questions).toHaveLength(1240);
    let valid = 0;
    for (const { id, sample } of questions) {
      // The evaluation shows BFCL's own function docs (dotted names, BFCL types) in the system prompt, and the sim
      // reads them back as written; a client that sends OpenAI `tools` sends them in wire form. Either must do.
      const wire = sample.tools.map((f) => toOpenAiTool(f).function);
      const answer = perfect.answer(
        { key: `bfcl/${id}`, tools: sample.tools, messages: sample.messages },
        BASE_CHECKPOINT,
      );
      const wireAnswer = perfect.answer({ key: `bfcl/${id}`, tools: wire, messages: sample.messages }, BASE_CHECKPOINT);
      expect(wireAnswer.output, id).toEqual(answer.output);
      expect(answer.correct, id).toBeDefined();
      if (checkSample({ sample, reply: reply(answer.output), config: { mode: 'bfcl' } }).valid) valid++;
    }
    // Two BFCL records name parameters their own function docs do not declare; no answer passes them.
    expect(valid).toBeGreaterThanOrEqual(1238);
  });
});

/** BFCL's questions with their possible answers, as samples. */
function bfclSamples(): { id: string; sample: Sample }[] {
  const dir = fileURLToPath(new URL('../../../data/bfcl/', import.meta.url));
  const out: { id: string; sample: Sample }[] = [];
  const records = readSmallJsonLines;
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    const answers = new Map<string, BfclAnswer>();
    if (existsSync(path.join(dir, 'possible_answer', file))) {
      for (const record of records(path.join(dir, 'possible_answer', file))) {
        const answer = bfclAnswerFromRecord(record);
        if (answer.ok) answers.set(answer.value.id, answer.value);
      }
    }
    for (const record of records(path.join(dir, file))) {
      const question = bfclQuestionFromRecord(record);
      if (!question.ok) throw new Error(question.rejection.reason);
      const answer = answers.get(question.value.id);
      const sample = bfclToSample({ question: question.value, ...(answer ? { answer } : {}) });
      if (!sample.ok) throw new Error(sample.rejection.reason);
      out.push({ id: question.value.id, sample: sample.value });
    }
  }
  return out;
}
