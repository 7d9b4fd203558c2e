import { describe, expect, test } from 'vitest';
import { EndpointPool } from '../../../activities/llm/endpoint-pool.js';

const deferred = () => {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
};

describe('EndpointPool', () => {
  const pool = () =>
    new EndpointPool({
      role: 'judge',
      endpoints: [
        { baseURL: 'http://a:8000/v1', maxConcurrency: 2 },
        { baseURL: 'http://b:8000/v1', maxConcurrency: 1 },
      ],
    });

  test('spreads requests round robin and never exceeds a server cap', async () => {
    const endpoints = pool();
    const gate = deferred();
    const used: string[] = [];
    let peak = 0;
    const calls = Array.from({ length: 9 }, () =>
      endpoints.withEndpoint(async (endpoint) => {
        used.push(endpoint.baseURL);
        peak = Math.max(peak, endpoints.inFlight);
        await gate.promise;
      }),
    );
    // The first three take the three slots and the other six wait for one (polled; `peak` below proves the cap held).
    while (used.length < 3) await new Promise((resolve) => setImmediate(resolve));
    expect(used).toEqual(['http://a:8000/v1', 'http://b:8000/v1', 'http://a:8000/v1']);
    expect(endpoints.inFlight).toBe(3);
    gate.resolve();
    await Promise.all(calls);
    expect(used).toHaveLength(9);
    expect(peak).toBe(3);
    expect(endpoints.inFlight).toBe(0);
  });

  test('a slot is released when the call fails', async () => {
    const endpoints = pool();
    await expect(endpoints.withEndpoint(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(endpoints.inFlight).toBe(0);
  });

  test('a cancelled wait gives up its place without taking a slot', async () => {
    const endpoints = pool();
    const gate = deferred();
    const busy = Array.from({ length: 3 }, () => endpoints.withEndpoint(() => gate.promise));
    const controller = new AbortController();
    const waiting = endpoints.withEndpoint(async () => 'ran', controller.signal);
    controller.abort(new Error('activity cancelled'));
    await expect(waiting).rejects.toThrow('activity cancelled');
    gate.resolve();
    await Promise.all(busy);
    expect(endpoints.inFlight).toBe(0);
  });

  test('refuses an empty endpoint list', () => {
    expect(() => new EndpointPool({ role: 'policy', endpoints: [] })).toThrow(/no policy endpoints/);
  });
});
