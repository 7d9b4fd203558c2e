import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { checkSample, type ModelReply } from '../../../core/checker/index.js';
import { bfclQuestionFromRecord, bfclToSample, bfclAnswerFromRecord } from '../../../core/formats/bfcl.js';
import { policyPrompt } from '../../../core/formats/policy-prompt.js';
import type { JsonValue } from '../../../core/json.js';
import { toOpenAiTool } from '../../../core/schemas/function-def.js';
import type { Sample } from '../../../core/schemas/sample.js';
import { readSmallJsonLines } from '../../../datasets/read-records.js';
import { readPolicyPrompt } from '../../../sim/prompt-parse.js';
import { PROFILES } from '../../../sim/compose.js';
import { generateSeedData } from '../../../sim/seed-data.js';
import { startSimServer, type SimServer } from '../../../sim/server.js';
import { SKILLS, type Skill } from '../../../sim/skills.js';
import { TruthResolver } from '../../../sim/truth.js';
import { getWorld } from '../../../sim/world.js';
import { projectPath } from '../../../services/paths.js';

/**
 * The sim's chat-completions path for the policy, over HTTP: the probe and evaluation send the plain-text policy
 * prompt (core/formats/policy-prompt.ts) and no `tools`, as a real vLLM gets it. A fully competent student answers
 * right exactly when the sim reads the tools and the whole history back out of that prompt, so its counters show it.
 */

let sim: SimServer;
beforeAll(async () => {
  sim = await startSimServer({
    learning: { base: Object.fromEntries(SKILLS.map((s) => [s, 1])) as Record<Skill, number>, ceiling: 1 },
  });
});
afterAll(async () => sim?.close());

interface Choice {
  message: { content: string | null; tool_calls: JsonValue[] };
  finish_reason: string;
}

async function chat(body: Record<string, unknown>): Promise<Choice> {
  const response = await fetch(`${sim.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: sim.policyModel, temperature: 0, ...body }),
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { choices: Choice[] }).choices[0]!;
}

const replyOf = (choice: Choice): ModelReply => ({
  content: choice.message.content,
  tool_calls: choice.message.tool_calls,
});

/** BFCL's first questions of a few categories, as samples. */
function bfclSamples(perFile: number): Sample[] {
  const samples: Sample[] = [];
  for (const file of ['BFCL_v4_multiple.json', 'BFCL_v4_parallel.json', 'BFCL_v4_irrelevance.json']) {
    const questions = readSmallJsonLines(projectPath('data', 'bfcl', file)).slice(0, perFile);
    const answerFile = projectPath('data', 'bfcl', 'possible_answer', file);
    const answers = file.includes('irrelevance') ? [] : readSmallJsonLines(answerFile).slice(0, perFile);
    for (const [index, record] of questions.entries()) {
      const question = bfclQuestionFromRecord(record);
      const answer = answers[index] === undefined ? undefined : bfclAnswerFromRecord(answers[index]);
      if (!question.ok || (answer && !answer.ok)) throw new Error(`${file}:${index + 1} does not read`);
      const sample = bfclToSample({ question: question.value, ...(answer?.ok ? { answer: answer.value } : {}) });
      if (!sample.ok) throw new Error(sample.rejection.reason);
      samples.push(sample.value);
    }
  }
  return samples;
}

describe('readPolicyPrompt', () => {
  test('gives the student the truth and the skills of the sample itself, for seed samples and BFCL questions', () => {
    const resolver = new TruthResolver({ world: getWorld() });
    const samples = [
      ...generateSeedData({ count: 200, seed: 5, wrongLabelRate: 0 }).map((s) => s.sample),
      ...bfclSamples(10),
    ];
    let multiTurn = 0;
    for (const sample of samples) {
      const view = readPolicyPrompt(policyPrompt(sample));
      const truth = resolver.resolve(sample.tools, sample.messages);
      expect(truth).toBeDefined();
      const seen = resolver.resolve(view.tools, view.messages);
      expect(seen?.calls).toEqual(truth!.calls);
      expect(resolver.skills(seen!, view.tools)).toEqual(resolver.skills(truth!, sample.tools));
      // The history comes back turn for turn (tool results as tool messages), not as text.
      // (Tool-call ids and tool names are not in the text, so the roles are compared.)
      const history = (messages: readonly { role: string }[]) =>
        messages.filter((m) => m.role !== 'system').map((m) => m.role);
      expect(history(view.messages)).toEqual(history(sample.messages));
      if (sample.messages.some((m) => m.role === 'tool')) multiTurn++;
    }
    expect(multiTurn).toBeGreaterThan(10);
  });
});

describe('the sim policy, asked with the policy prompt and no tools', () => {
  test('reads tools and history out of the prompt for every kind of conversation, and answers in <tool_call> text', async () => {
    const seeds = generateSeedData({ count: 120, seed: 3, wrongLabelRate: 0 });
    expect(new Set(seeds.map((s) => s.profile))).toEqual(new Set(PROFILES));
    const before = sim.stats().student;
    const choices = await Promise.all(seeds.map((seed) => chat({ messages: policyPrompt(seed.sample) })));
    const after = sim.stats().student;
    expect(after.unknownTruth - before.unknownTruth).toBe(0);
    expect(after.correct - before.correct).toBe(seeds.length);
    for (const [index, choice] of choices.entries()) {
      const seed = seeds[index]!;
      // As vLLM without a tool parser: the calls are text, nothing is parsed into tool_calls.
      expect(choice.message.tool_calls).toEqual([]);
      expect(choice.finish_reason).toBe('stop');
      if (seed.trueTarget.kind === 'calls') expect(choice.message.content).toMatch(/^<tool_call>\n/);
      const sample: Sample = { ...seed.sample, target: seed.trueTarget };
      expect(checkSample({ sample, reply: replyOf(choice), config: { mode: 'exact' } }).valid, seed.id).toBe(true);
    }
  });

  test('with `tools` it still answers as vLLM with a tool parser: tool_calls, no content', async () => {
    const seed = generateSeedData({ count: 120, seed: 3, wrongLabelRate: 0 }).find((s) => s.profile === 'parallel')!;
    const choice = await chat({
      messages: seed.sample.messages.map((m) => ({ role: m.role, content: m.content })),
      tools: seed.sample.tools.map(toOpenAiTool),
    });
    expect(choice.message.content).toBeNull();
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.tool_calls.length).toBeGreaterThan(1);
    const sample: Sample = { ...seed.sample, target: seed.trueTarget };
    expect(checkSample({ sample, reply: replyOf(choice), config: { mode: 'exact' } }).valid).toBe(true);
  });

  test('knows BFCL questions shown with their own function docs in the system prompt', async () => {
    const samples = bfclSamples(20);
    // Dotted names and BFCL types are shown as BFCL writes them.
    expect(samples.some((s) => s.tools.some((t) => t.name.includes('.')))).toBe(true);
    const before = sim.stats().student;
    const choices = await Promise.all(samples.map((sample) => chat({ messages: policyPrompt(sample) })));
    const after = sim.stats().student;
    expect(after.unknownTruth - before.unknownTruth).toBe(0);
    expect(after.correct - before.correct).toBe(samples.length);
    for (const [index, choice] of choices.entries())
      expect(checkSample({ sample: samples[index]!, reply: replyOf(choice), config: { mode: 'bfcl' } }).valid).toBe(
        true,
      );
  });
});

describe('sim server API key', () => {
  test('as vLLM: /v1 needs `Bearer <key>` (the scheme in any case, the key exact), /health stays open', async () => {
    const keyed = await startSimServer({ apiKey: 'k 1', bfclDir: false });
    try {
      const status = async (path: string, authorization?: string) =>
        (await fetch(`${keyed.url}${path}`, authorization === undefined ? {} : { headers: { authorization } })).status;
      expect(await status('/v1/models', 'Bearer k 1')).toBe(200);
      expect(await status('/v1/models', 'bEaReR k 1')).toBe(200);
      expect(await status('/v1/models')).toBe(401);
      expect(await status('/v1/models', 'Bearer')).toBe(401);
      expect(await status('/v1/models', 'Bearer k')).toBe(401);
      expect(await status('/v1/models', 'Bearer  k 1')).toBe(401);
      expect(await status('/v1/models', 'Basic k 1')).toBe(401);
      expect(await status('/health')).toBe(200);
      expect(keyed.stats().routes['GET /v1/models']).toEqual({ requests: 7, withKey: 2, rejected: 5 });
      expect(keyed.stats().routes['GET /health']).toEqual({ requests: 1, withKey: 0, rejected: 0 });
    } finally {
      await keyed.close();
    }
  });
});

describe('the sim’s batch route (vLLM’s /v1/chat/completions/batch)', () => {
  const post = (server: SimServer, path: string, body: Record<string, unknown>) =>
    fetch(`${server.baseURL}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: server.policyModel, temperature: 0, max_tokens: 256, ...body }),
    });
  const samples = generateSeedData({ count: 6, seed: 5, wrongLabelRate: 0.3 }).map((seed) => seed.sample);

  test('answers each conversation as the single route does, indexed in order, the usage summed', async () => {
    const server = await startSimServer({ bfclDir: false });
    try {
      const singles = [];
      for (const sample of samples) {
        const response = await post(server, '/chat/completions', { messages: policyPrompt(sample), logprobs: true });
        singles.push((await response.json()) as { choices: Record<string, unknown>[]; usage: Record<string, number> });
      }
      const response = await post(server, '/chat/completions/batch', {
        messages: samples.map((sample) => policyPrompt(sample)),
        logprobs: true,
      });
      expect(response.status).toBe(200);
      const batch = (await response.json()) as { choices: Record<string, unknown>[]; usage: Record<string, number> };
      expect(batch.choices).toEqual(singles.map((single, index) => ({ ...single.choices[0], index })));
      for (const key of ['prompt_tokens', 'completion_tokens', 'total_tokens'])
        expect(batch.usage[key]).toBe(singles.reduce((sum, single) => sum + single.usage[key]!, 0));
      // Counted as model requests per conversation, and as one request of its route.
      expect(server.stats().requests.byRole.policy).toBe(samples.length * 2);
      expect(server.stats().routes['POST /v1/chat/completions/batch']?.requests).toBe(1);
    } finally {
      await server.close();
    }
  });

  test('refuses the whole batch for one conversation it cannot serve, and what vLLM refuses there', async () => {
    const server = await startSimServer({ bfclDir: false, maxModelLen: 600 });
    try {
      const long = { ...samples[0]!, messages: [{ role: 'user' as const, content: 'x'.repeat(4000) }] };
      const refused = await post(server, '/chat/completions/batch', {
        messages: [policyPrompt(samples[1]!), policyPrompt(long)],
      });
      expect(refused.status).toBe(400);
      expect(((await refused.json()) as { error: { message: string } }).error.message).toContain(
        'maximum context length',
      );
      for (const bad of [{ messages: [] }, { messages: [[]], stream: true }, { messages: [[]], tools: [] }, { n: 2 }])
        expect(
          (await post(server, '/chat/completions/batch', { messages: [policyPrompt(samples[1]!)], ...bad })).status,
        ).toBe(400);
    } finally {
      await server.close();
    }
  });

  test('without the route (an older vLLM) it is 404 Not Found', async () => {
    const server = await startSimServer({ bfclDir: false, batchRoute: false });
    try {
      const response = await post(server, '/chat/completions/batch', { messages: [policyPrompt(samples[0]!)] });
      expect(response.status).toBe(404);
      expect(await response.json()).toEqual({ detail: 'Not Found' });
    } finally {
      await server.close();
    }
  });
});
