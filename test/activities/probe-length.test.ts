import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { heldOutSizeOf } from '../../activities/dataset.js';
import { HELD_OUT_EVAL_SET } from '../../core/constants.js';
import { policyPrompt } from '../../core/formats/policy-prompt.js';
import type { ProbeBatchInput } from '../../core/inputs.js';
import { exportVersion, TOO_LONG_SKIP_REASON } from '../../datasets/export.js';
import { heldOutSampleIds } from '../../db/queries/assembly.js';
import { pendingJudgeItems } from '../../db/queries/judgements.js';
import { getSamples } from '../../db/queries/samples.js';
import { decodeSample } from '../../db/sample-codec.js';
import { type SimServer, simPromptTokens, startSimServer } from '../../sim/server.js';
import {
  ALL,
  addLoop,
  createStageFixture,
  runActivity,
  simDelta,
  type StageFixture,
  wholeVersion,
} from '../helpers/stages.js';

/**
 * Length-aware probing: a prompt longer than the policy's context (less the reply budget) or the trainer's prompt
 * budget is recorded as `too_long`, never sent when the server can count it (`/tokenize`), never judged (so never an
 * error seed), and left out of the loop's training exports. Before, the server's 400 became a parse error and then a
 * model error by rule.
 */

const MAX_TOKENS = 64;
let f: StageFixture;
/** A policy server whose context is about the seed prompts' median length. */
let short: SimServer;
let contextLen: number;
/** Each seed sample's prompt tokens as the sim counts them. */
let lengths: Map<string, number>;
let scratch: string;

const probeInput = async (
  loopName: string,
  server: SimServer,
  extra: Partial<ProbeBatchInput> = {},
): Promise<ProbeBatchInput> => ({
  loopName,
  iteration: 1,
  versionId: f.seedVersion.id,
  batch: await wholeVersion(f, f.seedVersion.id),
  policy: { baseUrls: [server.baseURL], maxConcurrency: 8, model: server.policyModel },
  checker: { mode: 'exact' },
  maxTokens: MAX_TOKENS,
  ...extra,
});

async function probeRows(loopName: string) {
  const { rows } = await f.db.pool.query<{
    sample_id: string;
    outcome: string;
    error_type: string | null;
    prompt_tokens: number | null;
  }>(
    `SELECT sample_id, outcome, error_type, prompt_tokens FROM probe_results WHERE loop_name = $1::text AND iteration = 1`,
    [loopName],
  );
  return rows;
}

const idsOver = (limit: number) => new Set([...lengths].filter(([, n]) => n > limit).map(([id]) => id));

beforeAll(async () => {
  scratch = mkdtempSync(path.join(os.tmpdir(), 'looptool-probe-length-'));
  f = await createStageFixture({ count: 120, seed: 31, wrongLabelRate: 0.2 });
  const ids = (
    await f.db.pool.query<{ id: string }>(
      'SELECT s.id FROM dataset_members m JOIN samples s ON s.seq = m.sample_seq WHERE m.version_id = $1::bigint',
      [f.seedVersion.id],
    )
  ).rows.map((r) => r.id);
  lengths = new Map(
    (await getSamples(f.db.pool, ids)).map((stored) => [
      stored.id,
      simPromptTokens(policyPrompt(decodeSample(stored))),
    ]),
  );
  const sorted = [...lengths.values()].sort((a, b) => a - b);
  contextLen = sorted[Math.floor(sorted.length / 2)]! + MAX_TOKENS;
  short = await startSimServer({ port: 0, seed: 7, maxModelLen: contextLen, bfclDir: false });
  for (const name of ['counted', 'refused', 'budget', 'held', 'held-probe']) await addLoop(f, name);
}, 120_000);

afterAll(async () => {
  await short?.close();
  await f?.close();
  rmSync(scratch, { recursive: true, force: true });
});

describe('length-aware probing', () => {
  test("prompts over the context are counted with the server's /tokenize and recorded too_long without being sent", async () => {
    const over = idsOver(contextLen - MAX_TOKENS);
    expect(over.size).toBeGreaterThan(10);
    expect(over.size).toBeLessThan(lengths.size - 10);
    const delta = await simDelta(short, async () =>
      runActivity(f.activities.probeBatch, [
        // The trainer's budget is above the context here: the context binds.
        await probeInput('counted', short, { maxPromptTokens: 100_000 }),
      ]),
    );
    const rows = await probeRows('counted');
    expect(new Set(rows.filter((r) => r.outcome === 'too_long').map((r) => r.sample_id))).toEqual(over);
    for (const row of rows.filter((r) => r.outcome === 'too_long'))
      expect(row).toMatchObject({ error_type: 'prompt_too_long', prompt_tokens: lengths.get(row.sample_id) });
    expect(delta.result.tooLong).toBe(over.size);
    expect(delta.result.probed).toBe(lengths.size);
    // Only the prompts that fit were sent; the long ones were counted first.
    expect(delta.requests('policy')).toBe(lengths.size - over.size);
    expect(delta.after.requests.tokenize - delta.before.requests.tokenize).toBeGreaterThanOrEqual(over.size);
  });

  test("a server's 400 for a prompt over its context is recognised as too_long, not a parse error", async () => {
    // A policy server that cannot count (an older vLLM, another server) is the same as one whose prompts look short
    // enough by their byte length: the request goes out and the server refuses it.
    const over = idsOver(contextLen - MAX_TOKENS);
    const delta = await simDelta(short, async () =>
      runActivity(f.activities.probeBatch, [
        await probeInput('refused', short, { maxPromptTokens: 10_000_000, contextTokens: 10_000_000 }),
      ]),
    );
    expect(delta.after.requests.tokenize).toBe(delta.before.requests.tokenize);
    const rows = await probeRows('refused');
    expect(new Set(rows.filter((r) => r.outcome === 'too_long').map((r) => r.sample_id))).toEqual(over);
    expect(rows.filter((r) => r.outcome === 'parse_error' && r.error_type === 'request_rejected')).toEqual([]);
  });

  test("the trainer's prompt budget (grpo.maxPromptTokens) binds too: verl would drop those prompts", async () => {
    const budget = [...lengths.values()].sort((a, b) => a - b)[Math.floor(lengths.size / 4)]!;
    const over = idsOver(budget);
    expect(over.size).toBeGreaterThan(lengths.size / 2);
    const delta = await simDelta(f.sim, async () =>
      runActivity(f.activities.probeBatch, [await probeInput('budget', f.sim, { maxPromptTokens: budget })]),
    );
    const rows = await probeRows('budget');
    expect(new Set(rows.filter((r) => r.outcome === 'too_long').map((r) => r.sample_id))).toEqual(over);
    expect(delta.requests('policy')).toBe(lengths.size - over.size);
  });

  test('too_long samples are never judged and training exports leave them out', async () => {
    const rows = await probeRows('counted');
    const tooLong = new Set(rows.filter((r) => r.outcome === 'too_long').map((r) => r.sample_id));
    const judgeable = new Set(
      rows.filter((r) => ['mismatch', 'parse_error'].includes(r.outcome)).map((r) => r.sample_id),
    );
    expect(judgeable.size).toBeGreaterThan(0);
    const pending = await pendingJudgeItems(f.db.pool, { loopName: 'counted', iteration: 1, ...ALL, limit: 100_000 });
    expect(new Set(pending.map((p) => p.sampleId))).toEqual(judgeable);
    expect(pending.some((p) => tooLong.has(p.sampleId))).toBe(false);

    const out = path.join(scratch, 'train.jsonl');
    const exported = await exportVersion(f.db.pool, {
      ref: f.seedVersion.ref,
      format: 'openai-jsonl',
      out,
      withoutTooLongOf: 'counted',
    });
    expect(exported.written).toBe(lengths.size - tooLong.size);
    expect(exported.skipped).toEqual({ [TOO_LONG_SKIP_REASON]: tooLong.size });
  });
});

describe('the held-out slice of the seed pool', () => {
  test("is kept out of D_1, scored with the probe's own verdicts, and stored beside the evaluation sets", async () => {
    const fraction = 0.1;
    const size = heldOutSizeOf(lengths.size, fraction);
    const slice = await heldOutSampleIds(f.db.pool, { seedVersionId: f.seedVersion.id, seed: 3, size });
    expect(slice).toHaveLength(size);
    const d1 = await runActivity(f.activities.createInitialVersion, [
      { loopName: 'held', seedDataset: f.seedVersion.ref, seed: 3, heldOutFraction: fraction, configHash: 'test' },
    ]);
    const inD1 = await f.db.pool.query<{ id: string }>(
      'SELECT s.id FROM dataset_members m JOIN samples s ON s.seq = m.sample_seq WHERE m.version_id = $1::bigint',
      [d1.versionId],
    );
    expect(inD1.rows.filter((r) => slice.includes(r.id))).toEqual([]);
    expect(d1.heldOutSize).toBe(size);

    const policy = { baseUrls: [f.sim.baseURL], maxConcurrency: 8, model: f.sim.policyModel };
    const score = await runActivity(f.activities.scoreHeldOut, [
      {
        loopName: 'held',
        iteration: 0,
        seedVersionId: f.seedVersion.id,
        seed: 3,
        heldOutFraction: fraction,
        policy,
        checker: { mode: 'exact' },
        maxTokens: 1024,
      },
    ]);
    // The probe's verdicts on the same samples (the sim's greedy student answers the same every time).
    await runActivity(f.activities.probeBatch, [await probeInput('held-probe', f.sim, { maxTokens: 1024 })]);
    const matched = await f.db.pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM probe_results WHERE loop_name = 'held-probe' AND outcome = 'match' AND sample_id = ANY($1::text[])`,
      [slice],
    );
    expect(score).toMatchObject({ total: size, rejected: 0, correct: Number(matched.rows[0]!.n) });
    expect(score.correct).toBeGreaterThan(0);
    expect(score.correct).toBeLessThan(size);
    const stored = await f.db.pool.query(
      `SELECT eval_set, category, total, correct FROM evaluations WHERE loop_name = 'held' AND iteration = 0`,
    );
    expect(stored.rows).toEqual([
      { eval_set: HELD_OUT_EVAL_SET, category: HELD_OUT_EVAL_SET, total: size, correct: score.correct },
    ]);
  });
});
