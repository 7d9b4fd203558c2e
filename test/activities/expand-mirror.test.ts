import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ErrorType } from '../../core/errors.js';
import { parseJson } from '../../core/json.js';
import type { ExpandBatchInput } from '../../core/inputs.js';
import { GeneratorOutput, generatedTurnMessage } from '../../core/schemas/model-io.js';
import type { Sample } from '../../core/schemas/sample.js';
import { validateConversation } from '../../core/validate/calls.js';
import { getSamples } from '../../db/queries/samples.js';
import { decodeSample } from '../../db/sample-codec.js';
import {
  ALL,
  activitiesWith,
  addLoop,
  createStageFixture,
  registryWith,
  runActivity,
  type StageFixture,
  wholeVersion,
} from '../helpers/stages.js';

/**
 * EDDE that mirrors its seed (issue 13 item 5), against the simulated model server over real HTTP and a real
 * PostgreSQL: expansions of seeds with tool history carry tool calls with their results and pass both tiers, seeds
 * whose correct answer is text yield text answers, a bad call in the history is rejected by the rule tier with a reason
 * naming its turn, and every generation request and expansion row carries the expand config's sampling and prompt
 * versions.
 */

let f: StageFixture;
/** Every generator request body the activities sent, by loop (the request's messages name no loop: by run). */
const generatorBodies: Record<string, unknown>[] = [];
let activities: StageFixture['activities'];

const model = (name: string) => ({ baseUrls: [f.sim.baseURL], maxConcurrency: 16, model: name });

interface Row {
  seed_sample_id: string;
  k: number;
  status: string;
  sample_id: string | null;
  raw_output: string | null;
  rejection_reason: string | null;
  prompt_version: string;
  validator_prompt_version: string | null;
  temperature: number;
  top_p: number;
  top_k: number;
  presence_penalty: number;
  max_tokens: number;
  attempts: number;
}

async function rows(loopName: string): Promise<Row[]> {
  const { rows } = await f.db.pool.query<Row>(
    `SELECT seed_sample_id, k, status, sample_id, raw_output, rejection_reason, prompt_version, validator_prompt_version,
            temperature, top_p, top_k, presence_penalty, max_tokens, attempts
     FROM expansions WHERE loop_name = $1::text ORDER BY seed_sample_id, k`,
    [loopName],
  );
  return rows;
}

async function samplesById(ids: readonly string[]): Promise<Map<string, Sample>> {
  return new Map((await getSamples(f.db.pool, ids)).map((s) => [s.id, decodeSample(s)]));
}

const hasToolHistory = (sample: Sample) =>
  sample.messages.some((m) => m.role === 'assistant' && (m.tool_calls?.length ?? 0) > 0);

function expandInput(loopName: string, extra: Partial<ExpandBatchInput> = {}): ExpandBatchInput {
  return {
    loopName,
    iteration: 1,
    batch: ALL,
    generator: model(f.sim.generatorModel),
    validator: model(f.sim.judgeModel),
    seed: 41,
    ...extra,
  };
}

beforeAll(async () => {
  // More flawed generations than the default, so bad history calls show up in a few hundred slots.
  f = await createStageFixture({ count: 400, seed: 23, wrongLabelRate: 0.25, sim: { generatorFlawRate: 0.3 } });
  activities = activitiesWith(
    f,
    registryWith(async (input, init) => {
      if (typeof init?.body === 'string') {
        const body = JSON.parse(init.body) as Record<string, unknown>;
        if (body.model === f.sim.generatorModel) generatorBodies.push(body);
      }
      return fetch(input, init);
    }),
  );
  for (const loopName of ['mirror', 'custom']) {
    await addLoop(f, loopName);
    await runActivity(f.activities.probeBatch, [
      {
        loopName,
        iteration: 1,
        versionId: f.seedVersion.id,
        batch: await wholeVersion(f, f.seedVersion.id),
        policy: model(f.sim.policyModel),
        checker: { mode: 'exact' },
        maxTokens: 1024,
      },
    ]);
    await runActivity(f.activities.judgeBatch, [
      { loopName, iteration: 1, batch: ALL, judge: model(f.sim.judgeModel), seed: 3, votes: 1 },
    ]);
  }
});
afterAll(async () => f?.close());

describe('expand mirrors the seed', () => {
  let mirror: Row[];
  let samples: Map<string, Sample>;
  /** Error seed → the answer the expansions should mirror (the corrected sample's for LABEL_WRONG). */
  const correctKind = new Map<string, string>();

  beforeAll(async () => {
    const sent = generatorBodies.length;
    await runActivity(activities.expandBatch, [expandInput('mirror')]);
    mirror = await rows('mirror');
    const { rows: seeds } = await f.db.pool.query<{ sample_id: string; verdict: string; corrected: string | null }>(
      `SELECT sample_id, verdict, corrected_sample_id AS corrected FROM judgements
       WHERE loop_name = 'mirror' AND consensus AND verdict IN ('pred_wrong', 'label_wrong')`,
    );
    samples = await samplesById([
      ...mirror.flatMap((r) => (r.sample_id ? [r.sample_id] : [])),
      ...seeds.flatMap((s) => [s.sample_id, ...(s.corrected ? [s.corrected] : [])]),
    ]);
    for (const seed of seeds) {
      const correct = seed.verdict === 'label_wrong' && seed.corrected ? seed.corrected : seed.sample_id;
      correctKind.set(seed.sample_id, samples.get(correct)!.target.kind);
    }
    // Every attempt was one request.
    expect(generatorBodies.length - sent).toBe(mirror.reduce((n, r) => n + r.attempts, 0));
  });

  test('an expansion of a seed with tool history carries tool calls with their results and is accepted', async () => {
    const fromHistorySeeds = mirror.filter(
      (r) => r.status === 'accepted' && hasToolHistory(samples.get(r.seed_sample_id)!),
    );
    const withHistory = fromHistorySeeds.map((r) => samples.get(r.sample_id!)!).filter(hasToolHistory);
    expect(withHistory.length).toBeGreaterThan(0);
    for (const sample of withHistory) {
      // Stored as the sample schema has it: the call turn, then the tool result that answers it, by id.
      const call = sample.messages.findIndex((m) => m.role === 'assistant' && m.tool_calls);
      const callTurn = sample.messages[call] as Extract<Sample['messages'][number], { role: 'assistant' }>;
      expect(callTurn.content).toBeNull();
      expect(sample.messages[call + 1]).toMatchObject({
        role: 'tool',
        tool_call_id: callTurn.tool_calls![0]!.id,
        name: callTurn.tool_calls![0]!.function.name,
      });
      expect(validateConversation(sample.messages, sample.tools)).toEqual([]);
      expect(sample.target.kind).toBe('calls');
    }
    // Only seeds with such history get it.
    for (const row of mirror.filter((r) => r.status === 'accepted' && !hasToolHistory(samples.get(r.seed_sample_id)!)))
      expect(hasToolHistory(samples.get(row.sample_id!)!)).toBe(false);
  });

  test('a seed whose correct answer is text can yield a text answer; others never do', async () => {
    const textAccepted = mirror.filter(
      (r) => r.status === 'accepted' && samples.get(r.sample_id!)!.target.kind === 'text',
    );
    expect(textAccepted.length).toBeGreaterThan(0);
    for (const row of textAccepted) {
      expect(correctKind.get(row.seed_sample_id)).toBe('text');
      const target = samples.get(row.sample_id!)!.target;
      expect(target).toEqual({ kind: 'text', text: expect.stringMatching(/\S/) });
    }
    // Accepted expansions of calls seeds all answer with calls.
    for (const row of mirror.filter((r) => r.status === 'accepted' && correctKind.get(r.seed_sample_id) === 'calls'))
      expect(samples.get(row.sample_id!)!.target.kind).toBe('calls');
  });

  test('a bad call in the history is rejected by the rule tier, with a reason naming its turn', async () => {
    const located = mirror.filter(
      (r) => r.status === 'rejected_rule' && /^conversation\[\d+\]\.tool_calls\[\d+\]\./.test(r.rejection_reason ?? ''),
    );
    expect(located.length).toBeGreaterThan(0);
    for (const row of located) {
      // The reason is the rule tier's own reading of the stored raw output.
      const parsed = parseJson(row.raw_output!);
      expect(parsed.ok).toBe(true);
      const output = GeneratorOutput.parse(parsed.ok ? parsed.value : null);
      const violations = validateConversation(
        output.conversation.map((t) => generatedTurnMessage(t)),
        samples.get(row.seed_sample_id)!.tools,
      );
      expect(row.rejection_reason).toContain(`${violations[0]!.field}: ${violations[0]!.message}`);
      expect(row.rejection_reason).toMatch(/^conversation\[1\]\.tool_calls\[0\]\.(name|arguments)/);
      expect(row.sample_id).toBeNull();
    }
  });

  test('every request and every row carries the default sampling (temperature 1.0, top_p 0.9, top_k 20, presence 1.2, 8192 tokens) and prompt versions', () => {
    expect(mirror.length).toBeGreaterThan(0);
    for (const row of mirror)
      expect(row).toMatchObject({
        temperature: 1,
        top_p: 0.9,
        top_k: 20,
        presence_penalty: 1.2,
        max_tokens: 8192,
        prompt_version: 'generator.v2',
        validator_prompt_version: 'validator.v1',
      });
    const mirrorBodies = generatorBodies.slice(
      0,
      mirror.reduce((n, r) => n + r.attempts, 0),
    );
    for (const body of mirrorBodies)
      expect(body).toMatchObject({ temperature: 1, top_p: 0.9, top_k: 20, presence_penalty: 1.2, max_tokens: 8192 });
  });
});

describe("expand takes the config's sampling and prompt versions", () => {
  test('other values are sent and recorded; a skipped LLM tier records no validator prompt', async () => {
    const sent = generatorBodies.length;
    const sampling = { temperature: 0.7, topP: 0.95, topK: 50, presencePenalty: 0.3, maxTokens: 4096 };
    const { validator: _none, ...noValidator } = expandInput('custom', {
      k: 1,
      ...sampling,
      generatorPromptVersion: 'generator.v1',
    });
    await runActivity(activities.expandBatch, [noValidator]);
    const custom = await rows('custom');
    expect(custom.length).toBeGreaterThan(0);
    for (const row of custom)
      expect(row).toMatchObject({
        temperature: 0.7,
        top_p: 0.95,
        top_k: 50,
        presence_penalty: 0.3,
        max_tokens: 4096,
        prompt_version: 'generator.v1',
        validator_prompt_version: null,
      });
    const bodies = generatorBodies.slice(sent);
    expect(bodies).toHaveLength(custom.reduce((n, r) => n + r.attempts, 0));
    for (const body of bodies)
      expect(body).toMatchObject({ temperature: 0.7, top_p: 0.95, top_k: 50, presence_penalty: 0.3, max_tokens: 4096 });
  });

  test('a prompt version the worker does not have fails the batch once, non-retryably, naming the setting', async () => {
    await addLoop(f, 'unknown-prompt');
    const err = await runActivity(activities.expandBatch, [
      expandInput('unknown-prompt', { generatorPromptVersion: 'generator.v99' }),
    ]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).nonRetryable).toBe(true);
    expect((err as ApplicationFailure).type).toBe(ErrorType.ConfigInvalid);
    expect((err as ApplicationFailure).message).toMatch(
      /generator\.v99.*expand\.generatorPromptVersion.*generator\.v1, generator\.v2/,
    );
  });
});
