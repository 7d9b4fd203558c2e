import { describe, expect, test } from 'vitest';
import {
  conversationFromPolicyPrompt,
  IM_END,
  IM_START,
  loopToolToSample,
  openAiChatToSamples,
  policyPrompt,
  renderToolsSection,
  sampleFromPolicyPrompt,
  sampleToLoopTool,
  withSystemPrompt,
  type Converted,
  type PolicyPromptMessage,
} from '../../../core/formats/index.js';
import { JsonFloat, parseJson, type JsonValue } from '../../../core/json.js';
import type { FunctionDefinition } from '../../../core/schemas/function-def.js';
import { shareToolList, type Sample } from '../../../core/schemas/sample.js';

function ok<T>(result: Converted<T>): T {
  if (!result.ok) throw new Error(`${result.rejection.field}: ${result.rejection.reason}`);
  return result.value;
}

function json(text: string): JsonValue {
  const parsed = parseJson(text);
  if (!parsed.ok) throw new Error(parsed.error.message);
  return parsed.value;
}

/** The text a ChatML model (Qwen) is given for a chat, without the generation prompt. */
function chatMl(messages: readonly { role: string; content: string }[]): string {
  return messages.map((m) => `${IM_START}${m.role}\n${m.content}${IM_END}\n`).join('');
}

const GET_TIME: FunctionDefinition = {
  name: 'get_time',
  description: 'Current time in a zone',
  parameters: { type: 'object', properties: { zone: { type: 'string' } }, required: ['zone'] },
};
const GET_WEATHER: FunctionDefinition = {
  name: 'weather.get',
  parameters: { type: 'dict', properties: { city: { type: 'string' }, days: { type: 'float' } }, required: ['city'] },
};

function timeCall(zone: string) {
  return { name: 'get_time', arguments: { zone } };
}

/** LoopTool-23k style: the tools in the instruction's slot, two parallel calls answered by two consecutive results. */
const LOOPTOOL_RECORD = {
  instruction: `You are a helpful assistant.\n\n<tools>\n{"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]}}}\n</tools>\n\nThe current time is 2025-01-01.`,
  input:
    'Time in Tokyo and Paris?<|im_end|>\n<|im_start|>assistant\n<tool_call>\n{"name": "get_time", "arguments": {"zone": "Asia/Tokyo"}}\n</tool_call>\n<tool_call>\n{"name": "get_time", "arguments": {"zone": "Europe/Paris", "precision": 1.0}}\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\n{"time": "09:00"}\n</tool_response>\n<tool_response>\n{"time": "01:00"}\n</tool_response><|im_end|>\n<|im_start|>assistant\nTokyo 09:00, Paris 01:00.<|im_end|>\n<|im_start|>user\nAnd London?',
  output: '<tool_call>\n{"name": "get_time", "arguments": {"zone": "Europe/London"}}\n</tool_call>',
};

/** An OpenAI chat sample whose system prompt has no tools slot: the Qwen tools section is appended to it. */
const OPENAI_WITH_SYSTEM: Sample = {
  tools: [GET_TIME, GET_WEATHER],
  messages: [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'Weather in Oslo for 2.5 days, and the time there?' },
    {
      role: 'assistant',
      content: 'Checking.',
      tool_calls: [
        { type: 'function', function: { name: 'weather.get', arguments: { city: 'Oslo', days: new JsonFloat(2.5) } } },
      ],
    },
    { role: 'tool', content: '{"sky": "clear"}' },
    { role: 'user', content: 'Thanks. The time?' },
  ],
  target: { kind: 'calls', calls: [{ name: 'get_time', arguments: { zone: 'Europe/Oslo' } }] },
};

/** No system prompt at all (BFCL questions): the tools section is the whole system prompt. */
const NO_SYSTEM: Sample = {
  tools: [GET_WEATHER],
  messages: [{ role: 'user', content: 'Weather in Rome?' }],
  target: { kind: 'calls', calls: [{ name: 'weather.get', arguments: { city: 'Rome' } }] },
};

describe('policyPrompt', () => {
  test("for a ChatML model, renders LoopTool's [system: instruction, user: input] byte for byte", () => {
    const looptool = ok(loopToolToSample(LOOPTOOL_RECORD as unknown as JsonValue));
    for (const sample of [looptool, OPENAI_WITH_SYSTEM, NO_SYSTEM]) {
      const record = ok(sampleToLoopTool(sample));
      const loopToolText = chatMl([
        { role: 'system', content: record.instruction },
        { role: 'user', content: record.input },
      ]);
      expect(chatMl(policyPrompt(sample))).toBe(loopToolText);
    }
    // The LoopTool record is what the dataset shipped, so the chat is the one the model was trained on.
    expect(chatMl(policyPrompt(looptool))).toBe(
      chatMl([
        { role: 'system', content: LOOPTOOL_RECORD.instruction },
        { role: 'user', content: LOOPTOOL_RECORD.input },
      ]),
    );
  });

  test('fills the tools slot, keeps user turns, writes calls as <tool_call> blocks and merges consecutive results', () => {
    const sample = ok(loopToolToSample(LOOPTOOL_RECORD as unknown as JsonValue));
    expect(policyPrompt(sample)).toEqual([
      { role: 'system', content: LOOPTOOL_RECORD.instruction },
      { role: 'user', content: 'Time in Tokyo and Paris?' },
      {
        role: 'assistant',
        content:
          '<tool_call>\n{"name": "get_time", "arguments": {"zone": "Asia/Tokyo"}}\n</tool_call>\n<tool_call>\n{"name": "get_time", "arguments": {"zone": "Europe/Paris", "precision": 1.0}}\n</tool_call>',
      },
      {
        role: 'user',
        content:
          '<tool_response>\n{"time": "09:00"}\n</tool_response>\n<tool_response>\n{"time": "01:00"}\n</tool_response>',
      },
      { role: 'assistant', content: 'Tokyo 09:00, Paris 01:00.' },
      { role: 'user', content: 'And London?' },
    ] satisfies PolicyPromptMessage[]);
  });

  test('appends the tools section to a system prompt without a slot, and is the section alone without one', () => {
    const withSystem = policyPrompt(OPENAI_WITH_SYSTEM);
    expect(withSystem[0]).toEqual({
      role: 'system',
      content: `Be brief.\n\n${renderToolsSection(OPENAI_WITH_SYSTEM.tools)}`,
    });
    // Names and types as the sample writes them (BFCL's dotted names, `dict`, `float`); floats stay floats.
    expect(withSystem[0]!.content).toContain(
      '{"type": "function", "function": {"name": "weather.get", "parameters": {"type": "dict"',
    );
    expect(withSystem[2]).toEqual({
      role: 'assistant',
      content:
        'Checking.\n<tool_call>\n{"name": "weather.get", "arguments": {"city": "Oslo", "days": 2.5}}\n</tool_call>',
    });
    expect(withSystem[3]).toEqual({ role: 'user', content: '<tool_response>\n{"sky": "clear"}\n</tool_response>' });
    expect(policyPrompt(NO_SYSTEM)).toEqual([
      { role: 'system', content: renderToolsSection(NO_SYSTEM.tools) },
      { role: 'user', content: 'Weather in Rome?' },
    ]);
  });

  test('copies tool descriptions into the slot as written, `$` sequences included', () => {
    const tool: FunctionDefinition = { name: 'price', description: "Costs $$5, see $& and $'" };
    const sample: Sample = {
      tools: [tool],
      messages: [
        { role: 'system', content: 'A <tools>\n</tools> B' },
        { role: 'user', content: 'x' },
      ],
      target: { kind: 'text' },
    };
    expect(policyPrompt(sample)[0]!.content).toBe(
      `A <tools>\n{"type": "function", "function": {"name": "price", "description": "Costs $$5, see $& and $'"}}\n</tools> B`,
    );
  });

  test('a shared tool list renders what an unshared one does, for each of many system texts, the slot included', () => {
    const systems = ['', 'Be brief.', 'A <tools>\n</tools> B', ...Array.from({ length: 20 }, (_, i) => `System ${i}.`)];
    const shared = shareToolList(structuredClone(OPENAI_WITH_SYSTEM.tools));
    for (const round of [1, 2]) {
      for (const system of systems) {
        const messages = OPENAI_WITH_SYSTEM.messages.slice(1);
        const sample: Sample = { ...OPENAI_WITH_SYSTEM, messages: [{ role: 'system', content: system }, ...messages] };
        const expected = policyPrompt(sample);
        expect(policyPrompt({ ...sample, tools: shared }), `${system} (round ${round})`).toEqual(expected);
      }
    }
  });

  test('has no system message only when there is neither system text nor a tool', () => {
    const bare: Sample = { tools: [], messages: [{ role: 'user', content: 'hi' }], target: { kind: 'text' } };
    expect(policyPrompt(bare)).toEqual([{ role: 'user', content: 'hi' }]);
    expect(policyPrompt({ ...bare, messages: [{ role: 'system', content: '' }, ...bare.messages] })).toEqual([
      { role: 'user', content: 'hi' },
    ]);
    expect(policyPrompt({ ...bare, messages: [{ role: 'system', content: 'Be kind.' }, ...bare.messages] })).toEqual([
      { role: 'system', content: 'Be kind.' },
      { role: 'user', content: 'hi' },
    ]);
  });

  test('separate runs of tool results stay separate user turns', () => {
    const sample: Sample = {
      tools: [GET_TIME],
      messages: [
        { role: 'user', content: 'a' },
        { role: 'assistant', content: null, tool_calls: [{ type: 'function', function: timeCall('x') }] },
        { role: 'tool', content: 'r1' },
        { role: 'assistant', content: null, tool_calls: [{ type: 'function', function: timeCall('y') }] },
        { role: 'tool', content: 'r2' },
        { role: 'tool', content: 'r3' },
      ],
      target: { kind: 'text', text: 'done' },
    };
    expect(
      policyPrompt(sample)
        .filter((m) => m.role === 'user')
        .map((m) => m.content),
    ).toEqual([
      'a',
      '<tool_response>\nr1\n</tool_response>',
      '<tool_response>\nr2\n</tool_response>\n<tool_response>\nr3\n</tool_response>',
    ]);
  });

  test('withSystemPrompt gives a sample without one the probe system prompt, ahead of the tools', () => {
    const probed = withSystemPrompt(NO_SYSTEM, 'Call functions.');
    expect(policyPrompt(probed)[0]).toEqual({
      role: 'system',
      content: `Call functions.\n\n${renderToolsSection(NO_SYSTEM.tools)}`,
    });
    // A sample's own system prompt wins.
    expect(withSystemPrompt(OPENAI_WITH_SYSTEM, 'Call functions.')).toBe(OPENAI_WITH_SYSTEM);
  });
});

describe('reading a policy prompt back', () => {
  test('gives back the tools and messages, so the prompt renders again byte for byte', () => {
    const looptool = ok(loopToolToSample(LOOPTOOL_RECORD as unknown as JsonValue));
    const openai = ok(
      openAiChatToSamples(
        json(`{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]}`),
      ),
    )[0]!;
    for (const sample of [looptool, OPENAI_WITH_SYSTEM, NO_SYSTEM, openai]) {
      const prompt = policyPrompt(sample);
      const read = ok(conversationFromPolicyPrompt(prompt));
      expect(read).toEqual({ tools: sample.tools, messages: sample.messages });
      expect(policyPrompt({ ...read, target: sample.target })).toEqual(prompt);
    }
  });

  test('sampleFromPolicyPrompt adds the target from the label text', () => {
    const sample = ok(
      sampleFromPolicyPrompt({
        prompt: policyPrompt(NO_SYSTEM),
        label: '<tool_call>\n{"name": "weather.get", "arguments": {"city": "Rome"}}\n</tool_call>',
      }),
    );
    expect(sample).toEqual(NO_SYSTEM);
    expect(ok(sampleFromPolicyPrompt({ prompt: policyPrompt(NO_SYSTEM), label: 'Sunny.' })).target).toEqual({
      kind: 'text',
      text: 'Sunny.',
    });
  });

  test('locates what does not read: an unknown role, a broken call, a broken tool line, a broken label', () => {
    expect(conversationFromPolicyPrompt([{ role: 'tool', content: 'x' }])).toEqual({
      ok: false,
      rejection: { field: 'prompt[0].role', reason: 'must be system, user or assistant, not "tool"' },
    });
    expect(
      conversationFromPolicyPrompt([
        { role: 'user', content: 'x' },
        { role: 'assistant', content: '<tool_call>\n{"name": \n</tool_call>' },
      ]),
    ).toMatchObject({ ok: false, rejection: { field: 'prompt[1].content' } });
    expect(
      conversationFromPolicyPrompt([
        { role: 'system', content: '<tools>\n{"type": "function", "function": {"name": \n</tools>' },
        { role: 'user', content: 'x' },
      ]),
    ).toMatchObject({
      ok: false,
      rejection: { field: 'prompt[0].content.tools[0]', reason: expect.stringMatching(/^is not valid JSON/) },
    });
    expect(
      sampleFromPolicyPrompt({
        prompt: [{ role: 'user', content: 'x' }],
        label: '<tool_call>\n{"name": "f"}\n</tool_call>',
      }),
    ).toMatchObject({ ok: false, rejection: { field: 'label' } });
  });
});
