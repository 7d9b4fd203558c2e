import { describe, expect, test } from 'vitest';
import { checkSample } from '../../../core/checker/index.js';
import { parseJson } from '../../../core/json.js';
import {
  GeneratorOutput,
  generatedTurnMessage,
  JudgeOutput,
  SCENARIO_FOCUSES,
  ValidatorOutput,
} from '../../../core/schemas/model-io.js';
import type { Sample, Target } from '../../../core/schemas/sample.js';
import { validateCalls, validateConversation } from '../../../core/validate/calls.js';
import { loadPrompts, pickPrompt, renderTemplate } from '../../../activities/llm/prompts.js';
import { conversationDate, promptConversation, promptTarget, promptTools } from '../../../activities/llm/render.js';
import { GENERATOR_FLAWS, SimGenerator } from '../../../sim/generator.js';
import { SimJudge } from '../../../sim/judge.js';
import { generateSeedData, type SeedSample } from '../../../sim/seed-data.js';
import { BASE_CHECKPOINT, SimStudent, type StudentOutput } from '../../../sim/student.js';
import { TruthResolver } from '../../../sim/truth.js';
import { getWorld } from '../../../sim/world.js';

const world = getWorld();
const resolver = new TruthResolver({ world, bfclDir: false });
const prompts = loadPrompts();
const judgePrompt = pickPrompt(prompts, 'judge');
const validatorPrompt = pickPrompt(prompts, 'validator');
const generatorPrompt = pickPrompt(prompts, 'generator');

type Messages = { role: string; content: string }[];

function judgeMessages(sample: Sample, prediction: Target): Messages {
  return [
    { role: 'system', content: renderTemplate(judgePrompt.system, { tools: promptTools(sample.tools) }) },
    {
      role: 'user',
      content: renderTemplate(judgePrompt.user, {
        date: conversationDate(sample),
        conversation: promptConversation(sample.messages),
        response_1: promptTarget(sample.target),
        response_2: promptTarget(prediction),
      }),
    },
  ];
}

function validatorMessages(sample: Sample): Messages {
  return [
    { role: 'system', content: renderTemplate(validatorPrompt.system, { tools: promptTools(sample.tools) }) },
    {
      role: 'user',
      content: renderTemplate(validatorPrompt.user, {
        conversation: promptConversation(sample.messages),
        response: promptTarget(sample.target),
      }),
    },
  ];
}

function generatorMessages(seed: SeedSample, incorrect: Target, focus: (typeof SCENARIO_FOCUSES)[number]): Messages {
  const sample = seed.sample;
  return [
    {
      role: 'system',
      content: renderTemplate(generatorPrompt.system, {
        date: conversationDate(sample),
        tools: promptTools(sample.tools),
      }),
    },
    {
      role: 'user',
      content: renderTemplate(generatorPrompt.user, {
        seed_conversation: promptConversation(sample.messages),
        correct_response: promptTarget(seed.trueTarget),
        incorrect_response: promptTarget(incorrect),
        error_analysis: 'The response got an argument wrong.',
        scenario_focus: focus,
        scenario_guidance: 'Vary it.',
        turn_guidance: 'keep it short',
      }),
    },
  ];
}

function targetOf(output: StudentOutput): Target {
  if (output.kind === 'calls') return { kind: 'calls', calls: output.calls };
  return { kind: 'text', text: output.text };
}

/** Whether a target is right for a sample's conversation by the world's truth and the exact checker. */
function isTrue(sample: Sample, target: Target): boolean {
  const truth = world.solve(sample);
  const reference: Sample = {
    ...sample,
    target: truth === 'no_call' || truth === undefined ? { kind: 'text' } : { kind: 'calls', calls: truth },
  };
  const reply =
    target.kind === 'calls'
      ? { content: null, tool_calls: target.calls.map((c) => ({ function: { name: c.name, arguments: c.arguments } })) }
      : target.kind === 'text'
        ? (target.text ?? '')
        : '';
  return checkSample({ sample: reference, reply, config: { mode: 'exact' } }).valid;
}

const seeds = generateSeedData({ count: 700, seed: 21, wrongLabelRate: 0.3 });
const student = new SimStudent(resolver, { seed: 3 });
const cases = seeds.map((seed) => {
  const answer = student.answer(
    { key: seed.id, tools: seed.sample.tools, messages: seed.sample.messages },
    BASE_CHECKPOINT,
  );
  const prediction = targetOf(
    answer.output.kind === 'malformed' ? { kind: 'text', text: answer.output.text } : answer.output,
  );
  const ok1 = isTrue(seed.sample, seed.sample.target);
  const ok2 = isTrue(seed.sample, prediction);
  const expected =
    ok1 && ok2 ? 'BOTH_CORRECT' : ok1 ? 'RESPONSE2_INCORRECT' : ok2 ? 'RESPONSE1_INCORRECT' : 'BOTH_INCORRECT';
  return { seed, prediction, expected };
});

describe('the simulated judge', () => {
  test('parses with the core JudgeOutput schema and is right about as often as configured', () => {
    for (const accuracy of [0.9, 0.6]) {
      const judge = new SimJudge(resolver, { seed: 7, judgeAccuracy: accuracy });
      let agreed = 0;
      for (const c of cases) {
        const decision = judge.judge(judgeMessages(c.seed.sample, c.prediction));
        const parsed = JudgeOutput.parse(decision.output);
        expect(decision.trueVerdict).toBe(c.expected);
        if (parsed.verdict === c.expected) agreed++;
      }
      expect(Math.abs(agreed / cases.length - accuracy)).toBeLessThan(0.05);
    }
  });

  test('sees through corrupted labels and names the real difference', () => {
    const judge = new SimJudge(resolver, { seed: 7, judgeAccuracy: 1 });
    const corrupted = seeds.filter((s) => s.corruption === 'wrong_value');
    expect(corrupted.length).toBeGreaterThan(10);
    for (const seed of corrupted) {
      const decision = judge.judge(judgeMessages(seed.sample, seed.trueTarget));
      expect(decision.output.verdict).toBe('RESPONSE1_INCORRECT');
      const label = seed.sample.target.kind === 'calls' ? seed.sample.target.calls : [];
      const truth = seed.trueTarget.kind === 'calls' ? seed.trueTarget.calls : [];
      const changed = label.flatMap((call, i) =>
        Object.keys(call.arguments).filter(
          (k) => JSON.stringify(call.arguments[k]) !== JSON.stringify(truth[i]?.arguments[k]),
        ),
      );
      expect(
        changed.some((k) => decision.output.error_analysis.includes(`'${k}'`)),
        decision.output.error_analysis,
      ).toBe(true);
      expect(decision.output.correct_approach).toMatch(/^The correct response (calls|makes)/);
    }
  });

  test('sampled votes on one prompt vary but each is right with the configured accuracy', () => {
    const judge = new SimJudge(resolver, { seed: 7, judgeAccuracy: 0.8 });
    let agreed = 0;
    let total = 0;
    let split = 0;
    for (const c of cases.slice(0, 300)) {
      const votes = [0, 1, 2].map(
        (n) => judge.judge(judgeMessages(c.seed.sample, c.prediction), `n:${n}`).output.verdict,
      );
      if (new Set(votes).size > 1) split++;
      for (const vote of votes) {
        total++;
        if (vote === c.expected) agreed++;
      }
    }
    expect(Math.abs(agreed / total - 0.8)).toBeLessThan(0.05);
    expect(split).toBeGreaterThan(10);
  });
});

describe('the simulated validator', () => {
  test('parses with ValidatorOutput and is right about as often as configured', () => {
    const judge = new SimJudge(resolver, { seed: 7, validatorAccuracy: 0.85 });
    let agreed = 0;
    for (const seed of seeds) {
      const decision = judge.validate(validatorMessages(seed.sample));
      const output = ValidatorOutput.parse(decision.output);
      const right = seed.corruption === undefined;
      if ((output.verdict === 'CORRECT') === right) agreed++;
      if (output.verdict === 'CORRECT') expect(output.error_analysis).toBe('');
    }
    expect(Math.abs(agreed / seeds.length - 0.85)).toBeLessThan(0.05);
  });
});

describe('the simulated generator', () => {
  const generator = new SimGenerator(world, { seed: 7, flawRate: 0.2 });
  const clean = seeds.filter((s) => !s.corruption && s.trueTarget.kind === 'calls').slice(0, 300);

  test('writes new samples over the seed tools whose calls are the truth for their conversation, with the seed shape', () => {
    let unflawed = 0;
    const flaws = new Map<string, number>();
    clean.forEach((seed, i) => {
      const focus = SCENARIO_FOCUSES[i % SCENARIO_FOCUSES.length]!;
      const generation = generator.generate(generatorMessages(seed, { kind: 'text', text: 'no idea' }, focus));
      if (generation.flaw) {
        flaws.set(generation.flaw, (flaws.get(generation.flaw) ?? 0) + 1);
        const parsed = parseJson(generation.content);
        if (generation.flaw === 'unparseable') expect(parsed.ok).toBe(false);
        else {
          const output = GeneratorOutput.parse(parsed.ok ? parsed.value : {});
          // The flaw is in the answer's calls or in the history's earlier call: the rule tier finds it where it is.
          const history = validateConversation(
            output.conversation.map((t) => generatedTurnMessage(t)),
            seed.sample.tools,
          );
          const answer = validateCalls(output.tool_calls, seed.sample.tools);
          expect((generation.flawAt === 'history' ? history : answer).length, generation.flaw).toBeGreaterThan(0);
        }
        return;
      }
      unflawed++;
      const parsed = parseJson(generation.content);
      expect(parsed.ok).toBe(true);
      const output = GeneratorOutput.parse(parsed.ok ? parsed.value : {});
      expect(output.conversation.at(-1)?.role).toBe('user');
      expect(validateCalls(output.tool_calls, seed.sample.tools)).toEqual([]);
      const messages = output.conversation.map((t) => generatedTurnMessage(t));
      expect(validateConversation(messages, seed.sample.tools)).toEqual([]);
      const sample: Sample = {
        tools: seed.sample.tools,
        messages,
        target: { kind: 'calls', calls: output.tool_calls },
      };
      expect(isTrue(sample, sample.target), generation.content).toBe(true);
      const seedNames = (seed.trueTarget as { calls: { name: string }[] }).calls.map((c) => c.name).sort();
      expect(output.tool_calls.map((c) => c.name).sort()).toEqual(seedNames);
      expect(promptConversation(messages)).not.toBe(
        promptConversation(seed.sample.messages.filter((m) => m.role !== 'system')),
      );
    });
    expect(Math.abs(1 - unflawed / clean.length - 0.2)).toBeLessThan(0.07);
    expect([...flaws.keys()].sort()).toEqual([...GENERATOR_FLAWS].sort());
  });

  test('is deterministic for a prompt and varies with the sampling salt', () => {
    const messages = generatorMessages(clean[0]!, { kind: 'text', text: 'x' }, 'data_variation');
    expect(generator.generate(messages).content).toBe(generator.generate(messages).content);
    expect(generator.generate(messages, 'n:1').content).not.toBe(generator.generate(messages, 'n:2').content);
  });
});
