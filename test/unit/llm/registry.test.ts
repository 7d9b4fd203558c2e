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

  test("every request carries its role's key as the bearer token, and a role without one sends no Authorization", async () => {
    const seen: (string | null)[] = [];
    const recording = (async (_url: string | URL | Request, init?: RequestInit) => {
      seen.push(new Headers(init?.headers).get('authorization'));
      return new Response(JSON.stringify({ object: 'list', data: [] }), {
        status: 200,
        headers: { 'content-type': 'application/json' },
      });
    }) as typeof fetch;
    const keyed = new LlmRegistry({ apiKeys: { policy: 'p-key', judge: 'j-key' }, fetch: recording });
    const list = (role: 'policy' | 'judge' | 'generator') =>
      keyed
        .pool(role, { baseUrls: ['http://server:8000/v1'], maxConcurrency: 1 })
        .withEndpoint((endpoint) => endpoint.client.models.list());
    await list('policy');
    await list('judge');
    await list('generator');
    expect(seen).toEqual(['Bearer p-key', 'Bearer j-key', null]);
    expect(keyed.authHeaders('policy')).toEqual({ authorization: 'Bearer p-key' });
    expect(keyed.authHeaders('generator')).toEqual({});
  });
});
