import { describe, expect, test } from 'vitest';
import { ExpandConfig } from '../../../core/config.js';
import { ExpandBatchInput } from '../../../core/inputs.js';
import { FunctionDefinition } from '../../../core/schemas/function-def.js';
import type { ChatMessage } from '../../../core/schemas/messages.js';
import { GeneratorOutput, generatedTurnMessage } from '../../../core/schemas/model-io.js';
import { validateCalls, validateConversation } from '../../../core/validate/calls.js';

/**
 * The rule tier of EDDE over a generated sample's history (core/validate/calls.ts): earlier calls are held to the same
 * rules as the answer's, tool results must follow the call they answer, and every violation names its turn. Also the
 * generator's output schema (history turns, a text answer) and the expand config's sampling defaults.
 */

const tools = [
  FunctionDefinition.parse({
    name: 'search_flights',
    parameters: {
      type: 'object',
      properties: { origin: { type: 'string' }, destination: { type: 'string' }, passengers: { type: 'integer' } },
      required: ['origin', 'destination'],
    },
  }),
  FunctionDefinition.parse({
    name: 'book_flight',
    parameters: { type: 'object', properties: { flight_id: { type: 'string' } }, required: ['flight_id'] },
  }),
];

const search = { origin: 'Oslo', destination: 'Rome' };
const history = (overrides: { call?: Record<string, unknown>; result?: Partial<ChatMessage> } = {}): ChatMessage[] => [
  { role: 'user', content: 'Find flights from Oslo to Rome.' },
  {
    role: 'assistant',
    content: null,
    tool_calls: [
      {
        id: 'call_0',
        type: 'function',
        function: { name: 'search_flights', arguments: (overrides.call ?? search) as never },
      },
    ],
  },
  {
    role: 'tool',
    content: '{"flights": [{"flight_id": "FL-204"}]}',
    tool_call_id: 'call_0',
    name: 'search_flights',
    ...overrides.result,
  } as ChatMessage,
  { role: 'assistant', content: 'I found FL-204.' },
  { role: 'user', content: 'Book the first one.' },
];

describe('validateConversation (the rule tier over the history)', () => {
  test('a history whose calls fit the tools and whose results follow them passes', () => {
    expect(validateConversation(history(), tools)).toEqual([]);
    // The turn to answer may be a tool result (the next step after it), and a parallel call turn gets one result each.
    const parallel: ChatMessage[] = [
      { role: 'user', content: 'Search both routes.' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 'a', type: 'function', function: { name: 'search_flights', arguments: search } },
          {
            id: 'b',
            type: 'function',
            function: { name: 'search_flights', arguments: { ...search, origin: 'Bergen' } },
          },
        ],
      },
      { role: 'tool', content: '{}', tool_call_id: 'b' },
      { role: 'tool', content: '{}', tool_call_id: 'a' },
    ];
    expect(validateConversation(parallel, tools)).toEqual([]);
  });

  test('a history call that breaks the rules is reported at its turn, like an answer call is at its index', () => {
    const unknown = validateConversation(history({ call: { ...search, cabin: 'business' } }), tools);
    expect(unknown).toEqual([
      {
        field: 'conversation[1].tool_calls[0].arguments.cabin',
        rule: 'unknown_parameter',
        message: 'search_flights has no parameter cabin',
      },
    ]);
    expect(validateConversation(history({ call: { origin: 'Oslo' } }), tools)).toEqual([
      expect.objectContaining({
        field: 'conversation[1].tool_calls[0].arguments.destination',
        rule: 'missing_required',
      }),
    ]);
    expect(validateConversation(history({ call: { ...search, passengers: '2' } }), tools)).toEqual([
      expect.objectContaining({ field: 'conversation[1].tool_calls[0].arguments.passengers', rule: 'wrong_type' }),
    ]);
    const unoffered = history({ result: { name: 'cancel_flight' } });
    (unoffered[1] as { tool_calls: { function: { name: string } }[] }).tool_calls[0]!.function.name = 'cancel_flight';
    expect(validateConversation(unoffered, tools)).toEqual([
      expect.objectContaining({ field: 'conversation[1].tool_calls[0].name', rule: 'unknown_function' }),
    ]);
    // The answer's calls keep their own path.
    expect(validateCalls([{ name: 'book_flight', arguments: {} }], tools)).toEqual([
      expect.objectContaining({ field: 'tool_calls[0].arguments.flight_id', rule: 'missing_required' }),
    ]);
  });

  test('tool results must follow the call they answer, with matching ids and names when given', () => {
    const fields = (messages: ChatMessage[]) => validateConversation(messages, tools).map((v) => v.field);
    const messages = (v: ReturnType<typeof validateConversation>) => v.map((x) => x.message).join(' | ');

    // A result with no call before it.
    const orphan: ChatMessage[] = [
      { role: 'user', content: 'Hi.' },
      { role: 'tool', content: '{}', tool_call_id: 'call_0' },
      { role: 'user', content: 'Book FL-1.' },
    ];
    expect(fields(orphan)).toEqual(['conversation[1]']);
    expect(messages(validateConversation(orphan, tools))).toMatch(/must follow the assistant turn whose call/);

    // An id that names no call of the turn before.
    const wrongId = validateConversation(history({ result: { tool_call_id: 'call_9' } }), tools);
    expect(wrongId.map((v) => v.field)).toEqual(['conversation[2]']);
    expect(wrongId[0]!.message).toBe('tool_call_id call_9 names no call of conversation[1]');

    // A name that is not the answered call's function.
    const wrongName = validateConversation(history({ result: { name: 'book_flight' } }), tools);
    expect(wrongName.map((v) => v.field)).toEqual(['conversation[2]']);

    // A call left without its result (the summary follows the call directly).
    const unanswered = history().filter((m) => m.role !== 'tool');
    const missing = validateConversation(unanswered, tools);
    expect(missing.map((v) => v.field)).toEqual(['conversation[1]']);
    expect(missing[0]!.message).toMatch(/1 tool call but 0 tool results/);

    // Two results for one id.
    const twice = history();
    twice.splice(3, 0, { ...(twice[2] as ChatMessage) });
    expect(fields(twice)).toEqual(['conversation[1]', 'conversation[3]']);
  });

  test('the conversation opens with a user turn and ends with the turn to answer; assistant turns say something', () => {
    const fields = (messages: ChatMessage[]) => validateConversation(messages, tools).map((v) => v.field);
    expect(
      fields([
        { role: 'assistant', content: 'Hello.' },
        { role: 'user', content: 'Hi.' },
      ]),
    ).toEqual(['conversation[0]']);
    expect(
      fields([
        { role: 'user', content: 'Hi.' },
        { role: 'assistant', content: 'Hello.' },
      ]),
    ).toEqual(['conversation[1]']);
    expect(
      fields([
        { role: 'user', content: 'Hi.' },
        { role: 'assistant', content: ' ' },
        { role: 'user', content: 'Hi?' },
      ]),
    ).toEqual(['conversation[1]']);
    // A system prompt first is not a turn of the dialogue.
    expect(fields([{ role: 'system', content: 'Be helpful.' }, ...history()])).toEqual([]);
  });
});

describe('GeneratorOutput (what the generator returns)', () => {
  test('takes history turns with tool calls and results, and either calls or a text answer', () => {
    const withHistory = GeneratorOutput.parse({
      conversation: [
        { role: 'user', content: 'Find flights from Oslo to Rome.' },
        { role: 'assistant', tool_calls: [{ id: 'call_0', name: 'search_flights', arguments: search }] },
        { role: 'tool', tool_call_id: 'call_0', name: 'search_flights', content: '{"flights": []}' },
        { role: 'user', content: 'Book FL-204.' },
      ],
      tool_calls: [{ name: 'book_flight', arguments: { flight_id: 'FL-204' } }],
    });
    expect(withHistory.conversation.map((t) => generatedTurnMessage(t))).toEqual([
      { role: 'user', content: 'Find flights from Oslo to Rome.' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [{ id: 'call_0', type: 'function', function: { name: 'search_flights', arguments: search } }],
      },
      { role: 'tool', tool_call_id: 'call_0', name: 'search_flights', content: '{"flights": []}' },
      { role: 'user', content: 'Book FL-204.' },
    ]);
    const text = GeneratorOutput.parse({
      conversation: [{ role: 'user', content: 'Book me a flight.' }],
      content: 'Where would you like to fly from, and to?',
    });
    expect(text).toMatchObject({ tool_calls: [], content: 'Where would you like to fly from, and to?' });
    // generator.v1's replies (calls only, plain turns) still fit.
    expect(
      GeneratorOutput.safeParse({
        conversation: [{ role: 'user', content: 'x' }],
        tool_calls: [{ name: 'book_flight', arguments: { flight_id: 'F' } }],
      }).success,
    ).toBe(true);
  });

  test('refuses neither or both answers, naming the field', () => {
    for (const bad of [
      { conversation: [{ role: 'user', content: 'x' }] },
      { conversation: [{ role: 'user', content: 'x' }], tool_calls: [], content: '  ' },
      {
        conversation: [{ role: 'user', content: 'x' }],
        tool_calls: [{ name: 'book_flight', arguments: {} }],
        content: 'and words',
      },
    ]) {
      const parsed = GeneratorOutput.safeParse(bad);
      expect(parsed.success).toBe(false);
      if (!parsed.success) expect(parsed.error.issues[0]?.path).toEqual(['tool_calls']);
    }
  });
});

describe('expand sampling in the config', () => {
  test("defaults to the official generator sampling (LOOPTOOL-METHOD.md §5.3) and the newest prompts, and the batch input takes the config's", () => {
    const defaults = ExpandConfig.parse({});
    expect(defaults).toMatchObject({
      temperature: 1.0,
      topP: 0.9,
      topK: 20,
      presencePenalty: 1.2,
      maxTokens: 8192,
      generatorPromptVersion: 'generator.v2',
      validatorPromptVersion: 'validator.v1',
    });
    const input = ExpandBatchInput.parse({
      loopName: 'l',
      iteration: 1,
      batch: { batchNo: 0 },
      generator: { model: 'g' },
      seed: 1,
    });
    expect(input).toMatchObject({
      temperature: 1.0,
      topP: 0.9,
      topK: 20,
      presencePenalty: 1.2,
      maxTokens: 8192,
      generatorPromptVersion: 'generator.v2',
      validatorPromptVersion: 'validator.v1',
    });
  });

  test('refuses prompt versions of the wrong prompt and out-of-range sampling, naming the field', () => {
    const issues = (value: unknown) => {
      const parsed = ExpandConfig.safeParse(value);
      return parsed.success ? [] : parsed.error.issues.map((i) => i.path.join('.'));
    };
    expect(issues({ generatorPromptVersion: 'judge.v1' })).toEqual(['generatorPromptVersion']);
    expect(issues({ validatorPromptVersion: 'generator.v2' })).toEqual(['validatorPromptVersion']);
    expect(issues({ topP: 0, topK: 2.5, presencePenalty: 3, maxTokens: 0 })).toEqual([
      'topP',
      'topK',
      'presencePenalty',
      'maxTokens',
    ]);
  });
});
