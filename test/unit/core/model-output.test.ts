import { describe, expect, test } from 'vitest';
import { JsonFloat } from '../../../core/json.js';
import { parseModelOutput, parseToolCallBlocks, stripThinking } from '../../../core/parse/model-output.js';
import { parseJsonCalls } from '../../../core/parse/json-calls.js';

describe('stripThinking', () => {
  test('drops everything up to the last </think>, with or without an opening tag', () => {
    expect(stripThinking('<think>plan <tool_call>x</tool_call></think>\n\nanswer')).toEqual({
      content: '\n\nanswer',
      reasoning: 'plan <tool_call>x</tool_call>',
    });
    expect(stripThinking('plan</think>answer').content).toBe('answer');
  });

  test('leaves no answer when the reasoning never closes (a cut-off generation)', () => {
    expect(stripThinking('<think>still thinking').content).toBe('');
  });
});

describe('parseToolCallBlocks', () => {
  test('reads Qwen/Hermes blocks, keeping ints and floats distinct', () => {
    const text =
      '<tool_call>\n{"name": "f", "arguments": {"a": 5, "b": 5.0}}\n</tool_call>\n<tool_call>{"name": "g", "arguments": {}}</tool_call>';
    expect(parseToolCallBlocks(text)).toEqual({
      ok: true,
      format: 'tool_call_blocks',
      calls: [
        { name: 'f', arguments: { a: 5, b: new JsonFloat(5) } },
        { name: 'g', arguments: {} },
      ],
    });
  });

  test('fails the whole reply on a malformed block by default, and locates it', () => {
    const result = parseToolCallBlocks('<tool_call>\n{"name": "f", "arguments": {"a": }}\n</tool_call>');
    expect(result).toMatchObject({ ok: false, error: { kind: 'invalid_json', line: 2 } });
  });

  test("skips malformed blocks when asked (BFCL's Qwen handler)", () => {
    const result = parseToolCallBlocks(
      '<tool_call>{bad}</tool_call><tool_call>{"name": "g", "arguments": {}}</tool_call>',
      { onMalformed: 'skip' },
    );
    expect(result).toEqual({ ok: true, format: 'tool_call_blocks', calls: [{ name: 'g', arguments: {} }] });
  });

  test('reports an unclosed block and a block without arguments object', () => {
    expect(parseToolCallBlocks('<tool_call>{"name": "f"')).toMatchObject({
      ok: false,
      error: { kind: 'unclosed_tool_call' },
    });
    expect(parseToolCallBlocks('<tool_call>{"name": "f", "arguments": "{}"}</tool_call>')).toMatchObject({
      ok: false,
      error: { kind: 'invalid_call' },
    });
  });
});

describe('parseModelOutput', () => {
  test('prefers OpenAI tool_calls (what vLLM returns) and parses their argument strings losslessly', () => {
    const result = parseModelOutput({
      content: null,
      tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{"x": 1.0}' } }],
    });
    expect(result).toEqual({
      ok: true,
      format: 'openai_tool_calls',
      calls: [{ name: 'f', arguments: { x: new JsonFloat(1) } }],
    });
  });

  test('ignores tool calls written inside the reasoning', () => {
    expect(
      parseModelOutput('<think><tool_call>{"name": "f", "arguments": {}}</tool_call></think>The answer is 4.'),
    ).toEqual({ ok: true, format: 'text', calls: [] });
  });

  test('reads <tool_call> blocks after the reasoning', () => {
    const result = parseModelOutput(
      '<think>x</think>\n<tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call>',
    );
    expect(result).toEqual({ ok: true, format: 'tool_call_blocks', calls: [{ name: 'f', arguments: { a: 1 } }] });
  });

  test('reads Python call syntax and JSON arrays of calls', () => {
    expect(parseModelOutput("[f(a='x')]")).toMatchObject({
      ok: true,
      format: 'python',
      calls: [{ name: 'f', arguments: { a: 'x' } }],
    });
    expect(parseModelOutput('[{"name": "f", "arguments": {"a": 1}}, {"name": "g", "parameters": {}}]')).toMatchObject({
      ok: true,
      format: 'json',
      calls: [{ name: 'f' }, { name: 'g' }],
    });
  });

  test('treats prose as a text answer with no calls, and a broken call as a parse error', () => {
    expect(parseModelOutput('Sure, the weather in Paris is sunny.')).toEqual({ ok: true, format: 'text', calls: [] });
    expect(parseModelOutput("[f(a='x'")).toMatchObject({ ok: false, error: { kind: 'invalid_python' } });
    expect(parseModelOutput('{"name": "f", "arguments": {')).toMatchObject({
      ok: false,
      error: { kind: 'invalid_json' },
    });
    expect(parseModelOutput('</tool_call>')).toMatchObject({ ok: false, error: { kind: 'invalid_call' } });
  });
});

describe('parseJsonCalls', () => {
  test("reads OpenAI, Hermes and BFCL's decoded shapes, with string or object arguments", () => {
    const result = parseJsonCalls(
      '[{"type": "function", "function": {"name": "a", "arguments": "{\\"x\\": 2.0}"}}, {"name": "b", "arguments": {}}, {"c": {"y": 1}}]',
    );
    expect(result).toEqual({
      ok: true,
      format: 'json',
      calls: [
        { name: 'a', arguments: { x: new JsonFloat(2) } },
        { name: 'b', arguments: {} },
        { name: 'c', arguments: { y: 1 } },
      ],
    });
  });

  test('says which call is wrong', () => {
    expect(parseJsonCalls('[{"name": "a", "arguments": {}}, {"name": "b", "arguments": [1]}]')).toMatchObject({
      ok: false,
      error: { kind: 'invalid_call', reason: expect.stringContaining('call 1') },
    });
  });
});
