import { describe, expect, test } from 'vitest';
import {
  checkModelResponse,
  PolicyCompletion,
  RAW_RESPONSE_LIMIT,
  rawResponseText,
  StructuredCompletion,
} from '../../../core/schemas/model-response.js';

/** A chat completion as vLLM writes one, with the fields looptool does not read (they must stay accepted). */
function vllmCompletion(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: 'chatcmpl-1',
    object: 'chat.completion',
    created: 1,
    model: 'sim-student',
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: 'hello', tool_calls: [], reasoning_content: null },
        logprobs: { content: [{ token: 'hel', logprob: -0.5, bytes: [104], top_logprobs: [] }, { logprob: -1 }] },
        finish_reason: 'stop',
        stop_reason: null,
      },
    ],
    usage: { prompt_tokens: 12, completion_tokens: 2, total_tokens: 14, prompt_tokens_details: null },
    prompt_logprobs: null,
    ...overrides,
  };
}

const policyError = (body: unknown) => {
  const checked = checkModelResponse(PolicyCompletion, body);
  return checked.ok ? undefined : checked.error;
};

describe('PolicyCompletion', () => {
  test('accepts a vLLM completion with the fields servers add, and keeps what the probe reads', () => {
    const checked = checkModelResponse(PolicyCompletion, vllmCompletion());
    expect(checked.ok).toBe(true);
    if (!checked.ok) return;
    expect(checked.value.choices[0]?.message.content).toBe('hello');
    expect(checked.value.choices[0]?.logprobs?.content?.map((t) => t.logprob)).toEqual([-0.5, -1]);
    expect(checked.value.usage).toMatchObject({ prompt_tokens: 12, completion_tokens: 2 });
    // Unknown fields pass through rather than failing the reply.
    expect((checked.value as Record<string, unknown>).prompt_logprobs).toBeNull();
  });

  test('accepts what a completion may leave out: null content with tool calls, no logprobs, no usage', () => {
    const toolCall = { id: 'c1', type: 'function', function: { name: 'f', arguments: '{}' } };
    const body = vllmCompletion({
      choices: [{ message: { content: null, tool_calls: [toolCall] }, logprobs: null }],
    });
    delete body.usage;
    expect(policyError(body)).toBeUndefined();
    expect(policyError(vllmCompletion({ usage: null }))).toBeUndefined();
  });

  test.each([
    [
      { usage: { prompt_tokens: 'lots', completion_tokens: 2 } },
      'usage.prompt_tokens: expected integer, got string "lots"',
    ],
    [{ usage: { prompt_tokens: 1.5, completion_tokens: 2 } }, 'usage.prompt_tokens: expected integer, got 1.5'],
    [{ usage: { prompt_tokens: 3, completion_tokens: -1 } }, 'usage.completion_tokens: expected at least 0, got -1'],
    [
      { usage: { prompt_tokens: 2 ** 31, completion_tokens: 0 } },
      'usage.prompt_tokens: expected at most 2147483647, got 2147483648',
    ],
    [{ usage: { prompt_tokens: 3 } }, 'usage.completion_tokens: missing (expected integer)'],
    [{ choices: [] }, 'choices: expected at least 1 item(s), got none'],
    [{ choices: [{ message: { content: 5 } }] }, 'choices[0].message.content: expected string, got 5'],
    [{ choices: [{}] }, 'choices[0].message: missing (expected object)'],
    [{ choices: [{ message: { content: 'a', tool_calls: 'f()' } }] }, 'choices[0].message.tool_calls: expected array'],
    [
      { choices: [{ message: { content: 'a' }, logprobs: { content: [{ logprob: 'x' }] } }] },
      'choices[0].logprobs.content[0].logprob: expected number, got string "x"',
    ],
    [
      { choices: [{ message: { content: 'a\u0000b' } }] },
      'choices[0].message.content: contains U+0000, which PostgreSQL text cannot store',
    ],
  ])('names the field and its problem: %j', (overrides, error) => {
    expect(policyError(vllmCompletion(overrides))).toContain(error);
  });

  test('a body that is JSON but no object is refused as a whole', () => {
    expect(policyError('<html>502</html>')).toBe('(body): expected object, got string "<html>502</html>"');
    expect(policyError([])).toBe('(body): expected object, got array of 0');
    expect(policyError(null)).toBe('(body): expected object, got null');
  });

  test('more than one problem: the first is named and the rest counted', () => {
    expect(policyError(vllmCompletion({ usage: { prompt_tokens: 'lots', completion_tokens: 'many' } }))).toBe(
      'usage.prompt_tokens: expected integer, got string "lots" (and 1 more)',
    );
  });
});

describe('StructuredCompletion', () => {
  test('accepts a structured reply, and null content', () => {
    expect(checkModelResponse(StructuredCompletion, vllmCompletion()).ok).toBe(true);
    expect(
      checkModelResponse(StructuredCompletion, vllmCompletion({ choices: [{ message: { content: null } }] })).ok,
    ).toBe(true);
  });

  test('refuses a reply whose usage the ledger could not store', () => {
    expect(
      checkModelResponse(
        StructuredCompletion,
        vllmCompletion({ usage: { prompt_tokens: 'lots', completion_tokens: 1 } }),
      ),
    ).toEqual({ ok: false, error: 'usage.prompt_tokens: expected integer, got string "lots"' });
  });
});

describe('rawResponseText', () => {
  test('keeps a short body whole and cuts a long one, saying how much was left out', () => {
    expect(rawResponseText('{"a":1}')).toBe('{"a":1}');
    const long = 'x'.repeat(RAW_RESPONSE_LIMIT + 10);
    expect(rawResponseText(long)).toBe(`${'x'.repeat(RAW_RESPONSE_LIMIT)}… (10 more characters)`);
  });
});
