import { ApplicationFailure } from '@temporalio/common';
import { describe, expect, test } from 'vitest';
import { LlmRegistry } from '../../../activities/llm/registry.js';
import { ErrorType } from '../../../core/errors.js';

describe("a role's model servers", () => {
  const registry = new LlmRegistry({
    defaultBaseUrls: {
      policy: ['http://vllm-policy:8000/v1'],
      judge: ['http://judge-a:8000/v1', 'http://judge-b:8000/v1'],
    },
  });

  test("are the loop config's own when it names them, else the worker's LOOPTOOL_<ROLE>_BASE_URLS", () => {
    expect(registry.pool('policy', { baseUrls: ['http://mine:9000/v1'], maxConcurrency: 4 }).endpoints).toEqual([
      'http://mine:9000/v1',
    ]);
    expect(registry.pool('policy', { maxConcurrency: 4 }).endpoints).toEqual(['http://vllm-policy:8000/v1']);
    expect(registry.pool('judge', { baseUrls: undefined, maxConcurrency: 4 }).endpoints).toEqual([
      'http://judge-a:8000/v1',
      'http://judge-b:8000/v1',
    ]);
  });

  test('one pool per role, servers and cap: the per-server cap holds across every activity of a worker', () => {
    expect(registry.pool('policy', { maxConcurrency: 4 })).toBe(
      registry.pool('policy', { baseUrls: ['http://vllm-policy:8000/v1'], maxConcurrency: 4 }),
    );
    expect(registry.pool('policy', { maxConcurrency: 4 })).not.toBe(registry.pool('policy', { maxConcurrency: 8 }));
  });

  test('none anywhere is a non-retryable configuration error that says where to set them', () => {
    let error: unknown;
    try {
      registry.pool('generator', { maxConcurrency: 4 });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ApplicationFailure);
    expect(error).toMatchObject({ type: ErrorType.ConfigInvalid, nonRetryable: true });
    expect((error as Error).message).toMatch(/models\.generator\.baseUrls .* LOOPTOOL_GENERATOR_BASE_URLS/);
  });
});
