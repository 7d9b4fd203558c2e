import { describe, expect, test } from 'vitest';
import { checkSample, compileSampleChecker, type CheckerConfig } from '../../../core/checker/index.js';
import { JsonFloat } from '../../../core/json.js';
import type { FunctionDefinition } from '../../../core/schemas/function-def.js';
import type { Sample, Target } from '../../../core/schemas/sample.js';

const EXACT: CheckerConfig = { mode: 'exact' };

const tools: FunctionDefinition[] = [
  {
    name: 'play',
    parameters: {
      type: 'object',
      properties: {
        artist: { type: 'string' },
        tags: { type: 'array', items: { type: 'string' } },
        genres: { type: 'array', items: { type: 'string' }, uniqueItems: true },
        volume: { type: 'number' },
        loud: { type: 'boolean' },
      },
      required: ['artist'],
    },
  },
  {
    name: 'math.hypot',
    parameters: {
      type: 'object',
      properties: { x: { type: 'integer' }, y: { type: 'integer' } },
      required: ['x', 'y'],
    },
  },
];

function sample(target: Target): Sample {
  return { tools, messages: [{ role: 'user', content: 'play music' }], target };
}

function block(name: string, args: string): string {
  return `<tool_call>\n{"name": "${name}", "arguments": ${args}}\n</tool_call>`;
}

const A = block('play', '{"artist": "A"}');
const B = block('play', '{"artist": "B"}');

describe('exact mode (LoopTool ToolMatch without the official bugs)', () => {
  const calls = (...artists: string[]): Target => ({
    kind: 'calls',
    calls: artists.map((artist) => ({ name: 'play', arguments: { artist } })),
  });

  test('matches calls as an order-insensitive multiset with key-order-insensitive arguments', () => {
    expect(checkSample({ sample: sample(calls('A', 'B')), reply: `${B}\n${A}`, config: EXACT })).toEqual({
      valid: true,
    });
    const target: Target = {
      kind: 'calls',
      calls: [{ name: 'play', arguments: { artist: 'A', volume: new JsonFloat(0.5) } }],
    };
    expect(
      checkSample({ sample: sample(target), reply: block('play', '{"volume": 0.5, "artist": "A"}'), config: EXACT }),
    ).toEqual({ valid: true });
  });

  test('counts duplicate calls instead of collapsing them: [A, A, B] does not match [A, B, B]', () => {
    const verdict = checkSample({ sample: sample(calls('A', 'B', 'B')), reply: `${A}\n${A}\n${B}`, config: EXACT });
    expect(verdict).toMatchObject({ valid: false, errorType: 'exact_match:no_match' });
    expect(checkSample({ sample: sample(calls('A', 'A', 'B')), reply: `${A}\n${B}\n${A}`, config: EXACT })).toEqual({
      valid: true,
    });
  });

  test('keeps list order inside arguments unless the schema says uniqueItems', () => {
    const target: Target = {
      kind: 'calls',
      calls: [{ name: 'play', arguments: { artist: 'A', tags: ['x', 'y'], genres: ['rock', 'pop'] } }],
    };
    expect(
      checkSample({
        sample: sample(target),
        reply: block('play', '{"artist": "A", "tags": ["x", "y"], "genres": ["pop", "rock"]}'),
        config: EXACT,
      }),
    ).toEqual({ valid: true });
    expect(
      checkSample({
        sample: sample(target),
        reply: block('play', '{"artist": "A", "tags": ["y", "x"], "genres": ["rock", "pop"]}'),
        config: EXACT,
      }),
    ).toMatchObject({
      errorType: 'exact_match:no_match',
    });
    expect(
      checkSample({
        sample: sample(target),
        reply: block('play', '{"artist": "A", "tags": ["x", "y", "y"], "genres": ["rock", "pop"]}'),
        config: EXACT,
      }),
    ).toMatchObject({
      valid: false,
    });
  });

  test('compares numbers by value (5 == 5.0) but never a boolean with a number, and strings exactly', () => {
    const target: Target = { kind: 'calls', calls: [{ name: 'play', arguments: { artist: 'A', volume: 1 } }] };
    expect(
      checkSample({ sample: sample(target), reply: block('play', '{"artist": "A", "volume": 1.0}'), config: EXACT }),
    ).toEqual({ valid: true });
    expect(
      checkSample({ sample: sample(target), reply: block('play', '{"artist": "A", "volume": true}'), config: EXACT }),
    ).toMatchObject({ valid: false });
    expect(
      checkSample({ sample: sample(calls('A')), reply: block('play', '{"artist": "a"}'), config: EXACT }),
    ).toMatchObject({ valid: false });
  });

  test('never reads calls out of the <think> block', () => {
    const verdict = checkSample({
      sample: sample(calls('A')),
      reply: `<think>${A}</think>I would play A.`,
      config: EXACT,
    });
    expect(verdict).toMatchObject({ valid: false, errorType: 'exact_match:expected_call' });
  });

  test('applies the dotted-name rule: math.hypot and math_hypot are the same tool', () => {
    const target: Target = { kind: 'calls', calls: [{ name: 'math.hypot', arguments: { x: 3, y: 4 } }] };
    expect(
      checkSample({ sample: sample(target), reply: block('math_hypot', '{"x": 3, "y": 4}'), config: EXACT }),
    ).toEqual({ valid: true });
  });

  test('a text target passes only when the reply makes no call', () => {
    const target: Target = { kind: 'text', text: 'Which artist?' };
    expect(checkSample({ sample: sample(target), reply: 'Which artist would you like?', config: EXACT })).toEqual({
      valid: true,
    });
    expect(checkSample({ sample: sample(target), reply: A, config: EXACT })).toMatchObject({
      errorType: 'exact_match:expected_no_call',
    });
  });

  test('a malformed reply is a parse error, a missing or extra call a count error', () => {
    expect(
      checkSample({ sample: sample(calls('A')), reply: '<tool_call>{"name": "play", "arguments": {', config: EXACT }),
    ).toMatchObject({ errorType: 'exact_match:parse_error' });
    expect(checkSample({ sample: sample(calls('A', 'B')), reply: A, config: EXACT })).toMatchObject({
      errorType: 'exact_match:wrong_count',
    });
  });

  test('acceptable targets: each argument equals one acceptable value exactly, "" allows leaving it out', () => {
    const target: Target = {
      kind: 'acceptable',
      calls: [{ name: 'play', arguments: { artist: ['A', 'Artist A'], loud: [true, ''] } }],
    };
    expect(
      checkSample({ sample: sample(target), reply: block('play', '{"artist": "Artist A"}'), config: EXACT }),
    ).toEqual({ valid: true });
    expect(
      checkSample({ sample: sample(target), reply: block('play', '{"artist": "A", "loud": true}'), config: EXACT }),
    ).toEqual({ valid: true });
    expect(
      checkSample({ sample: sample(target), reply: block('play', '{"artist": "artist a"}'), config: EXACT }),
    ).toMatchObject({ valid: false });
  });

  test('acceptable targets are matched optimally, not greedily', () => {
    const target: Target = {
      kind: 'acceptable',
      calls: [
        { name: 'play', arguments: { artist: ['A', 'B'] } },
        { name: 'play', arguments: { artist: ['A'] } },
      ],
    };
    expect(checkSample({ sample: sample(target), reply: `${A}\n${B}`, config: EXACT })).toEqual({ valid: true });
  });
});

describe('the checker is chosen by configuration', () => {
  test('the same sample and reply can pass in bfcl mode (standardized strings) and fail in exact mode', () => {
    const target: Target = { kind: 'calls', calls: [{ name: 'play', arguments: { artist: 'Taylor Swift' } }] };
    const reply = block('play', '{"artist": "taylor swift"}');
    expect(checkSample({ sample: sample(target), reply, config: { mode: 'bfcl' } })).toEqual({ valid: true });
    expect(checkSample({ sample: sample(target), reply, config: EXACT })).toMatchObject({ valid: false });
  });

  test('bfcl mode turns a text target into irrelevance and several calls into order-free parallel matching', () => {
    const text = compileSampleChecker({ sample: sample({ kind: 'text' }), config: { mode: 'bfcl' } });
    if (!text.ok) throw new Error(text.error);
    expect(text.checker.check('No tool fits.')).toEqual({ valid: true });
    expect(text.checker.check(A)).toMatchObject({ errorType: 'irrelevance_error:decoder_success' });
    const parallel = compileSampleChecker({
      sample: sample({
        kind: 'calls',
        calls: [
          { name: 'play', arguments: { artist: 'A' } },
          { name: 'play', arguments: { artist: 'B' } },
        ],
      }),
      config: { mode: 'bfcl' },
    });
    if (!parallel.ok) throw new Error(parallel.error);
    expect(parallel.checker.check(`${B}\n${A}`)).toEqual({ valid: true });
    expect(parallel.checker.check(A)).toMatchObject({ errorType: 'parallel_function_checker_no_order:wrong_count' });
  });

  test('bfcl mode reports a target naming an unknown tool instead of throwing', () => {
    const verdict = checkSample({
      sample: {
        ...sample({ kind: 'calls', calls: [{ name: 'nope', arguments: {} }] }),
        tools: [tools[0] as FunctionDefinition, tools[1] as FunctionDefinition],
      },
      reply: A,
      config: { mode: 'bfcl' },
    });
    expect(verdict).toMatchObject({ valid: false, errorType: 'checker:invalid_target' });
  });
});
