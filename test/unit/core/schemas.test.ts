import { describe, expect, expectTypeOf, test } from 'vitest';
import { JsonFloat, parseJson, type JsonValue } from '../../../core/json.js';
import { FunctionDefinition, toOpenAiTool, wireToolName } from '../../../core/schemas/function-def.js';
import { ChatMessage } from '../../../core/schemas/messages.js';
import { Sample, sampleId, type Target } from '../../../core/schemas/sample.js';

function json(text: string): JsonValue {
  const result = parseJson(text);
  if (!result.ok) throw new Error(result.error.message);
  return result.value;
}

const bfclDoc = json(
  '{"name": "geo.area", "description": "d", "parameters": {"type": "dict", "properties": {"r": {"type": "float"}, "pts": {"type": "tuple", "items": {"type": "integer"}}, "v": {"type": "any"}, "opts": {"type": "dict", "properties": {"k": {"type": "string"}}}}, "required": ["r"]}, "response": {"x": 1}}',
);

describe('FunctionDefinition', () => {
  test("accepts BFCL's dialect (dict, float, tuple, any) and keeps unknown keywords", () => {
    const parsed = FunctionDefinition.parse(bfclDoc);
    expect(parsed.parameters?.properties.pts?.type).toBe('tuple');
    expect(parsed.response).toEqual({ x: 1 });
  });

  test('normalises Python-style type names and rejects unknown ones with the field path', () => {
    const parsed = FunctionDefinition.parse({
      name: 'f',
      parameters: { type: 'object', properties: { a: { type: 'str' }, b: { type: 'Integer' } } },
    });
    expect(parsed.parameters?.properties.a?.type).toBe('string');
    expect(parsed.parameters?.properties.b?.type).toBe('integer');
    const bad = FunctionDefinition.safeParse({
      name: 'f',
      parameters: { type: 'object', properties: { a: { type: 'matrix' } } },
    });
    expect(bad.success).toBe(false);
    if (!bad.success) expect(bad.error.issues[0]?.path).toEqual(['parameters', 'properties', 'a', 'type']);
  });

  test('converts to an OpenAI tool with JSON Schema types and the wire-form name', () => {
    const tool = toOpenAiTool(FunctionDefinition.parse(bfclDoc));
    expect(tool.function.name).toBe('geo_area');
    expect(tool.function.parameters).toMatchObject({
      type: 'object',
      properties: {
        r: { type: 'number' },
        pts: { type: 'array', items: { type: 'integer' } },
        v: { type: 'string' },
        opts: { type: 'object', properties: { k: { type: 'string' } } },
      },
    });
    expect(wireToolName('a.b.c')).toBe('a_b_c');
  });
});

describe('ChatMessage', () => {
  test('accepts OpenAI-style assistant tool calls with parsed arguments and tool results', () => {
    const assistant = ChatMessage.parse({
      role: 'assistant',
      content: null,
      tool_calls: [{ id: 'c1', function: { name: 'f', arguments: { a: new JsonFloat(1) } } }],
    });
    expect(assistant).toEqual({
      role: 'assistant',
      content: null,
      tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: { a: new JsonFloat(1) } } }],
    });
    expect(ChatMessage.parse({ role: 'tool', content: '{"ok": true}', tool_call_id: 'c1' }).role).toBe('tool');
  });

  test('rejects arguments that are still a JSON string (parse them first, keeping floats)', () => {
    expect(
      ChatMessage.safeParse({
        role: 'assistant',
        content: null,
        tool_calls: [{ function: { name: 'f', arguments: '{"a": 1}' } }],
      }).success,
    ).toBe(false);
  });
});

describe('Sample', () => {
  const base = {
    tools: [FunctionDefinition.parse(bfclDoc)],
    messages: [{ role: 'user' as const, content: 'area of r=2' }],
  };

  test('holds a list of calls, a text answer, or acceptable values with the "" marker', () => {
    const targets: Target[] = [
      { kind: 'calls', calls: [{ name: 'geo.area', arguments: { r: new JsonFloat(2) } }] },
      { kind: 'text', text: 'No tool fits.' },
      { kind: 'text' },
      { kind: 'acceptable', calls: [{ name: 'geo.area', arguments: { r: [new JsonFloat(2), 2], v: ['', 'x'] } }] },
    ];
    for (const target of targets) expect(Sample.safeParse({ ...base, target }).success).toBe(true);
    expect(Sample.safeParse({ ...base, target: { kind: 'calls', calls: [] } }).success).toBe(false);
    // An empty list of acceptable values is BFCL data (live_simple has two): no value matches it, but it is a target.
    expect(
      Sample.safeParse({ ...base, target: { kind: 'acceptable', calls: [{ name: 'f', arguments: { a: [] } }] } })
        .success,
    ).toBe(true);
    expectTypeOf<Sample['target']>().toEqualTypeOf<Target>();
  });

  test('its id is stable across key order and changes when content changes', () => {
    const one = Sample.parse(
      json(
        '{"tools": [], "messages": [{"role": "user", "content": "hi"}], "target": {"kind": "calls", "calls": [{"name": "f", "arguments": {"a": 1, "b": [2.5]}}]}}',
      ),
    );
    const two = Sample.parse(
      json(
        '{"target": {"calls": [{"arguments": {"b": [2.5], "a": 1}, "name": "f"}], "kind": "calls"}, "messages": [{"content": "hi", "role": "user"}], "tools": []}',
      ),
    );
    expect(sampleId(one)).toMatch(/^[0-9a-f]{64}$/);
    expect(sampleId(two)).toBe(sampleId(one));
    const changed = Sample.parse(
      json(
        '{"tools": [], "messages": [{"role": "user", "content": "hi"}], "target": {"kind": "calls", "calls": [{"name": "f", "arguments": {"a": 1, "b": [2.6]}}]}}',
      ),
    );
    expect(sampleId(changed)).not.toBe(sampleId(one));
  });

  test('its id tells 1 from 1.0, because BFCL’s checker does', () => {
    const withInt = Sample.parse(
      json(
        '{"tools": [], "messages": [{"role": "user", "content": "x"}], "target": {"kind": "calls", "calls": [{"name": "f", "arguments": {"a": 1}}]}}',
      ),
    );
    const withFloat = Sample.parse(
      json(
        '{"tools": [], "messages": [{"role": "user", "content": "x"}], "target": {"kind": "calls", "calls": [{"name": "f", "arguments": {"a": 1.0}}]}}',
      ),
    );
    expect(sampleId(withInt)).not.toBe(sampleId(withFloat));
  });
});
