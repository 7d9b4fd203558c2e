import { describe, expect, test } from 'vitest';
import { loadPrompts, pickPrompt, renderTemplate } from '../../../activities/llm/prompts.js';
import { conversationDate, promptConversation, promptTarget, promptTools } from '../../../activities/llm/render.js';
import { checkSample } from '../../../core/checker/index.js';
import { parseJson } from '../../../core/json.js';
import { GeneratorOutput, generatedTurnMessage } from '../../../core/schemas/model-io.js';
import type { Sample, Target } from '../../../core/schemas/sample.js';
import { validateCalls, validateConversation } from '../../../core/validate/calls.js';
import { SimGenerator } from '../../../sim/generator.js';
import { generateSeedData, type SeedSample } from '../../../sim/seed-data.js';
import { getWorld } from '../../../sim/world.js';

/**
 * The simulated generator mirrors its seed (issue 13, EDDE): a seed whose history holds tool calls with their results
 * mostly yields a sample whose history does too, a seed whose correct answer is text mostly yields a text answer, and
 * some flaws land in the history's earlier call, all deterministic for the prompt and the sim's seed.
 */

const world = getWorld();
const prompt = pickPrompt(loadPrompts(), 'generator');
const seeds = generateSeedData({ count: 600, seed: 31, wrongLabelRate: 0 });

function generatorMessages(seed: SeedSample, salt = 0) {
  return [
    {
      role: 'system',
      content: renderTemplate(prompt.system, {
        date: conversationDate(seed.sample),
        tools: promptTools(seed.sample.tools),
      }),
    },
    {
      role: 'user',
      content: renderTemplate(prompt.user, {
        seed_conversation: promptConversation(seed.sample.messages),
        correct_response: promptTarget(seed.trueTarget),
        incorrect_response: promptTarget({ kind: 'text', text: `wrong ${salt}` }),
        error_analysis: 'The response was wrong.',
        scenario_focus: 'data_variation',
        scenario_guidance: 'Vary the values.',
        turn_guidance: 'keep the flow',
      }),
    },
  ];
}

function read(content: string): GeneratorOutput {
  const parsed = parseJson(content);
  if (!parsed.ok) throw new Error(`not JSON: ${content}`);
  return GeneratorOutput.parse(parsed.value);
}

/** The sample a generation makes over the seed's tools. */
function sampleOf(seed: SeedSample, output: GeneratorOutput): Sample {
  const target: Target =
    output.tool_calls.length > 0
      ? { kind: 'calls', calls: output.tool_calls }
      : { kind: 'text', text: output.content! };
  return { tools: seed.sample.tools, messages: output.conversation.map((t) => generatedTurnMessage(t)), target };
}

/** Whether the sample's answer is the world's truth for its conversation (exact checker). */
function isTrue(sample: Sample): boolean {
  const truth = world.solve(sample);
  if (truth === undefined) return false;
  const reference: Sample = {
    ...sample,
    target: truth === 'no_call' ? { kind: 'text' } : { kind: 'calls', calls: truth },
  };
  const target = sample.target;
  const reply =
    target.kind === 'calls'
      ? { content: null, tool_calls: target.calls.map((c) => ({ function: { name: c.name, arguments: c.arguments } })) }
      : target.kind === 'text'
        ? (target.text ?? '')
        : '';
  return checkSample({ sample: reference, reply, config: { mode: 'exact' } }).valid;
}

const hasToolHistory = (messages: Sample['messages']) =>
  messages.some((m) => m.role === 'assistant' && (m.tool_calls?.length ?? 0) > 0);

describe('the simulated generator mirrors its seed', () => {
  const clean = new SimGenerator(world, { seed: 5, flawRate: 0 });

  test('seeds with tool calls and results in their history yield histories with tool calls and results, valid and true', () => {
    const withHistory = seeds.filter((s) => hasToolHistory(s.sample.messages));
    expect(withHistory.length).toBeGreaterThan(50);
    let mirrored = 0;
    for (const seed of withHistory) {
      const output = read(clean.generate(generatorMessages(seed)).content);
      const sample = sampleOf(seed, output);
      expect(validateConversation(sample.messages, seed.sample.tools)).toEqual([]);
      expect(validateCalls(output.tool_calls, seed.sample.tools)).toEqual([]);
      expect(isTrue(sample), JSON.stringify(output)).toBe(true);
      if (!hasToolHistory(sample.messages)) continue;
      mirrored++;
      // The call turn, then its result linked by id, then the assistant's words, then the request to answer.
      const call = sample.messages.findIndex((m) => m.role === 'assistant' && m.tool_calls);
      const callMessage = sample.messages[call] as Extract<Sample['messages'][number], { role: 'assistant' }>;
      expect(sample.messages[call + 1]).toMatchObject({ role: 'tool', tool_call_id: callMessage.tool_calls![0]!.id });
      expect(sample.messages.at(-1)!.role).toBe('user');
      expect(sample.target.kind).toBe('calls');
    }
    // Most of them (the sim's TOOL_HISTORY_SHARE is 0.85; the rest tell the earlier step in words).
    expect(mirrored / withHistory.length).toBeGreaterThan(0.7);
    expect(mirrored).toBeLessThan(withHistory.length);
  });

  test('seeds whose correct answer is text yield text answers that are the truth (no offered tool fits)', () => {
    const textSeeds = seeds.filter((s) => s.trueTarget.kind === 'text');
    expect(textSeeds.length).toBeGreaterThan(30);
    let text = 0;
    for (const seed of textSeeds) {
      const output = read(clean.generate(generatorMessages(seed)).content);
      const sample = sampleOf(seed, output);
      expect(validateConversation(sample.messages, seed.sample.tools)).toEqual([]);
      if (sample.target.kind !== 'text') continue;
      text++;
      expect(sample.target.text).toEqual(expect.any(String));
      expect(world.solve(sample)).toBe('no_call');
      expect(isTrue(sample)).toBe(true);
      expect(sample.messages.at(-1)!.content).not.toBe(seed.sample.messages.at(-1)!.content);
    }
    expect(text / textSeeds.length).toBeGreaterThan(0.6);
    // Seeds whose answer is calls never get a text answer.
    for (const seed of seeds.filter((s) => s.trueTarget.kind === 'calls').slice(0, 200))
      expect(read(clean.generate(generatorMessages(seed)).content).tool_calls.length).toBeGreaterThan(0);
  });

  test("some flaws land in the history's earlier call, where the rule tier finds them by turn; generation is deterministic", () => {
    const flawed = new SimGenerator(world, { seed: 5, flawRate: 0.5 });
    const withHistory = seeds.filter((s) => hasToolHistory(s.sample.messages));
    let inHistory = 0;
    for (const seed of withHistory) {
      const generation = flawed.generate(generatorMessages(seed));
      expect(flawed.generate(generatorMessages(seed))).toEqual(generation);
      if (generation.flawAt !== 'history') continue;
      inHistory++;
      const output = read(generation.content);
      const violations = validateConversation(
        output.conversation.map((t) => generatedTurnMessage(t)),
        seed.sample.tools,
      );
      expect(violations.length).toBeGreaterThan(0);
      expect(violations[0]!.field).toMatch(/^conversation\[1\]\.tool_calls\[0\]\./);
      // The answer's own calls are clean: the flaw is only in the history.
      expect(validateCalls(output.tool_calls, seed.sample.tools)).toEqual([]);
    }
    expect(inHistory).toBeGreaterThan(5);
  });
});
