import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ProbeBatchInput } from '../../core/inputs.js';
import { startSimServer, type SimServer } from '../../sim/server.js';
import { addLoop, createStageFixture, runActivity, type StageFixture, wholeVersion } from '../helpers/stages.js';

/**
 * Probing several samples per request (`probe.conversationsPerRequest`, vLLM's `/v1/chat/completions/batch`) against
 * the simulated server, compared with probing one sample per request over the same samples: the same verdicts and
 * outputs, fewer requests; and the fallbacks to one sample per request (a server without the route, a refused batch).
 */

let f: StageFixture;

beforeAll(async () => {
  f = await createStageFixture({ count: 120, seed: 31, wrongLabelRate: 0.2 });
});
afterAll(async () => {
  await f?.close();
});

const BATCHED = 16;

async function inputFor(
  loopName: string,
  conversationsPerRequest: number,
  options: { baseURL?: string; contextTokens?: number } = {},
): Promise<ProbeBatchInput> {
  return {
    loopName,
    iteration: 1,
    versionId: f.seedVersion.id,
    batch: await wholeVersion(f, f.seedVersion.id),
    policy: { baseUrls: [options.baseURL ?? f.sim.baseURL], maxConcurrency: 4, model: f.sim.policyModel },
    checker: { mode: 'exact' },
    maxTokens: 1024,
    pageSize: 50,
    conversationsPerRequest,
    ...(options.contextTokens ? { contextTokens: options.contextTokens } : {}),
  };
}

async function probe(
  loopName: string,
  options: { baseURL?: string; conversationsPerRequest: number; contextTokens?: number },
): Promise<void> {
  await addLoop(f, loopName);
  await runActivity(f.activities.probeBatch, [await inputFor(loopName, options.conversationsPerRequest, options)]);
}

/** A loop's probe results in sample order, the columns a batch and a single request must agree on. */
async function results(loopName: string) {
  const { rows } = await f.db.pool.query<Record<string, unknown>>(
    `SELECT sample_id, outcome, raw_output, parsed_calls::text AS parsed_calls, error_type, error, mean_logprob,
            perplexity, completion_tokens, prompt_tokens
     FROM probe_results WHERE loop_name = $1::text ORDER BY sample_id`,
    [loopName],
  );
  return rows;
}

async function ledger(loopName: string) {
  const { rows } = await f.db.pool.query<{ call_key: string; prompt_tokens: number; completion_tokens: number }>(
    `SELECT call_key, prompt_tokens, completion_tokens FROM model_calls WHERE loop_name = $1::text ORDER BY call_key`,
    [loopName],
  );
  return rows;
}

const routeCount = (sim: SimServer, route: string) => sim.stats().routes[route]?.requests ?? 0;

describe('probing several samples per request', () => {
  test('stores what one request per sample stores, in far fewer requests; the batch route’s usage is the ledger’s', async () => {
    await probe('single', { conversationsPerRequest: 1 });
    const batchesBefore = routeCount(f.sim, 'POST /v1/chat/completions/batch');
    const singlesBefore = routeCount(f.sim, 'POST /v1/chat/completions');
    await probe('batched', { conversationsPerRequest: BATCHED });
    const batches = routeCount(f.sim, 'POST /v1/chat/completions/batch') - batchesBefore;
    const singles = routeCount(f.sim, 'POST /v1/chat/completions') - singlesBefore;

    const one = await results('single');
    const many = await results('batched');
    expect(one.length).toBe(f.seeds.length);
    expect(new Set(one.map((row) => row.outcome)).size).toBeGreaterThan(1);
    // The server reports only a batch's total prompt tokens: batched samples have no count of their own.
    expect(many.map(({ prompt_tokens: _, ...row }) => row)).toEqual(one.map(({ prompt_tokens: _, ...row }) => row));
    expect(one.every((row) => typeof row.prompt_tokens === 'number')).toBe(true);
    expect(many.filter((row) => row.prompt_tokens === null).length).toBe(batches > 0 ? many.length - singles : 0);

    // Pages of 50 in groups of 16: 4 requests per page (16, 16, 16, 2), 3 pages of 120 samples (the last one, 20).
    expect(batches).toBeGreaterThanOrEqual(Math.floor(f.seeds.length / BATCHED));
    expect(batches + singles).toBeLessThan(f.seeds.length / 4);
    // One ledger row per request; the batches' usage adds up to the per-sample requests' usage.
    const single = await ledger('single');
    const batched = await ledger('batched');
    expect(single.length).toBe(f.seeds.length);
    expect(batched.length).toBe(batches + singles);
    const sum = (rows: typeof single, key: 'prompt_tokens' | 'completion_tokens') =>
      rows.reduce((total, row) => total + row[key], 0);
    expect(sum(batched, 'prompt_tokens')).toBe(sum(single, 'prompt_tokens'));
    expect(sum(batched, 'completion_tokens')).toBe(sum(single, 'completion_tokens'));
  });

  test('a server without the batch route (404) is asked one sample at a time, once it has said so', async () => {
    const sim = await startSimServer({ port: 0, seed: 7, batchRoute: false });
    try {
      await probe('no-route', { baseURL: sim.baseURL, conversationsPerRequest: BATCHED });
      expect(await results('no-route')).toEqual(await results('single'));
      // The route was tried by the groups of one page at most (those in flight before the first 404 came back; pages
      // of 50 in groups of 16: 4), never after; every sample then had a request of its own.
      const tried = routeCount(sim, 'POST /v1/chat/completions/batch');
      expect(tried).toBeGreaterThanOrEqual(1);
      expect(tried).toBeLessThanOrEqual(4);
      expect(routeCount(sim, 'POST /v1/chat/completions')).toBe(f.seeds.length);
    } finally {
      await sim.close();
    }
  });

  test('a batch the server refuses (one prompt over its context) is asked one sample at a time: that one too_long', async () => {
    // The probe believes in a larger context than the server has, so long prompts go into batches the server refuses.
    const sim = await startSimServer({ port: 0, seed: 7, maxModelLen: 1500 });
    try {
      await probe('refused', { baseURL: sim.baseURL, conversationsPerRequest: BATCHED, contextTokens: 32_768 });
      const refused = await results('refused');
      const single = await results('single');
      const tooLong = refused.filter((row) => row.outcome === 'too_long');
      expect(tooLong.length).toBeGreaterThan(0);
      expect(tooLong.every((row) => String(row.error).includes('maximum context length'))).toBe(true);
      // Every other sample was answered as one request per sample answers it.
      const answered = new Set(refused.filter((row) => row.outcome !== 'too_long').map((row) => row.sample_id));
      expect(answered.size).toBeGreaterThan(0);
      const strip = ({ prompt_tokens: _, ...row }: Record<string, unknown>) => row;
      expect(refused.filter((row) => answered.has(row.sample_id)).map(strip)).toEqual(
        single.filter((row) => answered.has(row.sample_id)).map(strip),
      );
      expect(routeCount(sim, 'POST /v1/chat/completions/batch')).toBeGreaterThan(0);
    } finally {
      await sim.close();
    }
  });

  test('a batch request that fails (500) fails the activity retryably; the retry writes every result once', async () => {
    f.sim.faults.add([{ role: 'policy', kind: 'server_error', count: 1 }]);
    await expect(probe('faulted', { conversationsPerRequest: BATCHED })).rejects.toMatchObject({
      nonRetryable: false,
    });
    const written = (await results('faulted')).length;
    expect(written).toBeLessThan(f.seeds.length);
    // The retry (the same activity again) asks only what was not written.
    await runActivity(f.activities.probeBatch, [await inputFor('faulted', BATCHED)]);
    const strip = ({ prompt_tokens: _, ...row }: Record<string, unknown>) => row;
    expect((await results('faulted')).map(strip)).toEqual((await results('single')).map(strip));
  });
});
