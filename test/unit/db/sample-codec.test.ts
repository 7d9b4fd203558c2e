import { describe, expect, test } from 'vitest';
import { contentHash } from '../../../core/hash.js';
import { canonicalJson, JsonFloat } from '../../../core/json.js';
import { renderToolLines } from '../../../core/formats/qwen.js';
import { isSharedTool, isSharedToolList, type Sample, sampleId, shareToolList } from '../../../core/schemas/sample.js';
import {
  createSampleDecoder,
  decodeSample,
  encodeSample,
  StoredSampleCorruptError,
  ToolsetCache,
} from '../../../db/sample-codec.js';

const tools = (n: number): Sample['tools'] => [
  {
    name: `tool_${n}`,
    description: 'Looks it up',
    parameters: {
      type: 'object',
      properties: { x: { type: 'integer', default: 3 }, y: { type: 'float', default: new JsonFloat(2) } },
      required: ['x'],
    },
  },
];

const sample = (n: number, toolList = tools(n % 3)): Sample => ({
  tools: toolList,
  messages: [
    { role: 'system', content: 'sys' },
    { role: 'user', content: `request ${n} é 😀` },
  ],
  target: { kind: 'calls', calls: [{ name: `tool_${n % 3}`, arguments: { x: n, y: new JsonFloat(n + 0.5) } }] },
});

/** What encodeSample wrote before it assembled plain parts: core/json.ts's canonical JSON of each part. */
function encodedTheGeneralWay(s: Sample) {
  const toolsJson = canonicalJson(s.tools);
  const messagesJson = canonicalJson(s.messages);
  const targetJson = canonicalJson(s.target);
  return {
    id: contentHash({ tools: s.tools, messages: s.messages, target: s.target }),
    toolsetId: contentHash(s.tools),
    toolsJson,
    messagesJson,
    targetJson,
    nTools: s.tools.length,
  };
}

describe('the sample codec', () => {
  test('encodes plain, shared and unusual samples as core/json.ts and core/hash.ts would', () => {
    const shared = shareToolList(tools(9));
    const unusual: Sample = {
      ...sample(1),
      target: { kind: 'calls', calls: [{ name: 'tool_1', arguments: { big: 1e21, neg: new JsonFloat(-0) } }] },
    };
    for (const s of [sample(1), sample(2, shared), sample(3, shared), unusual]) {
      expect(encodeSample(s)).toEqual(encodedTheGeneralWay(s));
      expect(sampleId(s)).toBe(encodedTheGeneralWay(s).id);
    }
  });

  test('refuses NaN and Infinity anywhere, with the same error, shared tool list or not', () => {
    const nanTools = tools(1);
    nanTools[0]!.parameters!.properties.x!.default = new JsonFloat(Number.NaN);
    const withNan = [
      sample(1, nanTools),
      sample(2, shareToolList(structuredClone(nanTools))),
      { ...sample(3), target: { kind: 'calls', calls: [{ name: 't', arguments: { x: Number.POSITIVE_INFINITY } }] } },
    ] as Sample[];
    for (const s of withNan) expect(() => encodeSample(s)).toThrow('a sample may not contain NaN or Infinity');
  });

  test('the export decoder gives decodeSample’s samples, tools read once per toolset, ids as stored', () => {
    const stored = Array.from({ length: 12 }, (_, n) => encodeSample(sample(n)));
    // Room for one toolset only: rows of the other toolsets evict it, and every sample still decodes the same.
    for (const decode of [createSampleDecoder(), createSampleDecoder({ maxToolsets: 1 })]) {
      const decoded = stored.map((row) => decode(row));
      decoded.forEach((s, i) => {
        expect(s).toEqual(decodeSample(stored[i]!));
        expect(sampleId(s)).toBe(stored[i]!.id);
        expect(Object.isFrozen(s.messages[1])).toBe(true);
        expect(isSharedToolList(s.tools)).toBe(true);
      });
      expect(() => {
        (decoded[0]!.messages as unknown[]).push({ role: 'user', content: 'changed' });
      }).toThrow(TypeError);
    }
    const decode = createSampleDecoder();
    const [first, , , fourth] = stored.map((row) => decode(row));
    expect(fourth!.tools).toBe(first!.tools);
  });

  test('the export decoder fails on a corrupt row as decodeSample does', () => {
    const good = encodeSample(sample(1));
    const corrupt = [
      { ...good, messagesJson: '[{"role": "user", "content": 1}]' },
      { ...good, targetJson: '{"kind": "calls", "calls": [' },
      { ...good, toolsetId: 'f'.repeat(64), toolsJson: '[{"name": ""}]' },
    ];
    for (const row of corrupt) {
      const expected = (() => {
        try {
          decodeSample(row);
        } catch (err) {
          return err as Error;
        }
        throw new Error('decodeSample accepted it');
      })();
      expect(expected).toBeInstanceOf(StoredSampleCorruptError);
      expect(() => createSampleDecoder()(row)).toThrow(expected.message);
    }
  });

  test('a toolset cache decodes each distinct tool once and gives the lists decodeSample gives', () => {
    const cache = new ToolsetCache();
    // Lists made of the same three tools in different orders and combinations, as PostgreSQL's jsonb writes them.
    const lists = [[0, 1], [1, 0], [2], [0, 1, 2], []].map((picks) => picks.flatMap((n) => tools(n)));
    const decoded = lists.map((list) => {
      const stored = encodeSample({ ...sample(1), tools: list });
      // jsonb's spacing (`{"a": 1, "b": 2.0}`); no string in these tools holds `":` or `,"`.
      const jsonb = stored.toolsJson.replaceAll('":', '": ').replaceAll(',"', ', "').replaceAll('},{', '}, {');
      const out = cache.decodeTools(jsonb)!;
      expect(out).toEqual(decodeSample(stored).tools);
      // Rendered from the shared tools, the prompt's tool lines are what the list's own copy renders.
      expect(renderToolLines(out)).toBe(renderToolLines(decodeSample(stored).tools));
      return out;
    });
    expect(decoded[1]![1]).toBe(decoded[0]![0]);
    expect(decoded[3]![2]).toBe(decoded[2]![0]);
    for (const tool of decoded[3]!) {
      expect(isSharedTool(tool)).toBe(true);
      expect(Object.isFrozen(tool.parameters!.properties)).toBe(true);
    }
    // A list with a tool that does not parse or check is left to the general decoder, which reports it.
    expect(cache.decodeTools('[{"name": "ok"}, {"name": ""}]')).toBeUndefined();
    expect(cache.decodeTools('[{"name": "ok"}, {"name": 1]')).toBeUndefined();
    expect(cache.decodeTools('{"name": "ok"}')).toBeUndefined();
    // Bounded: a cache with room for one tool still decodes every list the same.
    const small = new ToolsetCache(1);
    for (const list of lists)
      expect(small.decodeTools(encodeSample({ ...sample(1), tools: list }).toolsJson)).toEqual(list);
  });
});
