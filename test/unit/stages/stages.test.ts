import { describe, expect, test } from 'vitest';
import { JsonFloat } from '../../../core/json.js';
import { SCENARIO_FOCUSES } from '../../../core/schemas/model-io.js';
import { type Sample, sampleId } from '../../../core/schemas/sample.js';
import { bfclV3Summary } from '../../../core/stages/bfcl-overall.js';
import { majorityVerdict } from '../../../core/stages/consensus.js';
import { predictionFrom, relabeledSample } from '../../../core/stages/relabel.js';
import { scenarioFocusFor } from '../../../core/stages/scenario.js';
import { validateCalls } from '../../../core/validate/calls.js';
import { encodeSample, decodeSample } from '../../../db/sample-codec.js';
import { contentHash } from '../../../core/hash.js';

const tools: Sample['tools'] = [
  {
    name: 'math.hypot',
    parameters: {
      type: 'dict',
      properties: {
        x: { type: 'integer' },
        y: { type: 'float' },
        unit: { type: 'string', enum: ['m', 'cm'] },
        tags: { type: 'array', items: { type: 'string' } },
      },
      required: ['x', 'y'],
    },
  },
];
const sample: Sample = {
  tools,
  messages: [{ role: 'user', content: 'hypot of 3 and 4.0' }],
  target: { kind: 'calls', calls: [{ name: 'math.hypot', arguments: { x: 3, y: new JsonFloat(4) } }] },
};

describe('judge consensus (fixing the official single-vote bug)', () => {
  test('one vote requested: that vote is its own consensus', () => {
    expect(majorityVerdict(['label_wrong'])).toEqual({ verdict: 'label_wrong', consensus: true, validVotes: 1 });
  });
  test('by default a strict majority of the votes requested: a failed vote abstains', () => {
    expect(majorityVerdict(['pred_wrong', 'pred_wrong', 'label_wrong'])).toMatchObject({
      verdict: 'pred_wrong',
      consensus: true,
    });
    // One valid vote of three requested decides nothing: it may not rewrite a label.
    expect(majorityVerdict(['label_wrong', undefined, undefined])).toMatchObject({
      verdict: 'label_wrong',
      consensus: false,
      validVotes: 1,
    });
    expect(majorityVerdict(['label_wrong', 'label_wrong', undefined])).toMatchObject({ consensus: true });
    expect(majorityVerdict(['label_wrong', 'label_wrong', undefined, undefined])).toMatchObject({ consensus: false });
    expect(majorityVerdict(['pred_wrong', 'label_wrong'])).toMatchObject({ consensus: false });
    expect(majorityVerdict([undefined, undefined])).toEqual({ verdict: undefined, consensus: false, validVotes: 0 });
  });
  test("consensusOver: 'valid' counts only the votes that could be read", () => {
    expect(majorityVerdict(['pred_wrong', undefined, undefined], 'valid')).toMatchObject({
      verdict: 'pred_wrong',
      consensus: true,
      validVotes: 1,
    });
    expect(majorityVerdict(['pred_wrong', 'label_wrong', undefined], 'valid')).toMatchObject({ consensus: false });
    expect(majorityVerdict([undefined], 'valid')).toMatchObject({ consensus: false });
  });
});

describe('EDDE scenario focus', () => {
  test('is uniform over the four focuses (the official randint(0,6) % 4 was not) and reproducible', () => {
    const counts = new Map<string, number>();
    for (let k = 0; k < 8000; k++) {
      const focus = scenarioFocusFor({ seed: 7, iteration: 1, seedSampleId: `s${k >> 2}`, k: k & 3 });
      counts.set(focus, (counts.get(focus) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual([...SCENARIO_FOCUSES].sort());
    for (const n of counts.values()) expect(Math.abs(n - 2000)).toBeLessThan(150);
    expect(scenarioFocusFor({ seed: 7, iteration: 1, seedSampleId: 'x', k: 2 })).toBe(
      scenarioFocusFor({ seed: 7, iteration: 1, seedSampleId: 'x', k: 2 }),
    );
  });
});

describe('rule validation of generated calls', () => {
  test('accepts a call that fits its schema', () => {
    expect(validateCalls([{ name: 'math_hypot', arguments: { x: 3, y: 4, unit: 'm' } }], tools)).toEqual([]);
  });
  test('reports unknown functions, missing required, unknown parameters, wrong types and enum misses, each located', () => {
    const violations = validateCalls(
      [
        { name: 'math.sqrt', arguments: {} },
        { name: 'math.hypot', arguments: { x: new JsonFloat(3), unit: 'km', depth: 1, tags: ['a', 2] } },
      ],
      tools,
    );
    expect(violations.map((v) => [v.field, v.rule])).toEqual([
      ['tool_calls[0].name', 'unknown_function'],
      ['tool_calls[1].arguments.y', 'missing_required'],
      ['tool_calls[1].arguments.x', 'wrong_type'],
      ['tool_calls[1].arguments.unit', 'not_in_enum'],
      ['tool_calls[1].arguments.depth', 'unknown_parameter'],
      ['tool_calls[1].arguments.tags[1]', 'wrong_type'],
    ]);
  });
});

describe('label correction', () => {
  test('replaces the label by the prediction, mapping wire names back to the tool names', () => {
    const prediction = predictionFrom([{ name: 'math_hypot', arguments: { x: 3, y: 5 } }], '');
    const corrected = relabeledSample(sample, prediction);
    expect(corrected.target).toEqual({ kind: 'calls', calls: [{ name: 'math.hypot', arguments: { x: 3, y: 5 } }] });
    expect(corrected.messages).toBe(sample.messages);
    expect(sampleId(corrected)).not.toBe(sampleId(sample));
  });
  test('a prediction with no calls becomes a text target', () => {
    expect(relabeledSample(sample, predictionFrom(null, 'I cannot do that')).target).toEqual({
      kind: 'text',
      text: 'I cannot do that',
    });
  });
});

describe('sample codec', () => {
  test('the store ids equal core sampleId and contentHash, and decoding round-trips floats', () => {
    const stored = encodeSample(sample);
    expect(stored.id).toBe(sampleId(sample));
    expect(stored.toolsetId).toBe(contentHash(sample.tools));
    const back = decodeSample(stored);
    expect(sampleId(back)).toBe(stored.id);
    const y = back.target.kind === 'calls' ? back.target.calls[0]!.arguments.y : undefined;
    expect(y).toBeInstanceOf(JsonFloat);
  });
  test('refuses NaN, which PostgreSQL JSON cannot hold', () => {
    const bad = {
      ...sample,
      target: {
        kind: 'calls' as const,
        calls: [{ name: 'math.hypot', arguments: { x: 1, y: new JsonFloat(Number.NaN) } }],
      },
    };
    expect(() => encodeSample(bad)).toThrow(/NaN/);
  });
});

describe('BFCL v3 summary', () => {
  // Irrelevance is reported beside the v3 overall, not inside Non-Live (REAL-EDGES §7; test/unit/core/bfcl-v3-overall.test.ts).
  test('non-live is the unweighted mean of categories, simple being the mean of its parts; live is entry-weighted', () => {
    const summary = bfclV3Summary([
      { category: 'simple_python', correct: 90, total: 100 },
      { category: 'multiple', correct: 40, total: 50 },
      { category: 'irrelevance', correct: 10, total: 10 },
      { category: 'live_simple', correct: 1, total: 4 },
      { category: 'live_multiple', correct: 16, total: 16 },
    ]);
    expect(summary.nonLive).toBeCloseTo((0.9 + 0.8) / 2);
    expect(summary.live).toBeCloseTo(17 / 20);
    expect(summary.overall).toBeCloseTo(((0.9 + 0.8) / 2 + 17 / 20) / 2);
  });
});
