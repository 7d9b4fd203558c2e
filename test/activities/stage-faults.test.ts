import { randomBytes } from 'node:crypto';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { tsToMs } from '@temporalio/common/lib/time.js';
import type { Worker } from '@temporalio/worker';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import type { ProbeBatchInput, StageWorkflowInput } from '../../core/inputs.js';
import { ErrorType } from '../../core/errors.js';
import { pendingJudgeItems } from '../../db/queries/judgements.js';
import type { stageWorkflow } from '../../workflows/index.js';
import {
  ALL,
  activitiesWith,
  addLoop,
  count,
  createStageFixture,
  quietEnvironment,
  registryWith,
  runActivity,
  simDelta,
  type StageFixture,
  wholeVersion,
} from '../helpers/stages.js';
import { connectTestTemporal, type TestTemporal } from '../helpers/temporal.js';

/**
 * Model-server faults and cancellation against the simulated server (`POST /sim/faults` rules, set in process):
 * latency, 429 with retry-after, 500s and truncated bodies, first at the activity boundary (the ApplicationFailure
 * Temporal sees), then through a real worker and the stage workflow's real retry policy on the suite's dev server.
 */

let f: StageFixture;
let temporal: TestTemporal;
let worker: Worker;
let running: Promise<void>;
let taskQueue: string;

const policy = (maxConcurrency = 16) => ({ baseUrls: [f.sim.baseURL], maxConcurrency, model: f.sim.policyModel });

const probeInput = async (loopName: string, extra: Partial<ProbeBatchInput> = {}): Promise<ProbeBatchInput> => ({
  loopName,
  iteration: 1,
  versionId: f.seedVersion.id,
  batch: await wholeVersion(f, f.seedVersion.id),
  policy: policy(),
  checker: { mode: 'exact' },
  maxTokens: 1024,
  ...extra,
});

const rows = (loopName: string, table = 'probe_results') =>
  count(f, `SELECT count(*) AS n FROM ${table} WHERE loop_name = $1::text`, [loopName]);
/**
 * A page that fails on one request leaves its other requests to finish (their answers are discarded); wait for them,
 * so they cannot take the next test's fault rule.
 */
const settled = () =>
  until('the failed page’s other requests to finish', () => f.deps.llm.pool('policy', policy()).inFlight === 0);

/** Polls for a condition (a generous deadline only turns a hang into a failure; no assertion depends on time). */
async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Runs one batched stage as the loop does (child workflow `stageWorkflow`, batches planned in stage_batches). */
type StageSettings<S extends StageWorkflowInput['stage']> = Extract<StageWorkflowInput, { stage: S }>['settings'];

async function runStage(
  input: { loopName: string; batchSize: number; concurrency?: number } & (
    { stage: 'probe'; settings: StageSettings<'probe'> } | { stage: 'judge'; settings: StageSettings<'judge'> }
  ),
) {
  const queues = { control: taskQueue, llm: taskQueue, gpu: taskQueue };
  const args = {
    ...input,
    iteration: 1,
    queues,
    concurrency: input.concurrency ?? 2,
    batchesPerRun: 500,
    paused: false,
    timeouts: { batchHeartbeatSeconds: 30, trainHeartbeatSeconds: 30 },
    ...(input.stage === 'probe' ? { versionId: input.settings.versionId } : {}),
  } as StageWorkflowInput;
  const handle = await temporal.client.workflow.start<typeof stageWorkflow>('stageWorkflow', {
    taskQueue,
    workflowId: `loop/${input.loopName}/iter-1/${input.stage}-${randomBytes(3).toString('hex')}`,
    args: [args],
  });
  const counts = await handle.result();
  const history = await handle.fetchHistory();
  const events = history.events ?? [];
  const scheduled = new Map(
    events
      .filter((e) => e.activityTaskScheduledEventAttributes)
      .map((e) => [String(e.eventId), e.activityTaskScheduledEventAttributes!]),
  );
  // A retried activity's started event records its final attempt and the failure before it; its scheduled event, the
  // retry policy it ran under.
  const attempts = events.flatMap((e) => {
    const started = e.activityTaskStartedEventAttributes;
    if (!started) return [];
    const scheduledAs = scheduled.get(String(started.scheduledEventId));
    const retryPolicy = scheduledAs?.retryPolicy;
    return [
      {
        activity: scheduledAs?.activityType?.name,
        attempt: started.attempt ?? 1,
        lastFailure: started.lastFailure ?? null,
        initialIntervalMs: retryPolicy?.initialInterval ? tsToMs(retryPolicy.initialInterval) : undefined,
      },
    ];
  });
  return { counts, attempts };
}

beforeAll(async () => {
  f = await createStageFixture({ count: 200, seed: 23, wrongLabelRate: 0.2 });
  temporal = await connectTestTemporal();
  taskQueue = temporal.uniqueTaskQueue('stage-faults');
  worker = await temporal.createWorker({ taskQueue, activities: f.activities, withWorkflows: true });
  running = worker.run();
});
afterEach(() => f.sim.faults.clear());
afterAll(async () => {
  worker?.shutdown();
  await running;
  await temporal?.close();
  await f?.close();
});

describe('cancellation', () => {
  test('a cancelled probe stops within one request: in-flight requests are aborted and nothing of the unfinished page is written', async () => {
    await addLoop(f, 'cancel');
    const pageSize = 8;
    // The server holds every answer for a minute: whatever the activity does after the cancellation, it cannot have
    // waited for an answer, so "stopped within one request" is read off the server's counters, not a clock.
    f.sim.faults.add([{ role: 'policy', kind: 'latency', latencyMs: 60_000 }]);
    const before = f.sim.stats();
    const delta = () => {
      const now = f.sim.stats();
      return {
        sent: now.requests.byRole.policy - before.requests.byRole.policy,
        delayed: now.faults.latency - before.faults.latency,
        aborted: now.requests.aborted - before.requests.aborted,
        answered: now.student.answered - before.student.answered,
      };
    };
    const env = quietEnvironment();
    const outcome = runActivity(
      f.activities.probeBatch,
      [await probeInput('cancel', { pageSize, policy: policy(pageSize) })],
      { env },
    ).then(
      () => undefined,
      (err: unknown) => err,
    );
    await until('the first page of requests to reach the server', () => delta().sent >= pageSize);
    env.cancel();
    const error = await outcome;
    const atEnd = delta();

    // Reported to Temporal as a cancellation, not a failure.
    expect(error).toBeInstanceOf(CancelledFailure);
    // It ended while the server still held every request of the page: not one answer was made, so none was awaited.
    expect(atEnd).toMatchObject({ sent: pageSize, delayed: pageSize, answered: 0 });
    // The requests ended on the client when the activity did: aborted, not left running.
    expect(f.deps.llm.pool('policy', policy(pageSize)).inFlight).toBe(0);
    expect(await rows('cancel')).toBe(0);
    expect(await rows('cancel', 'model_calls')).toBe(0);
    // The server sees each of the page's requests closed by the client before its answer; nothing more was sent, no
    // answer was made, nothing was written.
    await until('the server to see the page’s requests closed', () => delta().aborted >= pageSize);
    expect(delta()).toEqual({ sent: pageSize, delayed: pageSize, aborted: pageSize, answered: 0 });
    expect(await rows('cancel')).toBe(0);
  });
});

describe('failures at the activity boundary', () => {
  test("a 429 fails the batch with a retryable ModelServerUnavailable whose nextRetryDelay is the server's retry-after, keeping the rest of the page but not the failed sample", async () => {
    await addLoop(f, 'limited');
    f.sim.faults.add([{ role: 'policy', kind: 'rate_limit', retryAfterSeconds: 7, count: 1 }]);
    const run = await simDelta(f.sim, async () =>
      runActivity(f.activities.probeBatch, [await probeInput('limited', { pageSize: 16 })]).catch(
        (err: unknown) => err,
      ),
    );
    expect(run.after.faults.rate_limit - run.before.faults.rate_limit).toBe(1);
    expect(run.result).toBeInstanceOf(ApplicationFailure);
    expect(run.result).toMatchObject({
      type: ErrorType.ModelServerUnavailable,
      nonRetryable: false,
      nextRetryDelay: 7000,
    });
    expect((run.result as Error).message).toMatch(/HTTP 429/);
    // The page's other requests finished and are kept; the rate-limited one is left for the retry.
    expect(await rows('limited')).toBe(16 - 1);
    await settled();
  });

  test('a 500 is retryable with no fixed delay; an unknown model (404) is a non-retryable configuration error', async () => {
    await addLoop(f, 'failing');
    f.sim.faults.add([{ role: 'policy', kind: 'server_error', count: 1 }]);
    const serverError = await runActivity(f.activities.probeBatch, [
      await probeInput('failing', { pageSize: 16 }),
    ]).catch((err: unknown) => err);
    expect(serverError).toBeInstanceOf(ApplicationFailure);
    expect(serverError).toMatchObject({
      type: ErrorType.ModelServerUnavailable,
      nonRetryable: false,
      nextRetryDelay: undefined,
    });
    expect((serverError as Error).message).toMatch(/HTTP 500/);
    await settled();

    const unknownModel = await runActivity(f.activities.probeBatch, [
      await probeInput('failing', { pageSize: 16, policy: { ...policy(), model: 'no-such-model' } }),
    ]).catch((err: unknown) => err);
    expect(unknownModel).toBeInstanceOf(ApplicationFailure);
    expect(unknownModel).toMatchObject({ type: ErrorType.ModelRequestRejected, nonRetryable: true });
    expect((unknownModel as Error).message).toMatch(/HTTP 404.*does not exist/);
    // What the first page finished before the 500 is kept; the 404s wrote nothing.
    expect(await rows('failing')).toBe(16 - 1);
  });

  test('a request the server refuses for one sample is that sample’s data, not a failed batch: too_long for its length, request_rejected otherwise', async () => {
    await addLoop(f, 'rejected');
    const tooLong = new Set<string>();
    const refused = new Set<string>();
    const hash = (key: string) => [...key].reduce((h, c) => (h * 33 + c.charCodeAt(0)) >>> 0, 5381);
    // vLLM answers 400 for a prompt over the context length (here every fifth conversation) and for a request it cannot
    // serve otherwise (every seventh of the rest: a tool schema its template rejects).
    const fetchImpl: typeof fetch = async (input, init) => {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
      const body = typeof init?.body === 'string' ? (JSON.parse(init.body) as { messages: unknown }) : undefined;
      const key = body ? JSON.stringify(body.messages) : '';
      const chat = url.endsWith('/chat/completions');
      const message =
        body && hash(key) % 5 === 0
          ? "This model's maximum context length is 32768 tokens."
          : body && hash(key) % 7 === 0
            ? 'tools[0].function.parameters: unsupported schema'
            : undefined;
      if (chat && message) {
        (message.includes('context length') ? tooLong : refused).add(key);
        const error = { message, type: 'BadRequestError', param: null, code: 400 };
        return new Response(JSON.stringify({ error }), {
          status: 400,
          headers: { 'content-type': 'application/json' },
        });
      }
      return fetch(input, init);
    };
    const activities = activitiesWith(f, registryWith(fetchImpl));
    const result = await runActivity(activities.probeBatch, [await probeInput('rejected')]);
    const members = await count(f, 'SELECT count(*) AS n FROM dataset_members WHERE version_id = $1::bigint', [
      f.seedVersion.id,
    ]);
    expect(tooLong.size).toBeGreaterThan(0);
    expect(refused.size).toBeGreaterThan(0);
    expect(result.probed).toBe(members);
    expect(result.tooLong).toBe(tooLong.size);
    const recorded = async (errorType: string) =>
      (
        await f.db.pool.query<{ outcome: string; raw_output: string; error: string; perplexity: number | null }>(
          `SELECT outcome, raw_output, error, perplexity FROM probe_results WHERE loop_name = 'rejected' AND error_type = $1`,
          [errorType],
        )
      ).rows;
    const long = await recorded('prompt_too_long');
    expect(long).toHaveLength(tooLong.size);
    for (const row of long)
      expect(row).toMatchObject({
        outcome: 'too_long',
        raw_output: '',
        error: expect.stringMatching(/^HTTP 400: .*maximum context length/),
        perplexity: null,
      });
    const other = await recorded('request_rejected');
    expect(other).toHaveLength(refused.size);
    for (const row of other)
      expect(row).toMatchObject({
        outcome: 'parse_error',
        error: expect.stringMatching(/^HTTP 400: .*unsupported schema/),
      });
    expect(await count(f, `SELECT count(*) AS n FROM model_calls WHERE loop_name = 'rejected' AND NOT ok`)).toBe(
      tooLong.size + refused.size,
    );
    // Neither is the policy's error: the judge gets none of them.
    const judgeable = await pendingJudgeItems(f.db.pool, {
      loopName: 'rejected',
      iteration: 1,
      ...ALL,
      limit: 100_000,
    });
    const ids = new Set(judgeable.map((item) => item.sampleId));
    const notJudged = await f.db.pool.query<{ sample_id: string }>(
      `SELECT sample_id FROM probe_results WHERE loop_name = 'rejected' AND error_type IN ('prompt_too_long', 'request_rejected')`,
    );
    expect(notJudged.rows.some((r) => ids.has(r.sample_id))).toBe(false);
  });
});

describe('retries through a real worker and the stage workflow', () => {
  test("a rate-limited batch is retried after the server's retry-after (sooner than the policy's 2 s backoff) and completes with every row written once", async () => {
    await addLoop(f, 'w429');
    f.sim.faults.add([{ role: 'policy', kind: 'rate_limit', retryAfterSeconds: 1, count: 1 }]);
    const members = await count(f, 'SELECT count(*) AS n FROM dataset_members WHERE version_id = $1::bigint', [
      f.seedVersion.id,
    ]);
    const run = await simDelta(f.sim, () =>
      runStage({
        loopName: 'w429',
        stage: 'probe',
        batchSize: 100,
        settings: { versionId: f.seedVersion.id, policy: policy(), checker: { mode: 'exact' }, maxTokens: 1024 },
      }),
    );
    expect(run.after.faults.rate_limit - run.before.faults.rate_limit).toBe(1);
    expect(run.result.counts.probed).toBe(members);
    expect(await rows('w429')).toBe(members);
    expect(await count(f, `SELECT count(DISTINCT sample_id) AS n FROM probe_results WHERE loop_name = 'w429'`)).toBe(
      members,
    );
    expect(await rows('w429', 'model_calls')).toBe(members);

    // Two batches; exactly one retry, of the rate-limited one.
    expect(
      run.result.attempts
        .filter((a) => a.activity === 'probeBatch')
        .map((a) => a.attempt)
        .sort(),
    ).toEqual([1, 2]);
    const retried = run.result.attempts.filter((a) => a.attempt > 1);
    expect(retried).toHaveLength(1);
    expect(retried[0]!.lastFailure?.applicationFailureInfo).toMatchObject({
      type: ErrorType.ModelServerUnavailable,
      nonRetryable: false,
    });
    expect(retried[0]!.lastFailure?.message).toMatch(/HTTP 429/);
    // The failure Temporal retried carried the server's retry-after (1 s) as its next retry delay, which replaces the
    // activity's own backoff (2 s initial interval): that is what makes the retry come after the retry-after.
    const nextRetryDelay = retried[0]!.lastFailure?.applicationFailureInfo?.nextRetryDelay;
    expect(nextRetryDelay).toBeTruthy();
    expect(tsToMs(nextRetryDelay)).toBe(1000);
    expect(retried[0]!.initialIntervalMs).toBe(2000);
  });

  test('500s in the middle of a batch are retried, and the retry resumes after the last written page without writing anything twice', async () => {
    await addLoop(f, 'w500');
    const members = await count(f, 'SELECT count(*) AS n FROM dataset_members WHERE version_id = $1::bigint', [
      f.seedVersion.id,
    ]);
    const pageSize = 20;
    // One batch at a time, so the requests arrive in page order: the first page's requests are answered (a latency of
    // 0 is only there to count them), then the next two get 500s, both on the batch's second page.
    f.sim.faults.add([
      { role: 'policy', kind: 'latency', latencyMs: 0, count: pageSize },
      { role: 'policy', kind: 'server_error', count: 2 },
    ]);
    const run = await simDelta(f.sim, () =>
      runStage({
        loopName: 'w500',
        stage: 'probe',
        batchSize: 100,
        concurrency: 1,
        settings: {
          versionId: f.seedVersion.id,
          policy: policy(4),
          checker: { mode: 'exact' },
          maxTokens: 1024,
          pageSize,
        },
      }),
    );
    const { counts, attempts } = run.result;

    expect(run.after.faults.latency - run.before.faults.latency).toBe(pageSize);
    expect(run.after.faults.server_error - run.before.faults.server_error).toBe(2);
    expect(pageSize + 2).toBeLessThan(members);
    expect(counts.probed).toBe(members);
    expect(await rows('w500')).toBe(members);
    expect(await count(f, `SELECT count(DISTINCT sample_id) AS n FROM probe_results WHERE loop_name = 'w500'`)).toBe(
      members,
    );
    expect(await rows('w500', 'model_calls')).toBe(members);
    // The first batch failed once on the 500s and its retry completed it; the second batch ran once.
    expect(
      attempts
        .filter((a) => a.activity === 'probeBatch')
        .map((a) => a.attempt)
        .sort(),
    ).toEqual([1, 2]);
    const retried = attempts.filter((a) => a.attempt > 1);
    expect(retried[0]!.lastFailure?.message).toMatch(/HTTP 500/);
    // Every sample was asked exactly once more than the two 500s: the first page and the second page's other 18
    // answers were written by the failed attempt (the failure came mid-batch, after a written page) and the retry
    // asked only for what was left.
    expect(run.requests('policy')).toBe(members + 2);
  });

  test('a truncated judge reply (broken JSON body) loses and duplicates nothing: the judge stage completes with one judgement per mismatch', async () => {
    await addLoop(f, 'wcut');
    await runActivity(f.activities.probeBatch, [await probeInput('wcut')]);
    const mismatches = await count(
      f,
      `SELECT count(*) AS n FROM probe_results WHERE loop_name = 'wcut' AND outcome <> 'match'`,
    );
    f.sim.faults.add([{ role: 'judge', kind: 'truncated', count: 2 }]);
    const run = await simDelta(f.sim, () =>
      runStage({
        loopName: 'wcut',
        stage: 'judge',
        batchSize: 40,
        settings: {
          judge: { baseUrls: [f.sim.baseURL], maxConcurrency: 8, model: f.sim.judgeModel },
          seed: 0,
          votes: 3,
        },
      }),
    );
    expect(run.after.faults.truncated - run.before.faults.truncated).toBe(2);
    expect(run.result.counts.judged).toBe(mismatches);
    expect(await rows('wcut', 'judgements')).toBe(mismatches);
    expect(await count(f, `SELECT count(DISTINCT sample_id) AS n FROM judgements WHERE loop_name = 'wcut'`)).toBe(
      mismatches,
    );
    // Every vote of every judged mismatch is in its row (and the ledger counts each call key once).
    expect(
      await count(f, `SELECT count(*) AS n FROM judgements, jsonb_array_elements(votes) WHERE loop_name = 'wcut'`),
    ).toBe(
      3 * (await count(f, `SELECT count(*) AS n FROM probe_results WHERE loop_name = 'wcut' AND outcome = 'mismatch'`)),
    );
    expect(
      await count(f, `SELECT count(*) - count(DISTINCT call_key) AS n FROM model_calls WHERE loop_name = 'wcut'`),
    ).toBe(0);
  });
});
