import { describe, expect, test } from 'vitest';
import { openAiChatToSamples } from '../../../core/formats/index.js';
import { contentHash } from '../../../core/hash.js';
import { parseJson, type JsonValue } from '../../../core/json.js';
import { isSharedToolList, Sample, sampleId } from '../../../core/schemas/sample.js';
import {
  createLeadingListFinder,
  createOpenAiLineConverter,
  createToolListReader,
} from '../../../datasets/openai-import.js';
import { parseJsonLine } from '../../../datasets/read-records.js';
import { encodeSample } from '../../../db/sample-codec.js';

const tool = (name: string, extra: Record<string, unknown> = {}) => ({
  type: 'function',
  function: {
    name,
    description: `Looks up ${name}`,
    parameters: { type: 'object', properties: { city: { type: 'str', description: 'City' }, ...extra }, required: [] },
  },
});

const call = (name: string, args: string) => ({
  role: 'assistant',
  content: '',
  tool_calls: [{ id: 'c', type: 'function', function: { name, arguments: args } }],
});

/** Records as JSON text (parsed with core/json.ts, as the import reads them): good ones, repeats and bad ones. */
const LINES: string[] = [
  ...[0, 1, 2, 3].map((i) =>
    JSON.stringify({
      tools: [tool('a'), tool('b')],
      messages: [{ role: 'user', content: `q${i}` }, call('a', `{"city": "Lima", "days": ${i}}`)],
    }),
  ),
  // The same tools with 5 and with 5.0 as a default: different content, never the same cached list.
  '{"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"n": {"type": "integer", "default": 5}}}}}], "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "ok"}]}',
  '{"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"n": {"type": "integer", "default": 5.0}}}}}], "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "ok"}]}',
  // Tools as a JSON string, bare definitions, none at all.
  JSON.stringify({ tools: JSON.stringify([tool('a')]), messages: [{ role: 'user', content: 's' }, call('a', '{}')] }),
  JSON.stringify({ tools: [tool('a').function], messages: [{ role: 'user', content: 'bare' }, call('a', '{}')] }),
  JSON.stringify({
    messages: [
      { role: 'user', content: 'none' },
      { role: 'assistant', content: 'hi' },
    ],
  }),
  // Several assistant turns (split each), with a system prompt and a tool result.
  JSON.stringify({
    tools: [tool('a'), tool('b')],
    messages: [
      { role: 'system', content: 'sys' },
      { role: 'user', content: 'u' },
      call('a', '{"city": "Oslo"}'),
      { role: 'tool', content: 'sunny', tool_call_id: 'c' },
      { role: 'assistant', content: 'It is sunny.' },
    ],
  }),
  // Bad records: each must be rejected with openAiChatToSamples's field and reason, cached tool list or not.
  '[1, 2]',
  JSON.stringify({ tools: [tool('a'), tool('b')], messages: 'nope' }),
  JSON.stringify({ tools: [tool('a'), tool('b')], messages: [{ role: 'narrator', content: 'x' }] }),
  JSON.stringify({ tools: [tool('a'), tool('b')], messages: [{ role: 'user', content: 'no answer' }] }),
  JSON.stringify({ tools: [{ type: 'function', function: { name: '' } }], messages: [] }),
  JSON.stringify({ tools: [{ type: 'function', function: { name: '' } }], messages: [] }),
  JSON.stringify({ tools: { not: 'a list' }, messages: [] }),
  JSON.stringify({ tools: [tool('a')], messages: [{ role: 'user', content: 'q' }, call('a', '{"broken": ')] }),
  '{"tools": [{"type": "function", "function": {"name": "nan", "parameters": {"type": "object", "properties": {"n": {"default": NaN}}}}}], "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "ok"}]}',
];

const records = LINES.map((line) => {
  const parsed = parseJson(line);
  if (!parsed.ok) throw new Error(`test input: ${line}`);
  return parsed.value;
});

/** What the import stores for a conversion: the encoded samples, or the rejection, or the encoder's refusal. */
function stored(converted: ReturnType<typeof openAiChatToSamples>) {
  if (!converted.ok) return converted;
  return converted.value.map((sample) => {
    try {
      return encodeSample(sample);
    } catch (err) {
      return (err as Error).message;
    }
  });
}

/** The import's converter: openAiChatToSamples with a tool-list reader shared by the file's records. */
function createOpenAiConverter(options: { split: 'last' | 'each'; maxToolLists?: number }) {
  const toolsOf = createToolListReader({ maxToolLists: options.maxToolLists });
  return (record: JsonValue) => openAiChatToSamples(record, { split: options.split, toolsOf });
}

describe('the import converter for OpenAI chat files', () => {
  for (const split of ['last', 'each'] as const) {
    test(`gives openAiChatToSamples's samples and rejections, record by record (split ${split})`, () => {
      const convert = createOpenAiConverter({ split, maxToolLists: 3 });
      // Twice over: the second pass meets every tool list cached (or evicted and read again).
      for (const record of [...records, ...records]) {
        const expected = openAiChatToSamples(record, { split });
        // Each sample is what the schema makes of it (the tools are checked once, not by the schema, and not copied).
        if (expected.ok) for (const sample of expected.value) expect(sample).toEqual(Sample.parse(sample));
        const actual = convert(record);
        expect(actual).toEqual(expected);
        expect(stored(actual)).toEqual(stored(expected));
      }
    });
  }

  test('records that repeat a tool list share one frozen list, and ids stay those of core', () => {
    const convert = createOpenAiConverter({ split: 'last' });
    const samples = records.slice(0, 4).map((record) => {
      const converted = convert(record);
      if (!converted.ok) throw new Error(converted.rejection.reason);
      return converted.value[0]!;
    });
    expect(new Set(samples.map((s) => s.tools)).size).toBe(1);
    expect(isSharedToolList(samples[0]!.tools)).toBe(true);
    expect(Object.isFrozen(samples[0]!.tools[0]!.parameters)).toBe(true);
    for (const sample of samples) {
      const id = contentHash({ tools: sample.tools, messages: sample.messages, target: sample.target });
      expect(sampleId(sample)).toBe(id);
      expect(encodeSample(sample).id).toBe(id);
    }
  });

  test('5 and 5.0 in a tool list stay different content', () => {
    const convert = createOpenAiConverter({ split: 'last' });
    const [int, float] = [records[4] as JsonValue, records[5] as JsonValue].map((record) => {
      const converted = convert(record);
      if (!converted.ok) throw new Error(converted.rejection.reason);
      return encodeSample(converted.value[0]!);
    });
    expect(int!.toolsJson).toContain('"default":5,');
    expect(float!.toolsJson).toContain('"default":5.0,');
    expect(int!.toolsetId).not.toBe(float!.toolsetId);
  });
});

describe('the import converter of OpenAI chat lines', () => {
  const a = tool('a');
  const b = tool('b');
  const question = { role: 'user', content: 'q' };
  const answer = call('a', '{"city": "Lima"}');
  /** Lines whose tool list is where a text scan could go wrong: after the messages, twice, under an escaped key. */
  const tricky = [
    JSON.stringify({ messages: [question, answer], tools: [a, b] }),
    `{"tools": ${JSON.stringify([a])}, "messages": ${JSON.stringify([question, answer])}, "tools": ${JSON.stringify([b])}}`,
    `{"tools": ${JSON.stringify([a])}, "messages": ${JSON.stringify([question, answer])}, "tool\\u0073": []}`,
    `{"tool\\u0073": ${JSON.stringify([b])}, "tools": ${JSON.stringify([a])}, "messages": ${JSON.stringify([question, answer])}}`,
    `{"tools": ${JSON.stringify([a])}, "messages": ${JSON.stringify([question, answer])}, "tools": null}`,
    `{"tools": null, "messages": ${JSON.stringify([question, answer])}}`,
    `{"tools": "${JSON.stringify([a]).replaceAll('"', '\\"')}", "messages": ${JSON.stringify([question, answer])}}`,
    `  {"messages" : ${JSON.stringify([{ role: 'user', content: '"tools": [] }' }, answer])} ,\t"tools":${JSON.stringify([a])} }  `,
    `{"tools": ${JSON.stringify([a])}, "messages": [{"role": "user", "content": "n"}, {"role": "assistant", "content": "5.0 \\u00e9"}]}`,
    `{"tools": ${JSON.stringify([a])}, "messages": []} trailing`,
    `{"tools": [${JSON.stringify(a)},], "messages": ${JSON.stringify([question, answer])}}`,
    // A known list opening the line, found by its lead: spaced out, followed by what breaks the line, before an escape.
    `{ "tools"\t:  ${JSON.stringify([a])} , "messages": ${JSON.stringify([question, answer])}}`,
    `{"tools":${JSON.stringify([a])}]], "messages": ${JSON.stringify([question, answer])}}`,
    `{"tools":${JSON.stringify([a, b])}, "messages": ${JSON.stringify([question, answer])}, "note": "caf\u00e9"}`,
  ];
  const lines = [...LINES, ...tricky];
  // Broken lines: cut at the end and at the start, and with the first colon gone.
  const broken = lines.flatMap((line) => [line.slice(0, -2), line.slice(1), line.replace(':', '')]);

  for (const split of ['last', 'each'] as const)
    test(`gives what parsing the line and converting the record gives, rejections included (split ${split})`, () => {
      const convertLine = createOpenAiLineConverter({ split, maxToolLists: 3 });
      const toolsOf = createToolListReader();
      const reference = (text: string) => {
        const record = parseJsonLine(text);
        return record.ok ? openAiChatToSamples(record.value, { split, toolsOf }) : record;
      };
      let accepted = 0;
      // Twice over: the second pass meets tool lists cached by their text (or evicted and read again).
      for (const text of [...lines, ...broken, ...lines]) {
        const expected = reference(text);
        if (expected.ok) accepted++;
        const actual = convertLine(text);
        expect(actual, text).toEqual(expected);
        expect(stored(actual), text).toEqual(stored(expected));
      }
      expect(accepted).toBeGreaterThan(20);
    });

  test('lines that repeat a tool list share one list; the later of two `tools` members is the one read', () => {
    const convertLine = createOpenAiLineConverter({ split: 'last' });
    const first = convertLine(LINES[0]!);
    const second = convertLine(LINES[1]!);
    if (!first.ok || !second.ok) throw new Error('test input');
    expect(second.value[0]!.tools).toBe(first.value[0]!.tools);
    const twice = convertLine(tricky[1]!);
    if (!twice.ok) throw new Error(twice.rejection.reason);
    expect(twice.value[0]!.tools.map((t) => t.name)).toEqual(['b']);
  });
});

describe('the finder of a known tool list that opens a line', () => {
  const list = JSON.stringify([tool('a'), tool('b')]);
  const other = JSON.stringify([tool('a'), tool('c')]);
  const messages = JSON.stringify([{ role: 'user', content: 'q' }]);

  test('finds a remembered list in place, whatever the spacing around its key', () => {
    const finder = createLeadingListFinder();
    const line = `{"tools":${list},"messages":${messages}}`;
    expect(finder.find(line)).toBeUndefined();
    finder.remember(list);
    finder.remember(other);
    expect(finder.find(line)).toEqual({ start: 9, end: 9 + list.length });
    const spaced = ` {\n "tools" :\t${other} , "messages": ${messages}}`;
    const start = spaced.indexOf('[');
    expect(finder.find(spaced)).toEqual({ start, end: start + other.length });
    expect(spaced.slice(start, start + other.length)).toBe(other);
  });

  test('leaves to the scan what it cannot be sure of', () => {
    const finder = createLeadingListFinder();
    finder.remember(list);
    const cases = [
      `{"messages":${messages},"tools":${list}}`, // not the first member
      `{"tools":${JSON.stringify([tool('a')])},"messages":${messages}}`, // a list not remembered, of the same lead
      `{"tools":${list},"messages":${messages},"tools":null}`, // named again
      `{"tools":${list},"messages":${messages},"tool\\u0073":null}`, // maybe named again, escaped
      `{"tool\\u0073":${list},"messages":${messages}}`, // an escaped key
      `["tools",${list}]`, // not an object
    ];
    for (const line of cases) expect(finder.find(line), line).toBeUndefined();
    // A list shorter than its lead is not remembered: what follows it in a line would be part of the lead.
    const short = JSON.stringify([{ type: 'function' }]);
    finder.remember(short);
    expect(finder.find(`{"tools":${short},"messages":${messages}}`)).toBeUndefined();
    finder.clear();
    expect(finder.find(`{"tools":${list},"messages":${messages}}`)).toBeUndefined();
  });
});
