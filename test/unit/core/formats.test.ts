import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import {
  bfclAnswerFromRecord,
  bfclQuestionFromRecord,
  bfclToSample,
  loopToolToSample,
  openAiChatToSamples,
  policyPrompt,
  sampleToBfclRecords,
  sampleToLoopTool,
  sampleToOpenAiChat,
  sampleToOpenAiChatLine,
  sampleToTrl,
  sampleToVerlRow,
  shareGptToSamples,
  type Converted,
} from '../../../core/formats/index.js';
import { JsonFloat, parseJson, stringifyJson, type JsonValue } from '../../../core/json.js';
import { sampleId, shareToolList, toolListText, type Sample } from '../../../core/schemas/sample.js';

const DATA = fileURLToPath(new URL('../../../data/bfcl/', import.meta.url));

function json(text: string): JsonValue {
  const result = parseJson(text);
  if (!result.ok) throw new Error(result.error.message);
  return result.value;
}

function ok<T>(result: Converted<T>): T {
  if (!result.ok) throw new Error(`${result.rejection.field}: ${result.rejection.reason}`);
  return result.value;
}

function lines(file: string): JsonValue[] {
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map(json);
}

describe('BFCL records', () => {
  test('every question and possible answer in the data converts to a sample and back without loss', () => {
    for (const category of ['simple_python', 'multiple', 'parallel', 'parallel_multiple']) {
      const answers = lines(`${DATA}possible_answer/BFCL_v4_${category}.json`);
      lines(`${DATA}BFCL_v4_${category}.json`).forEach((record, index) => {
        const question = ok(bfclQuestionFromRecord(record));
        const answer = ok(bfclAnswerFromRecord(answers[index] as JsonValue));
        const sample = ok(bfclToSample({ question, answer }));
        expect(sample.target.kind).toBe('acceptable');
        const back = sampleToBfclRecords({ sample, id: question.id });
        const again = ok(
          bfclToSample({
            question: ok(bfclQuestionFromRecord(back.question)),
            answer: ok(bfclAnswerFromRecord(back.answer as JsonValue)),
          }),
        );
        expect(sampleId(again)).toBe(sampleId(sample));
        expect(stringifyJson(back.answer, { sortKeys: true })).toBe(stringifyJson(answers[index], { sortKeys: true }));
      });
    }
  });

  test('irrelevance questions have no answer and become text targets', () => {
    const question = ok(bfclQuestionFromRecord(lines(`${DATA}BFCL_v4_irrelevance.json`)[0] as JsonValue));
    expect(ok(bfclToSample({ question })).target).toEqual({ kind: 'text' });
    expect(bfclToSample({ question: { ...question, id: 'simple_python_0', category: 'simple_python' } })).toMatchObject(
      { ok: false, rejection: { field: 'id' } },
    );
  });

  test('rejects malformed records with the field path', () => {
    expect(
      bfclQuestionFromRecord(
        json(
          '{"id": "x_1", "question": [[{"role": "user", "content": "q"}]], "function": [{"name": "f", "parameters": {"type": "dict", "properties": {"a": {"type": "matrix"}}}}]}',
        ),
      ),
    ).toMatchObject({
      ok: false,
      rejection: { field: 'function[0].parameters.properties.a.type' },
    });
    expect(bfclAnswerFromRecord(json('{"id": "x_1", "ground_truth": [{"f": {"a": [1]}, "g": {}}]}'))).toMatchObject({
      ok: false,
      rejection: { field: 'ground_truth[0]' },
    });
    expect(bfclAnswerFromRecord(json('{"id": "x_1", "ground_truth": [{"f": {"a": 1}}]}'))).toMatchObject({
      ok: false,
      rejection: { field: 'ground_truth[0].f.a' },
    });
    expect(
      bfclQuestionFromRecord(
        json(
          '{"id": "x_1", "question": [[{"role": "user", "content": "a"}], [{"role": "user", "content": "b"}]], "function": []}',
        ),
      ),
    ).toMatchObject({
      ok: false,
      rejection: { field: 'question' },
    });
  });
});

const chatRecord = json(`{
  "tools": [{"type": "function", "function": {"name": "get_weather", "description": "w", "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}, "temp": {"type": "number"}}, "required": ["city"]}}}],
  "messages": [
    {"role": "system", "content": "You are helpful."},
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\", \\"temp\\": 20.0}"}}]},
    {"role": "tool", "tool_call_id": "c1", "content": "{\\"sky\\": \\"clear\\"}"},
    {"role": "assistant", "content": "Clear skies."},
    {"role": "user", "content": "And Rome for 3 days?"},
    {"role": "assistant", "content": null, "tool_calls": [{"id": "c2", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Rome", "days": 3}}}]}
  ]
}`);

describe('OpenAI chat records', () => {
  test('the last assistant turn becomes the target; argument strings are parsed keeping floats', () => {
    const [sample] = ok(openAiChatToSamples(chatRecord));
    expect(sample?.target).toEqual({
      kind: 'calls',
      calls: [{ name: 'get_weather', arguments: { city: 'Rome', days: 3 } }],
    });
    expect(sample?.messages).toHaveLength(6);
    expect(sample?.messages[2]).toEqual({
      role: 'assistant',
      content: null,
      tool_calls: [
        {
          id: 'c1',
          type: 'function',
          function: { name: 'get_weather', arguments: { city: 'Paris', temp: new JsonFloat(20) } },
        },
      ],
    });
  });

  test('split "each" makes one sample per assistant turn (calls and text targets)', () => {
    const samples = ok(openAiChatToSamples(chatRecord, { split: 'each' }));
    expect(samples.map((s) => s.target.kind)).toEqual(['calls', 'text', 'calls']);
    expect(samples[1]?.target).toEqual({ kind: 'text', text: 'Clear skies.' });
  });

  test('writing a sample and reading it back gives the same sample (same id), floats included', () => {
    for (const sample of ok(openAiChatToSamples(chatRecord, { split: 'each' }))) {
      const record = ok(sampleToOpenAiChat(sample));
      expect(stringifyJson(record)).toContain('20.0');
      const [back] = ok(openAiChatToSamples(json(stringifyJson(record))));
      expect(back).toEqual(sample);
      expect(sampleId(back as Sample)).toBe(sampleId(sample));
    }
  });

  test("a sample's chat line is the JSON text of its record, whether its tool list is shared (text kept) or not", () => {
    for (const sample of ok(openAiChatToSamples(chatRecord, { split: 'each' }))) {
      const expected = stringifyJson(ok(sampleToOpenAiChat(sample)));
      expect(ok(sampleToOpenAiChatLine(sample))).toBe(expected);
      const shared: Sample = { ...sample, tools: shareToolList(structuredClone(sample.tools)) };
      expect(ok(sampleToOpenAiChatLine(shared))).toBe(expected);
      // The kept text of the shared list, and a different list with the same tools gets its own.
      expect(ok(sampleToOpenAiChatLine(shared))).toBe(expected);
      expect(ok(sampleToOpenAiChatLine({ ...sample, tools: sample.tools.slice(1) }))).toBe(
        stringifyJson(ok(sampleToOpenAiChat({ ...sample, tools: sample.tools.slice(1) }))),
      );
    }
  });

  test('rejects bad arguments and bad roles with the field path', () => {
    const badArgs = json(
      '{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": null, "tool_calls": [{"function": {"name": "f", "arguments": "{oops"}}]}]}',
    );
    expect(openAiChatToSamples(badArgs)).toMatchObject({
      ok: false,
      rejection: { field: 'messages[1].tool_calls[0].function.arguments' },
    });
    const badRole = json('{"messages": [{"role": "robot", "content": "x"}]}');
    expect(openAiChatToSamples(badRole)).toMatchObject({ ok: false, rejection: { field: 'messages[0].role' } });
    expect(openAiChatToSamples(json('{"messages": [{"role": "user", "content": "x"}]}'))).toMatchObject({
      ok: false,
      rejection: { field: 'messages' },
    });
  });

  test('acceptable targets cannot be written as a chat turn', () => {
    const sample: Sample = {
      tools: [],
      messages: [{ role: 'user', content: 'x' }],
      target: { kind: 'acceptable', calls: [{ name: 'f', arguments: { a: [1, 2] } }] },
    };
    expect(sampleToOpenAiChat(sample)).toMatchObject({ ok: false, rejection: { field: 'target' } });
    expect(sampleToOpenAiChatLine(sample)).toMatchObject({ ok: false, rejection: { field: 'target' } });
  });
});

describe('TRL GRPO records', () => {
  test('carry the policy prompt, the label text, the tools as JSON text and the sample id', () => {
    const sample: Sample = {
      tools: [
        { name: 'math.hypot', parameters: { type: 'dict', properties: { x: { type: 'float' } }, required: ['x'] } },
      ],
      messages: [{ role: 'user', content: 'hypot of 3' }],
      target: { kind: 'calls', calls: [{ name: 'math.hypot', arguments: { x: new JsonFloat(3) } }] },
    };
    const record = ok(sampleToTrl(sample));
    expect(record).toEqual({
      prompt: policyPrompt(sample),
      ground_truth: '<tool_call>\n{"name": "math.hypot", "arguments": {"x": 3.0}}\n</tool_call>',
      tools:
        '[{"name":"math.hypot","parameters":{"type":"dict","properties":{"x":{"type":"float"}},"required":["x"]}}]',
      sample_id: sampleId(sample),
    });
    // The tools are the sample's own definitions (names as written, BFCL types), in the system prompt as in the column.
    expect(record.prompt.map((m) => m.role)).toEqual(['system', 'user']);
    expect(record.prompt[0]!.content).toContain('"name": "math.hypot"');
  });

  test('reject a target with several acceptable values (no single label)', () => {
    const sample: Sample = {
      tools: [{ name: 'f' }],
      messages: [{ role: 'user', content: 'x' }],
      target: { kind: 'acceptable', calls: [{ name: 'f', arguments: { a: [1, 2] } }] },
    };
    expect(sampleToTrl(sample)).toMatchObject({ ok: false, rejection: { field: 'target' } });
  });
});

describe('ShareGPT records', () => {
  test('ToolACE style: tools from the system prompt, Python-syntax calls, tool results', () => {
    const record = json(`{
      "system": "You are an expert. Here is a list of functions in JSON format that you can invoke:\\n[{\\"name\\": \\"Get Rule Sets\\", \\"description\\": \\"r\\", \\"parameters\\": {\\"type\\": \\"dict\\", \\"properties\\": {\\"limit\\": {\\"type\\": \\"integer\\"}}, \\"required\\": []}}]\\nShould you decide to invoke...",
      "conversations": [
        {"from": "user", "value": "Show 5 rule sets"},
        {"from": "assistant", "value": "[Get Rule Sets(limit=5)]"}
      ]
    }`);
    const [sample] = ok(shareGptToSamples(record));
    expect(sample?.tools[0]?.name).toBe('Get Rule Sets');
    expect(sample?.target).toEqual({ kind: 'calls', calls: [{ name: 'Get Rule Sets', arguments: { limit: 5 } }] });
    expect(sample?.messages.map((m) => m.role)).toEqual(['system', 'user']);
  });

  test('a list of calls that does not decode is rejected with its field; prose that starts with a bracket stays text', () => {
    const broken = json(
      '{"tools": [], "conversations": [{"from": "user", "value": "x"}, {"from": "assistant", "value": "[Get Rule Sets(limit=5"}]}',
    );
    expect(shareGptToSamples(broken)).toMatchObject({ ok: false, rejection: { field: 'conversations[1].value' } });
    const prose = json(
      '{"tools": [], "conversations": [{"from": "user", "value": "x"}, {"from": "assistant", "value": "[1] See the footnote."}]}',
    );
    expect(ok(shareGptToSamples(prose))[0]?.target).toEqual({ kind: 'text', text: '[1] See the footnote.' });
  });

  test('LoopTool dialogue style: tools field, JSON-list calls, observation turns, text answers', () => {
    const record = json(`{
      "tools": "[{\\"name\\": \\"search\\", \\"description\\": \\"s\\", \\"parameters\\": {\\"type\\": \\"object\\", \\"properties\\": {\\"q\\": {\\"type\\": \\"string\\"}}}}]",
      "conversations": [
        {"from": "human", "value": "find cats"},
        {"from": "gpt", "value": "[{\\"name\\": \\"search\\", \\"arguments\\": {\\"q\\": \\"cats\\"}}]"},
        {"from": "observation", "value": "[{\\"name\\": \\"search\\", \\"results\\": [\\"cat.jpg\\"]}]"},
        {"from": "gpt", "value": "Here is a cat picture."}
      ]
    }`);
    const samples = ok(shareGptToSamples(record, { split: 'each' }));
    expect(samples.map((s) => s.target)).toEqual([
      { kind: 'calls', calls: [{ name: 'search', arguments: { q: 'cats' } }] },
      { kind: 'text', text: 'Here is a cat picture.' },
    ]);
    expect(samples[1]?.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'tool']);
    expect(shareGptToSamples(json('{"conversations": [{"from": "alien", "value": "x"}]}'))).toMatchObject({
      ok: false,
      rejection: { field: 'conversations[0].from' },
    });
  });
});

const LOOPTOOL_TOOL =
  '{"type": "function", "function": {"name": "get_time", "description": "Time in a zone", "parameters": {"type": "object", "properties": {"zone": {"type": "string"}, "precision": {"type": "number"}}, "required": ["zone"]}}}';
const looptoolRecord = {
  instruction: `You are a helpful assistant.\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>\n${LOOPTOOL_TOOL}\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>\n\nThe current time is 2025-01-01.`,
  input:
    'What time is it in Tokyo?<|im_end|>\n<|im_start|>assistant\n<tool_call>\n{"name": "get_time", "arguments": {"zone": "Asia/Tokyo", "precision": 1.0}}\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\n{"time": "09:00"}\n</tool_response><|im_end|>\n<|im_start|>assistant\nIt is 09:00 in Tokyo.<|im_end|>\n<|im_start|>user\nAnd in Paris?',
  output: '<tool_call>\n{"name": "get_time", "arguments": {"zone": "Europe/Paris"}}\n</tool_call>',
};

describe('LoopTool-23k records', () => {
  test('lift the tools, split the rendered history into messages, and read the label', () => {
    const sample = ok(loopToolToSample(looptoolRecord as unknown as JsonValue));
    expect(sample.tools.map((t) => t.name)).toEqual(['get_time']);
    expect(sample.messages.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'tool', 'assistant', 'user']);
    expect(sample.messages[2]).toMatchObject({
      tool_calls: [{ function: { arguments: { zone: 'Asia/Tokyo', precision: new JsonFloat(1) } } }],
    });
    expect(sample.messages[0]?.content).toContain('<tools>\n</tools>');
    expect(sample.target).toEqual({
      kind: 'calls',
      calls: [{ name: 'get_time', arguments: { zone: 'Europe/Paris' } }],
    });
  });

  test('write back byte for byte', () => {
    const sample = ok(loopToolToSample(looptoolRecord as unknown as JsonValue));
    expect(ok(sampleToLoopTool(sample))).toEqual(looptoolRecord);
  });

  test('a sample from another format survives LoopTool and back, except the tool-call ids LoopTool has no place for', () => {
    const [sample] = ok(openAiChatToSamples(chatRecord));
    const back = ok(loopToolToSample(ok(sampleToLoopTool(sample as Sample)) as unknown as JsonValue));
    const withoutIds = (s: Sample): unknown =>
      s.messages.map((m) =>
        m.role === 'assistant' && m.tool_calls
          ? { ...m, tool_calls: m.tool_calls.map(({ id: _id, ...call }) => call) }
          : m.role === 'tool'
            ? { role: 'tool', content: m.content }
            : m,
      );
    expect(back.tools).toEqual((sample as Sample).tools);
    expect(back.target).toEqual((sample as Sample).target);
    // The system prompt gains the rendered tools section; the rest of the history is identical.
    expect(back.messages[0]?.content).toContain('You are helpful.');
    expect((withoutIds(back) as unknown[]).slice(1)).toEqual((withoutIds(sample as Sample) as unknown[]).slice(1));
  });

  test('rejects a broken history with the field', () => {
    expect(
      loopToolToSample({
        ...looptoolRecord,
        input: 'hi<|im_end|>\nstray text<|im_start|>assistant\nx',
      } as unknown as JsonValue),
    ).toMatchObject({ ok: false, rejection: { field: 'input' } });
    expect(
      loopToolToSample({
        ...looptoolRecord,
        output: '<tool_call>\n{"name": "get_time"}\n</tool_call>',
      } as unknown as JsonValue),
    ).toMatchObject({ ok: false, rejection: { field: 'output' } });
  });
});

describe('verl rows', () => {
  test('carry the policy prompt, the label as ground truth, the data source, the sample id and the tools', () => {
    const sample = ok(loopToolToSample(looptoolRecord as unknown as JsonValue));
    const row = ok(sampleToVerlRow({ sample, index: 7, dataSource: 'toolace' }));
    expect(row).toEqual({
      data_source: 'toolace',
      prompt: policyPrompt(sample),
      ability: 'tool_call',
      reward_model: { style: 'rule', ground_truth: looptoolRecord.output },
      extra_info: { index: 7, sample_id: sampleId(sample), tools: stringifyJson(sample.tools) },
    });
    // A multi-turn history is turns of its own, the first system prompt LoopTool's instruction.
    expect(row.prompt.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'user', 'assistant', 'user']);
    expect(row.prompt[0]).toEqual({ role: 'system', content: looptoolRecord.instruction });
  });

  test("carry a shared tool list's kept text, the same as the text of an equal list that is not shared", () => {
    const sample = ok(loopToolToSample(looptoolRecord as unknown as JsonValue));
    // Made twice, as equal lists (structuredClone would turn the JsonFloat into a plain object).
    const toolList = () =>
      [
        ...structuredClone(sample.tools),
        {
          name: 'scale',
          description: 'a float default stays a float',
          parameters: { type: 'dict', properties: { factor: { type: 'float', default: new JsonFloat(2) } } },
        },
      ] as Sample['tools'];
    const tools = toolList();
    const expected = stringifyJson(tools);
    expect(expected).toContain('"default":2.0');
    expect(toolListText(tools)).toBe(expected);
    const shared = shareToolList(toolList());
    const row = ok(sampleToVerlRow({ sample: { ...sample, tools: shared }, index: 0 }));
    expect(row.extra_info.tools).toBe(expected);
    expect(toolListText(shared)).toBe(expected);
  });
});
