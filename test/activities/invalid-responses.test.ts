import { randomBytes } from 'node:crypto';
import type { Worker } from '@temporalio/worker';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { ErrorType } from '../../core/errors.js';
import type { ProbeBatchInput, StageWorkflowInput } from '../../core/inputs.js';
import type { stageWorkflow } from '../../workflows/index.js';
import {
  ALL,
  addLoop,
  count,
  createStageFixture,
  runActivity,
  simDelta,
  type StageFixture,
  wholeVersion,
} from '../helpers/stages.js';
import { connectTestTemporal, type TestTemporal } from '../helpers/temporal.js';

/**
 * Model responses are validated where they arrive (core/schemas/model-response.ts). A body that is JSON but not a
 * completion (the sim's `bad_usage` fault: `usage.prompt_tokens: "lots"`) is that one request's data: the batch
 * completes, the request is not resent, and nothing of it reaches an integer column. A body that is not JSON (the
 * sim's `garbage` fault: an HTML page with status 200) is a retryable failure, and the retried batch ends with the rows
 * a run without faults writes.
 */

let f: StageFixture;
let temporal: TestTemporal;
let worker: Worker;
let running: Promise<void>;
let taskQueue: string;
let members: number;
/** The probe rows of a run without faults, by sample id (the sim's greedy student answers the same every time). */
let clean: Map<string, ProbeRow>;

const policy = (maxConcurrency = 16) => ({ baseUrls: [f.sim.baseURL], maxConcurrency, model: f.sim.policyModel });
const judgeModel = () => ({ baseUrls: [f.sim.baseURL], maxConcurrency: 8, model: f.sim.judgeModel });
const generatorModel = () => ({ baseUrls: [f.sim.baseURL], maxConcurrency: 8, model: f.sim.generatorModel });

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

interface ProbeRow {
  sample_id: string;
  outcome: string;
  raw_output: string;
  parsed_calls: string | null;
  error_type: string | null;
  error: string | null;
  mean_logprob: number | null;
  perplexity: number | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
}

/** A loop's probe rows, without the latency (the one column that differs between identical answers). */
async function probeRows(loopName: string): Promise<Map<string, ProbeRow>> {
  const { rows } = await f.db.pool.query<ProbeRow>(
    `SELECT sample_id, outcome, raw_output, parsed_calls::text AS parsed_calls, error_type, error, mean_logprob,
            perplexity, prompt_tokens, completion_tokens
     FROM probe_results WHERE loop_name = $1::text AND iteration = 1`,
    [loopName],
  );
  return new Map(rows.map((row) => [row.sample_id, row]));
}

interface CallRow {
  call_key: string;
  ok: boolean;
  prompt_tokens: number;
  completion_tokens: number;
}

async function modelCalls(loopName: string, stage: string): Promise<CallRow[]> {
  const { rows } = await f.db.pool.query<CallRow>(
    `SELECT call_key, ok, prompt_tokens, completion_tokens FROM model_calls WHERE loop_name = $1::text AND stage = $2::text`,
    [loopName, stage],
  );
  return rows;
}

const INVALID_USAGE = 'usage.prompt_tokens: expected integer, got string "lots"';

/** Runs the probe stage as the loop does: the stage workflow on a real worker, with the stage's real retry policy. */
async function runProbeStage(
  loopName: string,
  settings: Partial<Extract<StageWorkflowInput, { stage: 'probe' }>['settings']>,
) {
  const args = {
    loopName,
    iteration: 1,
    stage: 'probe',
    batchSize: 60,
    concurrency: 1,
    queues: { control: taskQueue, llm: taskQueue, gpu: taskQueue },
    batchesPerRun: 500,
    paused: false,
    timeouts: { batchHeartbeatSeconds: 30, trainHeartbeatSeconds: 30 },
    versionId: f.seedVersion.id,
    settings: {
      versionId: f.seedVersion.id,
      policy: policy(),
      checker: { mode: 'exact' },
      maxTokens: 1024,
      ...settings,
    },
  } as StageWorkflowInput;
  const handle = await temporal.client.workflow.start<typeof stageWorkflow>('stageWorkflow', {
    taskQueue,
    workflowId: `loop/${loopName}/iter-1/probe-${randomBytes(3).toString('hex')}`,
    args: [args],
  });
  const counts = await handle.result();
  const events = (await handle.fetchHistory()).events ?? [];
  const scheduled = new Map(
    events
      .filter((e) => e.activityTaskScheduledEventAttributes)
      .map((e) => [String(e.eventId), e.activityTaskScheduledEventAttributes!.activityType?.name]),
  );
  // A retried activity's started event records its final attempt and the failure before it.
  const attempts = events.flatMap((e) => {
    const started = e.activityTaskStartedEventAttributes;
    return started
      ? [
          {
            activity: scheduled.get(String(started.scheduledEventId)),
            attempt: started.attempt ?? 1,
            lastFailure: started.lastFailure ?? null,
          },
        ]
      : [];
  });
  return { counts, attempts };
}

beforeAll(async () => {
  f = await createStageFixture({ count: 120, seed: 29, wrongLabelRate: 0.2 });
  members = await count(f, 'SELECT count(*) AS n FROM dataset_members WHERE version_id = $1::bigint', [
    f.seedVersion.id,
  ]);
  await addLoop(f, 'clean');
  await runActivity(f.activities.probeBatch, [await probeInput('clean')]);
  clean = await probeRows('clean');
  temporal = await connectTestTemporal();
  taskQueue = temporal.uniqueTaskQueue('invalid-responses');
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

describe('a policy response that is JSON of the wrong shape', () => {
  test('is stored as that sample’s result (invalid_response, the raw body), the batch completes and nothing is resent', async () => {
    await addLoop(f, 'badusage');
    const bad = 5;
    f.sim.faults.add([{ role: 'policy', kind: 'bad_usage', count: bad }]);
    const run = await simDelta(f.sim, async () => runActivity(f.activities.probeBatch, [await probeInput('badusage')]));

    expect(run.after.faults.bad_usage - run.before.faults.bad_usage).toBe(bad);
    expect(clean.size).toBe(members);
    expect(run.result.probed).toBe(members);
    // One request per sample: the invalid answers were recorded, not retried.
    expect(run.requests('policy')).toBe(members);

    const rows = await probeRows('badusage');
    expect(rows.size).toBe(members);
    const invalid = [...rows.values()].filter((row) => row.error_type === 'invalid_response');
    expect(invalid).toHaveLength(bad);
    for (const row of invalid) {
      expect(row).toMatchObject({
        outcome: 'parse_error',
        error: INVALID_USAGE,
        parsed_calls: null,
        mean_logprob: null,
        perplexity: null,
        prompt_tokens: null,
        completion_tokens: null,
      });
      // The body as it came, so the server's answer can be read back.
      const body = JSON.parse(row.raw_output) as { usage: { prompt_tokens: unknown }; choices: unknown[] };
      expect(body.usage.prompt_tokens).toBe('lots');
      expect(body.choices).toHaveLength(1);
    }
    // Every other sample has exactly the row a run without faults wrote.
    for (const [sampleId, row] of rows) {
      if (row.error_type !== 'invalid_response') expect(row).toEqual(clean.get(sampleId));
    }

    // The ledger: one call per sample; the invalid ones failed and used no tokens that anyone could count.
    const calls = await modelCalls('badusage', 'probe');
    expect(calls).toHaveLength(members);
    const failed = calls.filter((call) => !call.ok);
    expect(failed.map((call) => call.call_key.split(':').at(-1)).sort()).toEqual(
      invalid.map((row) => row.sample_id).sort(),
    );
    for (const call of failed) expect(call).toMatchObject({ prompt_tokens: 0, completion_tokens: 0 });
  });
});

describe('a policy response that is not JSON', () => {
  test('fails the batch retryably; the retried stage ends with the rows of a run without faults', async () => {
    await addLoop(f, 'garbage');
    const garbage = 2;
    f.sim.faults.add([{ role: 'policy', kind: 'garbage', count: garbage }]);
    const run = await simDelta(f.sim, () => runProbeStage('garbage', { policy: policy(4), pageSize: 20 }));

    expect(run.after.faults.garbage - run.before.faults.garbage).toBe(garbage);
    expect(run.result.counts.probed).toBe(members);
    // The first batch failed on the HTML bodies and its retry finished it; the second ran once.
    const probeAttempts = run.result.attempts.filter((a) => a.activity === 'probeBatch');
    expect(probeAttempts.map((a) => a.attempt).sort()).toEqual([1, 2]);
    const retried = probeAttempts.find((a) => a.attempt === 2)!;
    expect(retried.lastFailure?.applicationFailureInfo).toMatchObject({
      type: ErrorType.ModelServerUnavailable,
      nonRetryable: false,
    });
    expect(retried.lastFailure?.message).toMatch(/malformed response body/);
    // Only the samples that got HTML were asked again.
    expect(run.requests('policy')).toBe(members + garbage);

    const rows = await probeRows('garbage');
    expect(rows).toEqual(clean);
    const calls = await modelCalls('garbage', 'probe');
    expect(calls).toHaveLength(members);
    expect(calls.every((call) => call.ok)).toBe(true);
  });
});

describe('judge and generator responses that are JSON of the wrong shape', () => {
  test('a judge vote with bad usage is a failed vote with its raw body; the generator’s are failed generations', async () => {
    await addLoop(f, 'structured');
    await runActivity(f.activities.probeBatch, [await probeInput('structured')]);
    const mismatches = await count(
      f,
      `SELECT count(*) AS n FROM probe_results WHERE loop_name = 'structured' AND outcome = 'mismatch'`,
    );
    expect(mismatches).toBeGreaterThan(2);

    const badVotes = 2;
    f.sim.faults.add([{ role: 'judge', kind: 'bad_usage', count: badVotes }]);
    const judged = await simDelta(f.sim, () =>
      runActivity(f.activities.judgeBatch, [
        { loopName: 'structured', iteration: 1, batch: ALL, judge: judgeModel(), seed: 0, votes: 1, parseRetries: 0 },
      ]),
    );
    expect(judged.after.faults.bad_usage - judged.before.faults.bad_usage).toBe(badVotes);
    // One request per mismatch (parse errors are judged by rule, without a call): nothing was resent.
    expect(judged.requests('judge')).toBe(mismatches);
    const { rows: failedVotes } = await f.db.pool.query<{ verdict: string; reason: string; raw: string }>(
      `SELECT j.verdict, v->>'reason' AS reason, v->>'raw' AS raw
       FROM judgements j, jsonb_array_elements(j.votes) v WHERE j.loop_name = 'structured' AND NOT (v->>'ok')::boolean`,
    );
    expect(failedVotes).toHaveLength(badVotes);
    for (const vote of failedVotes) {
      expect(vote.verdict).toBe('judge_failed');
      expect(vote.reason).toBe(`invalid response: ${INVALID_USAGE}`);
      expect((JSON.parse(vote.raw) as { usage: { prompt_tokens: unknown } }).usage.prompt_tokens).toBe('lots');
    }
    const judgeCalls = await modelCalls('structured', 'judge');
    expect(judgeCalls).toHaveLength(mismatches);
    const failedJudgeCalls = judgeCalls.filter((call) => !call.ok);
    expect(failedJudgeCalls).toHaveLength(badVotes);
    for (const call of failedJudgeCalls) expect(call).toMatchObject({ prompt_tokens: 0, completion_tokens: 0 });

    // Every generator reply has bad usage: each slot is a failed generation, kept with the body and the reason.
    f.sim.faults.add([{ role: 'generator', kind: 'bad_usage' }]);
    const expanded = await simDelta(f.sim, () =>
      runActivity(f.activities.expandBatch, [
        {
          loopName: 'structured',
          iteration: 1,
          batch: ALL,
          generator: generatorModel(),
          seed: 5,
          k: 1,
          maxAttempts: 1,
        },
      ]),
    );
    const { rows: expansions } = await f.db.pool.query<{
      status: string;
      raw_output: string;
      rejection_reason: string;
    }>(`SELECT status, raw_output, rejection_reason FROM expansions WHERE loop_name = 'structured'`);
    expect(expansions.length).toBeGreaterThan(0);
    expect(expanded.requests('generator')).toBe(expansions.length);
    expect(expanded.after.faults.bad_usage - expanded.before.faults.bad_usage).toBe(expansions.length);
    for (const row of expansions) {
      expect(row.status).toBe('generation_failed');
      expect(row.rejection_reason).toBe(`invalid response: ${INVALID_USAGE}`);
      expect((JSON.parse(row.raw_output) as { usage: { prompt_tokens: unknown } }).usage.prompt_tokens).toBe('lots');
    }
    const expandCalls = await modelCalls('structured', 'expand');
    expect(expandCalls).toHaveLength(expansions.length);
    for (const call of expandCalls) expect(call).toMatchObject({ ok: false, prompt_tokens: 0, completion_tokens: 0 });
  });
});

describe('an evaluation answer that is JSON of the wrong shape', () => {
  test('counts as a wrong answer of its question; the file is scored and nothing is resent', async () => {
    const file = {
      questions: 'data/bfcl/BFCL_v4_multiple.json',
      answers: 'data/bfcl/possible_answer/BFCL_v4_multiple.json',
    };
    const evaluate = (loopName: string) =>
      simDelta(f.sim, () =>
        runActivity(f.activities.evaluateFile, [
          { loopName, iteration: 1, evalSet: 'bfcl', file, policy: policy(), maxTokens: 1024 },
        ]),
      );
    await addLoop(f, 'evalclean');
    await addLoop(f, 'evalbad');
    const cleanRun = await evaluate('evalclean');
    const bad = 3;
    f.sim.faults.add([{ role: 'policy', kind: 'bad_usage', count: bad }]);
    const badRun = await evaluate('evalbad');

    expect(badRun.after.faults.bad_usage - badRun.before.faults.bad_usage).toBe(bad);
    const [cleanScore] = cleanRun.result;
    const [badScore] = badRun.result;
    expect(badScore!.total).toBe(cleanScore!.total);
    expect(badRun.requests('policy')).toBe(badScore!.total);
    // The invalid answers are wrong answers; the others are scored as in the run without faults.
    expect(badScore!.correct).toBeLessThanOrEqual(cleanScore!.correct);
    expect(badScore!.correct).toBeGreaterThanOrEqual(cleanScore!.correct - bad);
    const calls = await modelCalls('evalbad', 'evaluate');
    expect(calls).toHaveLength(badScore!.total);
    const failed = calls.filter((call) => !call.ok);
    expect(failed).toHaveLength(bad);
    for (const call of failed) expect(call).toMatchObject({ prompt_tokens: 0, completion_tokens: 0 });
    expect(
      await count(f, `SELECT count(*) AS n FROM evaluations WHERE loop_name = 'evalbad' AND category = 'multiple'`),
    ).toBe(1);
  });
});
