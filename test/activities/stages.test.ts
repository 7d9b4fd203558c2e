import { CancelledFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { AssembleNextVersionInput, ProbeBatchInput } from '../../core/inputs.js';
import { heldOutSizeOf } from '../../activities/dataset.js';
import { heldOutSampleIds } from '../../db/queries/assembly.js';
import { withTransaction } from '../../db/tx.js';
import type { CategoryScore } from '../../core/stages/bfcl-overall.js';
import { parseJson } from '../../core/json.js';
import { JudgeOutput, SCENARIO_FOCUSES, VERDICT_OF_JUDGE_TOKEN } from '../../core/schemas/model-io.js';
import type { Sample } from '../../core/schemas/sample.js';
import { scenarioFocusFor } from '../../core/stages/scenario.js';
import { corruptedSampleIds } from '../../sim/seed-data.js';
import { getSamples } from '../../db/queries/samples.js';
import { decodeSample } from '../../db/sample-codec.js';
import {
  ALL,
  activitiesWith,
  addLoop,
  chiSquareUniform,
  count,
  createStageFixture,
  registryWith,
  replyFromTarget,
  replyIsRight,
  replyOf,
  rewritingFetch,
  runActivity,
  simDelta,
  type StageFixture,
  wholeVersion,
} from '../helpers/stages.js';

/**
 * The model-facing stage activities (probe → judge → expand → assemble, and evaluate) against the simulated model
 * server over real HTTP and a real PostgreSQL, each run through the SDK's activity Context (MockActivityEnvironment:
 * real heartbeats and cancellation). Expectations come from the sim's own counters and truth and from the rows.
 *
 * Loops: `main` (D_1 = 200 of the 300 seed samples; 3 judge votes; the full pipeline), `single` (the same D_1; one
 * vote; expansion at temperature 0), `parse` (judge replies rewritten on the wire), `resume` (a cancelled probe).
 */

let f: StageFixture;
const SEED_DATA = { count: 300, seed: 11, wrongLabelRate: 0.2 };
const D1_SIZE = 200;
const versions: Record<string, { d1: number }> = {};

const policy = () => ({ baseUrls: [f.sim.baseURL], maxConcurrency: 16, model: f.sim.policyModel });
const judgeModel = () => ({ baseUrls: [f.sim.baseURL], maxConcurrency: 16, model: f.sim.judgeModel });
const generatorModel = () => ({ baseUrls: [f.sim.baseURL], maxConcurrency: 16, model: f.sim.generatorModel });

const probeInput = (
  loopName: string,
  versionId: number,
  batch: ProbeBatchInput['batch'],
  extra: Partial<ProbeBatchInput> = {},
): ProbeBatchInput => ({
  loopName,
  iteration: 1,
  versionId,
  batch,
  policy: policy(),
  checker: { mode: 'exact' },
  maxTokens: 1024,
  ...extra,
});

async function probeAll(loopName: string, versionId: number) {
  return runActivity(f.activities.probeBatch, [probeInput(loopName, versionId, await wholeVersion(f, versionId))]);
}

async function judgeAll(loopName: string, votes: number) {
  return runActivity(f.activities.judgeBatch, [
    { loopName, iteration: 1, batch: ALL, judge: judgeModel(), seed: 0, votes },
  ]);
}

/** Each loop's seed, from which its scenario focuses and sampling seeds derive. */
const LOOP_SEED: Record<string, number> = { main: 101, single: 202 };

async function expandAll(loopName: string, extra: { k?: number; temperature?: number } = {}) {
  return runActivity(f.activities.expandBatch, [
    {
      loopName,
      iteration: 1,
      batch: ALL,
      generator: generatorModel(),
      validator: judgeModel(),
      seed: LOOP_SEED[loopName]!,
      ...extra,
    },
  ]);
}

async function samplesById(ids: readonly string[]): Promise<Map<string, Sample>> {
  return new Map((await getSamples(f.db.pool, ids)).map((s) => [s.id, decodeSample(s)]));
}

interface ProbeRow {
  sample_id: string;
  seq: string;
  outcome: 'match' | 'mismatch' | 'parse_error';
  raw_output: string;
  parsed_calls: string | null;
  error_type: string | null;
  mean_logprob: number | null;
  perplexity: number | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  latency_ms: number | null;
  model: string;
  prompt_version: string;
}

async function probeRows(loopName: string): Promise<ProbeRow[]> {
  return (
    await f.db.pool.query<ProbeRow>(
      `SELECT p.sample_id, s.seq, p.outcome, p.raw_output, p.parsed_calls::text AS parsed_calls, p.error_type, p.mean_logprob, p.perplexity,
              p.prompt_tokens, p.completion_tokens, p.latency_ms, p.model, p.prompt_version
       FROM probe_results p JOIN samples s ON s.id = p.sample_id WHERE p.loop_name = $1::text AND p.iteration = 1 ORDER BY s.seq`,
      [loopName],
    )
  ).rows;
}

interface StoredVote {
  ok: boolean;
  verdict?: string;
  token?: string;
  raw: string;
  reason?: string;
  attempts: number;
  errorAnalysis?: string;
}

interface JudgementRow {
  sample_id: string;
  verdict: string;
  consensus: boolean;
  vote_count: number;
  votes: StoredVote[];
  error_analysis: string | null;
  corrected_sample_id: string | null;
  model: string;
  outcome: string;
  raw_output: string;
}

async function judgementRows(loopName: string): Promise<JudgementRow[]> {
  return (
    await f.db.pool.query<JudgementRow>(
      `SELECT j.sample_id, j.verdict, j.consensus, j.vote_count, j.votes, j.error_analysis, j.corrected_sample_id, j.model, p.outcome, p.raw_output
       FROM judgements j JOIN probe_results p USING (loop_name, iteration, sample_id)
       WHERE j.loop_name = $1::text AND j.iteration = 1 ORDER BY j.sample_id`,
      [loopName],
    )
  ).rows;
}

interface ExpansionRow {
  seed_sample_id: string;
  k: number;
  status: string;
  sample_id: string | null;
  scenario_focus: string;
  attempts: number;
  raw_output: string | null;
  rejection_reason: string | null;
  model: string;
}

async function expansionRows(loopName: string): Promise<ExpansionRow[]> {
  return (
    await f.db.pool.query<ExpansionRow>(
      `SELECT seed_sample_id, k, status, sample_id, scenario_focus, attempts, raw_output, rejection_reason, model
       FROM expansions WHERE loop_name = $1::text AND iteration = 1 ORDER BY seed_sample_id, k`,
      [loopName],
    )
  ).rows;
}

/** A fingerprint of everything a loop's stage tables hold, to show a re-run changed nothing. */
async function fingerprint(loopName: string): Promise<string> {
  const { rows } = await f.db.pool.query<{ fp: string }>(
    `SELECT concat_ws('|',
       (SELECT md5(coalesce(string_agg(to_jsonb(p)::text, ',' ORDER BY sample_id), '')) FROM probe_results p WHERE loop_name = $1::text),
       (SELECT md5(coalesce(string_agg(to_jsonb(j)::text, ',' ORDER BY sample_id), '')) FROM judgements j WHERE loop_name = $1::text),
       (SELECT md5(coalesce(string_agg(to_jsonb(e)::text, ',' ORDER BY seed_sample_id, k), '')) FROM expansions e WHERE loop_name = $1::text),
       (SELECT md5(coalesce(string_agg(to_jsonb(m)::text, ',' ORDER BY call_key), '')) FROM model_calls m WHERE loop_name = $1::text),
       (SELECT md5(coalesce(string_agg(to_jsonb(o)::text, ',' ORDER BY id), '')) FROM sample_origins o WHERE loop_name = $1::text),
       (SELECT count(*) FROM samples)) AS fp`,
    [loopName],
  );
  return rows[0]!.fp;
}

/** The verdict the truth calls for: is the label right, is the prediction right (JGLV's 4-way table). */
function trueVerdict(labelRight: boolean, predictionRight: boolean): string {
  if (labelRight && predictionRight) return 'both_correct';
  if (labelRight) return 'pred_wrong';
  if (predictionRight) return 'label_wrong';
  return 'both_wrong';
}

beforeAll(async () => {
  f = await createStageFixture(SEED_DATA);
  for (const loopName of ['main', 'single', 'parse', 'resume']) await addLoop(f, loopName);
  for (const loopName of ['main', 'single']) {
    const initial = await runActivity(f.activities.createInitialVersion, [
      { loopName, seedDataset: f.seedVersion.ref, size: D1_SIZE, seed: 5, configHash: 'test' },
    ]);
    versions[loopName] = { d1: initial.versionId };
  }
});
afterAll(async () => f?.close());

describe('probe (greedy capability probing)', () => {
  test('writes one row per member with the checker verdict, perplexity and tokens, a ledger row per call, and heartbeats its progress', async () => {
    const d1 = versions.main!.d1;
    const heartbeats: { lastSeq: number; probed: number }[] = [];
    const run = await simDelta(f.sim, async () =>
      runActivity(f.activities.probeBatch, [probeInput('main', d1, await wholeVersion(f, d1), { pageSize: 64 })], {
        onHeartbeat: (details) => heartbeats.push(details as { lastSeq: number; probed: number }),
      }),
    );
    const rows = await probeRows('main');
    const members = await count(f, 'SELECT count(*) AS n FROM dataset_members WHERE version_id = $1::bigint', [d1]);

    expect(members).toBe(D1_SIZE);
    expect(rows).toHaveLength(members);
    expect(run.requests('policy')).toBe(members);
    expect(run.result).toEqual({
      probed: members,
      match: rows.filter((r) => r.outcome === 'match').length,
      mismatch: rows.filter((r) => r.outcome === 'mismatch').length,
      parseError: rows.filter((r) => r.outcome === 'parse_error').length,
      tooLong: 0,
    });
    expect(run.result.match).toBeGreaterThan(0);
    expect(run.result.mismatch).toBeGreaterThan(0);

    // Each verdict is the checker's on the stored output: against the label for the outcome, against the truth for the
    // sim's own count of right answers.
    const samples = await samplesById(rows.map((r) => r.sample_id));
    let rightByTruth = 0;
    let corruptedButRight = 0;
    for (const row of rows) {
      const sample = samples.get(row.sample_id)!;
      const seed = f.seedById.get(row.sample_id)!;
      expect(row.outcome === 'parse_error').toBe(row.parsed_calls === null);
      if (row.outcome !== 'parse_error')
        expect(row.outcome === 'match').toBe(replyIsRight(sample, sample.target, replyOf(row.raw_output)));
      const right = replyIsRight(sample, seed.trueTarget, replyOf(row.raw_output));
      if (right) rightByTruth++;
      if (right && seed.corruption) {
        corruptedButRight++;
        expect(row.outcome).toBe('mismatch');
      }
      expect(row.mean_logprob).toBeLessThanOrEqual(0);
      expect(row.perplexity).toBeCloseTo(Math.exp(-row.mean_logprob!), 9);
      expect(row.completion_tokens).toBeGreaterThan(0);
      expect(row.prompt_tokens).toBeGreaterThan(0);
      expect(row.latency_ms).toBeGreaterThanOrEqual(0);
      expect(row).toMatchObject({ model: f.sim.policyModel, prompt_version: 'none' });
    }
    expect(rightByTruth).toBe(run.after.student.correct - run.before.student.correct);
    expect(corruptedButRight).toBeGreaterThan(0);
    const parseErrors = rows.filter((r) => r.outcome === 'parse_error').length;
    expect(parseErrors).toBe(
      run.after.student.byErrorKind.malformed_json - run.before.student.byErrorKind.malformed_json,
    );

    const ledger = await f.db.pool.query<{
      n: string;
      ok: boolean;
      model: string;
      endpoint: string;
      prompt: string;
      completion: string;
    }>(
      `SELECT count(*) AS n, bool_and(ok) AS ok, min(model) AS model, min(endpoint) AS endpoint, sum(prompt_tokens) AS prompt, sum(completion_tokens) AS completion
       FROM model_calls WHERE loop_name = 'main' AND iteration = 1 AND stage = 'probe' AND role = 'policy' GROUP BY model, endpoint`,
    );
    expect(ledger.rows).toEqual([
      {
        n: String(members),
        ok: true,
        model: f.sim.policyModel,
        endpoint: f.sim.baseURL,
        prompt: String(rows.reduce((sum, r) => sum + r.prompt_tokens!, 0)),
        completion: String(rows.reduce((sum, r) => sum + r.completion_tokens!, 0)),
      },
    ]);

    // Between pages the batch repeats its last cursor every second (a keepalive); the cursor itself moves once per page.
    const cursors = heartbeats.filter((h, i) => h.probed !== undefined && h.lastSeq !== heartbeats[i - 1]?.lastSeq);
    expect(cursors).toHaveLength(Math.ceil(members / 64));
    expect(heartbeats.map((h) => h.lastSeq)).toEqual([...heartbeats.map((h) => h.lastSeq)].sort((a, b) => a - b));
    expect(cursors.map((h) => h.probed)).toEqual([...cursors.map((h) => h.probed)].sort((a, b) => a - b));
    expect(heartbeats.at(-1)).toMatchObject({ lastSeq: Number(rows.at(-1)!.seq), probed: members });
  });

  test('running the same batch again calls the model zero times and writes nothing', async () => {
    const d1 = versions.main!.d1;
    const before = await fingerprint('main');
    const again = await simDelta(f.sim, () => probeAll('main', d1));
    // The result counts what the batch has recorded (so a retried batch reports all of its work), not this attempt's calls.
    expect(again.result.probed).toBe(
      await count(f, `SELECT count(*) AS n FROM probe_results WHERE loop_name = 'main' AND iteration = 1`),
    );
    expect(again.after.requests.total - again.before.requests.total).toBe(0);
    expect(await fingerprint('main')).toBe(before);
  });

  test('cancelled after its first page, the probe stops before the next request, and a retry probes only what is left', async () => {
    const version = f.seedVersion.id;
    const range = await wholeVersion(f, version);
    const members = await count(f, 'SELECT count(*) AS n FROM dataset_members WHERE version_id = $1::bigint', [
      version,
    ]);
    const pageSize = 25;
    const cancelled = await simDelta(f.sim, () =>
      runActivity(f.activities.probeBatch, [probeInput('resume', version, range, { pageSize })], {
        onHeartbeat: (_, env) => env.cancel(),
      }).then(
        () => undefined,
        (err: unknown) => err,
      ),
    );
    expect(cancelled.result).toBeInstanceOf(CancelledFailure);
    expect(cancelled.requests('policy')).toBe(pageSize);
    expect(await count(f, `SELECT count(*) AS n FROM probe_results WHERE loop_name = 'resume'`)).toBe(pageSize);

    const resumed = await simDelta(f.sim, () => probeAll('resume', version));
    expect(resumed.result.probed).toBe(members);
    expect(resumed.requests('policy')).toBe(members - pageSize);
    expect(await count(f, `SELECT count(DISTINCT sample_id) AS n FROM probe_results WHERE loop_name = 'resume'`)).toBe(
      members,
    );
    expect(await count(f, `SELECT count(*) AS n FROM model_calls WHERE loop_name = 'resume' AND stage = 'probe'`)).toBe(
      members,
    );
  });
});

describe('judge (judgement-guided label verification)', () => {
  beforeAll(async () => {
    await probeAll('main', versions.main!.d1);
    await probeAll('single', versions.single!.d1);
  });

  test('judges every mismatch with three votes, keeps each raw reply, and takes the majority of the votes actually cast', async () => {
    const run = await simDelta(f.sim, () => judgeAll('main', 3));
    const rows = await judgementRows('main');
    const probed = await probeRows('main');
    const mismatches = probed.filter((r) => r.outcome === 'mismatch');
    const parseErrors = probed.filter((r) => r.outcome === 'parse_error');

    expect(rows.map((r) => r.sample_id).sort()).toEqual(
      probed
        .filter((r) => r.outcome !== 'match')
        .map((r) => r.sample_id)
        .sort(),
    );
    expect(run.result.judged).toBe(rows.length);
    expect(run.requests('judge')).toBe(3 * mismatches.length);
    expect(run.after.judge.votes - run.before.judge.votes).toBe(3 * mismatches.length);
    expect(
      await count(
        f,
        `SELECT count(*) AS n FROM model_calls WHERE loop_name = 'main' AND stage = 'judge' AND model = $1::text`,
        [f.sim.judgeModel],
      ),
    ).toBe(3 * mismatches.length);

    for (const row of rows) {
      if (row.outcome === 'parse_error') {
        // An unparseable prediction is wrong by construction: no judge call.
        expect(row).toMatchObject({ verdict: 'pred_wrong', consensus: true, vote_count: 0, votes: [], model: 'rule' });
        continue;
      }
      expect(row.vote_count).toBe(3);
      expect(row.votes).toHaveLength(3);
      const tally = new Map<string, number>();
      for (const vote of row.votes) {
        // The raw reply is the judge's JSON, and the vote is what the one structured parser read from it.
        const parsed = parseJson(vote.raw);
        expect(parsed.ok).toBe(true);
        const output = JudgeOutput.parse(JSON.parse(vote.raw));
        expect(vote).toMatchObject({
          ok: true,
          token: output.verdict,
          verdict: VERDICT_OF_JUDGE_TOKEN[output.verdict],
          attempts: 1,
        });
        tally.set(vote.verdict!, (tally.get(vote.verdict!) ?? 0) + 1);
      }
      const [top, votes] = [...tally.entries()].sort((a, b) => b[1] - a[1])[0]!;
      expect(row.consensus).toBe(votes >= 2);
      expect(row.verdict).toBe(votes >= 2 ? top : row.votes[0]!.verdict);
      expect(row.model).toBe(f.sim.judgeModel);
    }
    expect(run.result.byVerdict.pred_wrong).toBe(rows.filter((r) => r.verdict === 'pred_wrong').length);
    expect(parseErrors.length + mismatches.length).toBe(rows.length);
  });

  test('verdicts follow the truth, and a corrupted label the policy got right becomes a corrected sample with lineage to the original', async () => {
    const run = await simDelta(f.sim, () => judgeAll('main', 3));
    expect(run.requests('judge')).toBe(0);
    const rows = (await judgementRows('main')).filter((r) => r.outcome === 'mismatch');
    const samples = await samplesById(
      rows.flatMap((r) => [r.sample_id, ...(r.corrected_sample_id ? [r.corrected_sample_id] : [])]),
    );
    const stats = f.sim.stats().judge;
    const corrupted = corruptedSampleIds(SEED_DATA);

    let agreed = 0;
    let labelWrongByTruth = 0;
    let relabeledRight = 0;
    for (const row of rows) {
      const sample = samples.get(row.sample_id)!;
      const seed = f.seedById.get(row.sample_id)!;
      const truth = trueVerdict(
        !corrupted.has(row.sample_id),
        replyIsRight(sample, seed.trueTarget, replyOf(row.raw_output)),
      );
      if (row.verdict === truth) agreed++;
      if (truth === 'label_wrong') labelWrongByTruth++;
      if (row.verdict === 'label_wrong' && row.consensus) {
        const corrected = samples.get(row.corrected_sample_id!)!;
        expect(corrected.tools).toEqual(sample.tools);
        expect(corrected.messages).toEqual(sample.messages);
        // The corrected label is the policy's prediction, so it passes the checker wherever the prediction did.
        expect(replyIsRight(sample, corrected.target, replyOf(row.raw_output))).toBe(true);
        if (truth === 'label_wrong') {
          // A wrong label the policy got right is corrected to the truth.
          expect(replyIsRight(sample, seed.trueTarget, replyFromTarget(corrected.target))).toBe(true);
          relabeledRight++;
        }
        const origin = await f.db.pool.query(
          `SELECT parent_sample_id, loop_name, iteration, detail->>'verdict' AS verdict FROM sample_origins WHERE sample_id = $1::text AND kind = 'label_correction'`,
          [row.corrected_sample_id],
        );
        expect(origin.rows).toEqual([
          { parent_sample_id: row.sample_id, loop_name: 'main', iteration: 1, verdict: 'label_wrong' },
        ]);
      } else {
        expect(row.corrected_sample_id).toBeNull();
      }
    }
    // Majorities of three votes are at least as right as the single votes the sim counted, give or take noise.
    const voteAccuracy = stats.agreedWithTruth / stats.truthKnown;
    expect(agreed / rows.length).toBeGreaterThanOrEqual(voteAccuracy - 0.05);
    expect(labelWrongByTruth).toBeGreaterThan(0);
    expect(relabeledRight).toBeGreaterThan(0);
  });

  test('with one vote the verdict is greedy and is its own consensus (the official code never reached consensus with one vote)', async () => {
    const run = await simDelta(f.sim, () => judgeAll('single', 1));
    const rows = (await judgementRows('single')).filter((r) => r.outcome === 'mismatch');
    expect(run.requests('judge')).toBe(rows.length);
    for (const row of rows) {
      expect(row.vote_count).toBe(1);
      expect(row.votes).toHaveLength(1);
      expect(row.votes[0]!.ok).toBe(true);
      expect(row.consensus).toBe(true);
      expect(row.verdict).toBe(row.votes[0]!.verdict);
    }
    const labelWrong = rows.filter((r) => r.verdict === 'label_wrong');
    expect(labelWrong.length).toBeGreaterThan(0);
    expect(labelWrong.every((r) => r.corrected_sample_id !== null)).toBe(true);
    expect(run.result.relabeled).toBe(labelWrong.length);
  });

  test('one structured parser: a reply that echoes the verdict options is read from its JSON, and prose is retried up to parseRetries then kept as a failed vote with its raw text', async () => {
    // Judge replies rewritten on the wire by the prompt they answer: class 0 always prose naming every option (a
    // token-search parser would read RESPONSE1_INCORRECT), class 1 an invalid verdict on its first attempt only, class
    // 2 a <think> block that lists the options before the real JSON.
    const prose =
      'The options are RESPONSE1_INCORRECT, RESPONSE2_INCORRECT, BOTH_CORRECT and BOTH_INCORRECT; I would say RESPONSE1_INCORRECT.';
    const attempts = new Map<string, number>();
    const classes = [new Set<string>(), new Set<string>(), new Set<string>()];
    const fetchImpl = rewritingFetch(({ schemaName, body }, content) => {
      if (schemaName !== 'judge_verdict') return content;
      const prompt = JSON.stringify(body.messages);
      const key = String([...prompt].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7));
      const cls = Number(BigInt(key) % 3n);
      classes[cls]!.add(key);
      const n = (attempts.get(key) ?? 0) + 1;
      attempts.set(key, n);
      if (cls === 0) return prose;
      if (cls === 1)
        return n === 1
          ? content.replace(/"verdict": "[A-Z0-9_]+"/, '"verdict": "RESPONSE1_INCORRECT or RESPONSE2_INCORRECT"')
          : content;
      return `<think>The options are RESPONSE1_INCORRECT, RESPONSE2_INCORRECT, BOTH_CORRECT and BOTH_INCORRECT. Response 1 looks off.</think>\n${content}`;
    });
    const activities = activitiesWith(f, registryWith(fetchImpl));
    await runActivity(activities.probeBatch, [
      probeInput('parse', versions.single!.d1, await wholeVersion(f, versions.single!.d1)),
    ]);
    await judgeAll('single', 1);
    const run = await simDelta(f.sim, () =>
      runActivity(activities.judgeBatch, [
        { loopName: 'parse', iteration: 1, batch: ALL, judge: judgeModel(), seed: 0, votes: 1, parseRetries: 2 },
      ]),
    );

    const reference = new Map((await judgementRows('single')).map((r) => [r.sample_id, r]));
    const rows = (await judgementRows('parse')).filter((r) => r.outcome === 'mismatch');
    const failed = rows.filter((r) => r.verdict === 'judge_failed');
    const retried = rows.filter((r) => r.votes[0]!.ok && r.votes[0]!.attempts === 2);
    const thinking = rows.filter((r) => r.votes[0]!.raw.startsWith('<think>'));
    expect([failed.length, retried.length, thinking.length]).toEqual(classes.map((c) => c.size));
    expect(classes.every((c) => c.size > 0)).toBe(true);
    expect(failed.length + retried.length + thinking.length).toBe(rows.length);

    for (const row of failed) {
      expect(row).toMatchObject({ consensus: false, vote_count: 1, corrected_sample_id: null, error_analysis: null });
      expect(row.votes).toEqual([{ ok: false, raw: prose, reason: expect.stringMatching(/^not JSON/), attempts: 3 }]);
    }
    for (const row of [...retried, ...thinking]) {
      expect(row.verdict).toBe(reference.get(row.sample_id)!.verdict);
      expect(row.consensus).toBe(true);
    }
    expect(run.result.byVerdict.judge_failed).toBe(failed.length);
    expect(run.requests('judge')).toBe(3 * failed.length + 2 * retried.length + thinking.length);
    expect(
      await count(f, `SELECT count(*) AS n FROM model_calls WHERE loop_name = 'parse' AND stage = 'judge' AND NOT ok`),
    ).toBe(3 * failed.length + retried.length);
  });

  test('a retried judge batch asks the judge nothing and writes nothing twice', async () => {
    const before = await fingerprint('main');
    const again = await simDelta(f.sim, () => judgeAll('main', 3));
    expect(again.result.judged).toBe(
      await count(f, `SELECT count(*) AS n FROM judgements WHERE loop_name = 'main' AND iteration = 1`),
    );
    expect(again.requests('judge')).toBe(0);
    expect(await fingerprint('main')).toBe(before);
  });
});

describe('expand (error-driven data expansion)', () => {
  beforeAll(async () => {
    await probeAll('main', versions.main!.d1);
    await judgeAll('main', 3);
    await probeAll('single', versions.single!.d1);
    await judgeAll('single', 1);
  });

  test('records k=4 slots per error seed with status, reason and raw output; accepted samples get lineage to the seed (or its corrected sample) and the scenario focus', async () => {
    const run = await simDelta(f.sim, () => expandAll('main'));
    const seeds = (await judgementRows('main')).filter(
      (r) => r.consensus && (r.verdict === 'pred_wrong' || r.verdict === 'label_wrong'),
    );
    const rows = await expansionRows('main');
    const bySeed = new Map(seeds.map((s) => [s.sample_id, s]));

    expect(run.result.seeds).toBe(seeds.length);
    expect(rows).toHaveLength(4 * seeds.length);
    for (const seed of seeds)
      expect(rows.filter((r) => r.seed_sample_id === seed.sample_id).map((r) => r.k)).toEqual([0, 1, 2, 3]);
    const byStatus: Record<string, number> = {};
    for (const row of rows) byStatus[row.status] = (byStatus[row.status] ?? 0) + 1;
    expect(run.result.byStatus).toEqual(byStatus);
    expect(byStatus.accepted).toBeGreaterThan(0);

    // Rule validation rejects exactly the outputs the sim made invalid; unparseable replies were retried.
    const flawed = (kind: keyof typeof run.after.generator.flawed) =>
      run.after.generator.flawed[kind] - run.before.generator.flawed[kind];
    expect(byStatus.rejected_rule ?? 0).toBe(
      flawed('unknown_parameter') + flawed('missing_required') + flawed('wrong_type'),
    );
    const attempts = rows.reduce((sum, r) => sum + r.attempts, 0);
    expect(run.requests('generator')).toBe(attempts);
    expect(flawed('unparseable')).toBe(attempts - rows.filter((r) => r.status !== 'generation_failed').length);
    // The validation judge saw every sample that passed the rules, once.
    const validated = rows.filter((r) => r.status !== 'rejected_rule' && r.status !== 'generation_failed').length;
    expect(run.requests('judge')).toBe(validated);
    expect(run.after.judge.validations - run.before.judge.validations).toBe(validated);

    for (const row of rows) {
      expect(['accepted', 'rejected_rule', 'rejected_judge', 'duplicate', 'generation_failed']).toContain(row.status);
      expect(row.model).toBe(f.sim.generatorModel);
      expect(row.raw_output).toEqual(expect.any(String));
      if (row.status === 'accepted') {
        expect(row.sample_id).toMatch(/^[0-9a-f]{64}$/);
        expect(row.rejection_reason).toBeNull();
      } else {
        expect(row.sample_id).toBeNull();
        expect(row.rejection_reason).toEqual(expect.any(String));
      }
      if (row.status === 'rejected_judge') expect(row.rejection_reason).toMatch(/^validation judge/);
    }

    const accepted = rows.filter((r) => r.status === 'accepted');
    const origins = await f.db.pool.query<{
      sample_id: string;
      parent_sample_id: string;
      detail: { k: number; scenarioFocus: string; judgeAnalysis: string | null };
    }>(
      `SELECT sample_id, parent_sample_id, detail FROM sample_origins WHERE kind = 'expansion' AND loop_name = 'main' AND iteration = 1`,
    );
    expect(origins.rows).toHaveLength(accepted.length);
    const originOf = new Map(origins.rows.map((o) => [o.sample_id, o]));
    const samples = await samplesById([...accepted.map((r) => r.sample_id!), ...seeds.map((s) => s.sample_id)]);
    let fromCorrected = 0;
    for (const row of accepted) {
      const seed = bySeed.get(row.seed_sample_id)!;
      const origin = originOf.get(row.sample_id!)!;
      const parent = seed.verdict === 'label_wrong' ? seed.corrected_sample_id! : seed.sample_id;
      if (seed.verdict === 'label_wrong') fromCorrected++;
      expect(origin).toEqual({
        sample_id: row.sample_id,
        parent_sample_id: parent,
        detail: { k: row.k, scenarioFocus: row.scenario_focus, judgeAnalysis: seed.error_analysis },
      });
      const sample = samples.get(row.sample_id!)!;
      expect(sample.tools).toEqual(samples.get(seed.sample_id)!.tools);
      expect(sample.messages.at(-1)!.role).toBe('user');
    }
    expect(fromCorrected).toBeGreaterThan(0);
  });

  test('generator requests carry the configured model name (the official code passed a string and picked one character)', async () => {
    await expandAll('main');
    const stats = f.sim.stats();
    const generatorCalls = await count(
      f,
      `SELECT count(*) AS n FROM model_calls WHERE stage = 'expand' AND role = 'generator' AND model = $1::text`,
      [f.sim.generatorModel],
    );
    expect(generatorCalls).toBeGreaterThan(0);
    expect(
      await count(f, `SELECT count(*) AS n FROM model_calls WHERE stage = 'expand' AND model <> $1::text`, [
        f.sim.generatorModel,
      ]),
    ).toBe(0);
    expect(stats.requests.byModel[f.sim.generatorModel]).toBe(stats.requests.byRole.generator);
    expect(stats.requests.byRole.generator).toBe(generatorCalls);
    expect(Object.keys(stats.requests.byModel).sort()).toEqual(
      [f.sim.generatorModel, f.sim.judgeModel, f.sim.policyModel].sort(),
    );
  });

  test('a retried expand batch generates nothing and writes nothing twice', async () => {
    const before = await fingerprint('main');
    const again = await simDelta(f.sim, () => expandAll('main'));
    expect(again.result.seeds).toBe(
      await count(
        f,
        `SELECT count(DISTINCT seed_sample_id) AS n FROM expansions WHERE loop_name = 'main' AND iteration = 1`,
      ),
    );
    expect(again.after.requests.total - again.before.requests.total).toBe(0);
    expect(await fingerprint('main')).toBe(before);
  });

  test('at temperature 0, slots sharing a seed and focus yield one accepted sample and duplicates, and a resumed batch only fills the missing slots', async () => {
    const first = await simDelta(f.sim, () => expandAll('single', { k: 2, temperature: 0 }));
    const firstRows = await expansionRows('single');
    const seeds = new Set(firstRows.map((r) => r.seed_sample_id));
    expect(firstRows.every((r) => r.k < 2)).toBe(true);
    expect(firstRows).toHaveLength(2 * seeds.size);
    expect(first.requests('generator')).toBe(firstRows.reduce((sum, r) => sum + r.attempts, 0));

    const resumed = await simDelta(f.sim, () => expandAll('single', { k: 4, temperature: 0 }));
    const rows = await expansionRows('single');
    const added = rows.filter((r) => r.k >= 2);
    expect(rows).toHaveLength(4 * seeds.size);
    expect(rows.filter((r) => r.k < 2)).toEqual(firstRows);
    expect(resumed.requests('generator')).toBe(added.reduce((sum, r) => sum + r.attempts, 0));

    // Greedy generation: equal prompts (same seed, same focus) give equal samples; the first slot keeps its status and
    // an accepted sample makes the later ones duplicates, within a page or against the store.
    let duplicates = 0;
    const groups = new Map<string, ExpansionRow[]>();
    for (const row of rows)
      groups.set(`${row.seed_sample_id}|${row.scenario_focus}`, [
        ...(groups.get(`${row.seed_sample_id}|${row.scenario_focus}`) ?? []),
        row,
      ]);
    for (const [lead, ...rest] of groups.values()) {
      for (const row of rest) {
        if (lead!.status === 'accepted') {
          duplicates++;
          // The row names the content it duplicates (the sample the loop already has), and is never a member.
          expect(row).toMatchObject({ status: 'duplicate', sample_id: lead!.sample_id, raw_output: lead!.raw_output });
          expect(row.rejection_reason).toContain(lead!.sample_id!);
        } else {
          expect(row.status).toBe(lead!.status);
        }
      }
    }
    expect(duplicates).toBeGreaterThan(0);
    expect(rows.filter((r) => r.status === 'duplicate')).toHaveLength(duplicates);
    // Every status shows up here; a slot whose greedy reply never parses is recorded after all its attempts, raw text kept.
    expect(new Set(rows.map((r) => r.status))).toEqual(
      new Set(['accepted', 'rejected_rule', 'rejected_judge', 'duplicate', 'generation_failed']),
    );
    for (const row of rows.filter((r) => r.status === 'generation_failed')) {
      expect(row).toMatchObject({
        attempts: 3,
        sample_id: null,
        rejection_reason: expect.stringMatching(/^not JSON/),
        raw_output: expect.any(String),
      });
    }
  });

  test('scenario focuses are uniform over slots (chi-square, 3 degrees of freedom, p = 0.001), unlike the official randint(0,6) % 4', async () => {
    await expandAll('main');
    await expandAll('single', { temperature: 0 });
    // Distinct slots (loop seed, seed sample, k) across both loops; each focus must be the slot's own uniform draw.
    const slots = new Map<string, string>();
    for (const loopName of ['main', 'single']) {
      for (const row of await expansionRows(loopName)) {
        expect(row.scenario_focus).toBe(
          scenarioFocusFor({ seed: LOOP_SEED[loopName]!, iteration: 1, seedSampleId: row.seed_sample_id, k: row.k }),
        );
        slots.set(`${LOOP_SEED[loopName]}|${row.seed_sample_id}|${row.k}`, row.scenario_focus);
      }
    }
    const counts: Record<string, number> = {};
    for (const focus of slots.values()) counts[focus] = (counts[focus] ?? 0) + 1;
    const critical = 16.27;
    expect(chiSquareUniform(counts, SCENARIO_FOCUSES)).toBeLessThan(critical);
    // Enough slots that the official bias (2/7, 2/7, 2/7, 1/7) would stand out: its expected statistic is 0.0612 n.
    const biasedExpected = slots.size * 4 * (3 * (2 / 7 - 1 / 4) ** 2 + (1 / 7 - 1 / 4) ** 2);
    expect(biasedExpected).toBeGreaterThan(2 * critical);
  });
});

describe('assemble (Eq. 5 within a budget)', () => {
  beforeAll(async () => {
    for (const [loopName, votes] of [
      ['main', 3],
      ['single', 1],
    ] as const) {
      await probeAll(loopName, versions[loopName]!.d1);
      await judgeAll(loopName, votes);
      await expandAll(loopName, loopName === 'single' ? { temperature: 0 } : {});
    }
  });

  async function plan(loopName: string) {
    const q = async (sql: string, params: unknown[] = []) =>
      new Set((await f.db.pool.query<{ seq: string }>(sql, params)).rows.map((r) => Number(r.seq)));
    const errorSeeds = await q(
      `SELECT s.seq FROM judgements j JOIN samples s ON s.id = j.sample_id WHERE j.loop_name = $1::text AND j.iteration = 1 AND j.consensus AND j.verdict = 'pred_wrong'`,
      [loopName],
    );
    const relabeled = await q(
      `SELECT s.seq FROM judgements j JOIN samples s ON s.id = j.corrected_sample_id WHERE j.loop_name = $1::text AND j.iteration = 1 AND j.consensus AND j.verdict = 'label_wrong'`,
      [loopName],
    );
    const d1 = await q('SELECT sample_seq AS seq FROM dataset_members WHERE version_id = $1::bigint', [
      versions[loopName]!.d1,
    ]);
    const fresh = await q('SELECT sample_seq AS seq FROM dataset_members WHERE version_id = $1::bigint', [
      f.seedVersion.id,
    ]);
    for (const seq of d1) fresh.delete(seq);
    const expanded = await q(
      `SELECT s.seq FROM expansions e JOIN samples s ON s.id = e.sample_id WHERE e.loop_name = $1::text AND e.iteration = 1 AND e.status = 'accepted'`,
      [loopName],
    );
    const mastered = (
      await f.db.pool.query<{ seq: string; perplexity: number }>(
        `SELECT s.seq, p.perplexity FROM probe_results p JOIN samples s ON s.id = p.sample_id
         LEFT JOIN judgements j USING (loop_name, iteration, sample_id)
         WHERE p.loop_name = $1::text AND p.iteration = 1 AND (p.outcome = 'match' OR (j.verdict = 'both_correct' AND j.consensus))`,
        [loopName],
      )
    ).rows.map((r) => ({ seq: Number(r.seq), perplexity: r.perplexity }));
    return { errorSeeds, relabeled, fresh, expanded, mastered, d1 };
  }

  async function members(versionId: number): Promise<Map<number, string>> {
    return new Map(
      (
        await f.db.pool.query<{ seq: string; role: string }>(
          'SELECT sample_seq AS seq, role FROM dataset_members WHERE version_id = $1::bigint',
          [versionId],
        )
      ).rows.map((r) => [Number(r.seq), r.role]),
    );
  }

  const withRole = (m: Map<number, string>, role: string) =>
    new Set([...m].filter(([, r]) => r === role).map(([seq]) => seq));

  /** The config's shares, by default none of the caps and floors in the way (each test sets what it tests). */
  const shares = (given: Partial<AssembleNextVersionInput['shares']> = {}) => ({
    seedNewFraction: 0,
    seedNewDecay: 0.5,
    errorSeedMaxShare: 1,
    highPplMinShare: 0,
    ...given,
  });

  const assembleInput = (
    loopName: string,
    budget: number,
    given: Partial<AssembleNextVersionInput['shares']> = {},
    heldOutFraction = 0,
  ) => ({
    loopName,
    iteration: 1,
    currentVersionId: versions[loopName]!.d1,
    seedVersionId: f.seedVersion.id,
    budget,
    shares: shares(given),
    heldOutFraction,
    seed: 5,
    configHash: 'test',
    injectBatchIds: [],
  });

  /**
   * Assembles D_2 of a loop again from the same iteration results, under other shares. Frozen versions never change
   * (triggers), so the test drops the earlier D_2 with the triggers off for its own transaction.
   */
  async function reassemble(input: ReturnType<typeof assembleInput>) {
    const drop = `SELECT id FROM dataset_versions WHERE loop_name = $1::text AND iteration = 2`;
    await withTransaction(f.db.pool, async (tx) => {
      await tx.query('SET LOCAL session_replication_role = replica');
      await tx.query(`DELETE FROM dataset_members WHERE version_id IN (${drop})`, [input.loopName]);
      await tx.query(`DELETE FROM dataset_versions WHERE id IN (${drop})`, [input.loopName]);
    });
    return runActivity(f.activities.assembleNextVersion, [input]);
  }

  /** Expansions taken per error seed, and accepted per seed. */
  async function expansionsPerSeed(loopName: string, versionId: number) {
    const { rows } = await f.db.pool.query<{ seed: string; accepted: string; taken: string }>(
      `SELECT e.seed_sample_id AS seed, count(*) AS accepted,
              count(*) FILTER (WHERE EXISTS (SELECT 1 FROM dataset_members m JOIN samples s ON s.seq = m.sample_seq
                                             WHERE m.version_id = $2::bigint AND s.id = e.sample_id)) AS taken
       FROM expansions e WHERE e.loop_name = $1::text AND e.iteration = 1 AND e.status = 'accepted'
       GROUP BY e.seed_sample_id`,
      [loopName, versionId],
    );
    return rows.map((r) => ({ accepted: Number(r.accepted), taken: Number(r.taken) }));
  }

  test('D_2 keeps the error seeds (relabeled ones as their corrected samples), fresh seed data, expansions and the highest-perplexity mastered samples up to the budget', async () => {
    const p = await plan('main');
    const seedNew = 40;
    const highPpl = 15;
    expect(p.fresh.size).toBeGreaterThan(seedNew);
    expect(p.mastered.length).toBeGreaterThan(highPpl);
    const budget = p.errorSeeds.size + p.relabeled.size + seedNew + p.expanded.size + highPpl;
    const result = await runActivity(f.activities.assembleNextVersion, [
      assembleInput('main', budget, { seedNewFraction: seedNew / budget }),
    ]);
    const m = await members(result.versionId);

    expect(result.memberCount).toBe(budget);
    expect(result.countsByRole).toEqual({
      error_seed: p.errorSeeds.size,
      relabeled: p.relabeled.size,
      seed_new: seedNew,
      expanded: p.expanded.size,
      high_ppl: highPpl,
    });
    expect(withRole(m, 'error_seed')).toEqual(p.errorSeeds);
    expect(withRole(m, 'relabeled')).toEqual(p.relabeled);
    expect(withRole(m, 'expanded')).toEqual(p.expanded);
    expect([...withRole(m, 'seed_new')].every((seq) => p.fresh.has(seq))).toBe(true);
    const chosen = withRole(m, 'high_ppl');
    const ppl = (seqs: Iterable<number>) =>
      p.mastered.filter((x) => [...seqs].includes(x.seq)).map((x) => x.perplexity);
    expect(ppl(chosen)).toHaveLength(highPpl);
    expect(Math.min(...ppl(chosen))).toBeGreaterThanOrEqual(
      Math.max(...p.mastered.filter((x) => !chosen.has(x.seq)).map((x) => x.perplexity)),
    );

    const version = await f.db.pool.query(
      'SELECT status, loop_name, iteration, parent_id FROM dataset_versions WHERE id = $1::bigint',
      [result.versionId],
    );
    expect(version.rows).toEqual([
      { status: 'frozen', loop_name: 'main', iteration: 2, parent_id: String(versions.main!.d1) },
    ]);
  });

  test('assembling again (a retried activity) returns the same frozen version unchanged', async () => {
    const first = await runActivity(f.activities.assembleNextVersion, [assembleInput('main', 10)]);
    const before = await members(first.versionId);
    const again = await runActivity(f.activities.assembleNextVersion, [
      assembleInput('main', 10_000, { seedNewFraction: 0.5 }),
    ]);
    expect(again).toEqual(first);
    expect(await members(again.versionId)).toEqual(before);
    expect(
      await count(f, `SELECT count(*) AS n FROM dataset_versions WHERE loop_name = 'main' AND iteration = 2`),
    ).toBe(1);
  });

  test('fresh seed data is capped by what the loop never used; expansions cut at the budget stay balanced per seed', async () => {
    const p = await plan('single');
    const expandedRoom = 10;
    expect(p.expanded.size).toBeGreaterThan(expandedRoom);
    const budget = p.errorSeeds.size + p.relabeled.size + p.fresh.size + expandedRoom;
    const result = await runActivity(f.activities.assembleNextVersion, [
      assembleInput('single', budget, { seedNewFraction: 1 }),
    ]);
    const m = await members(result.versionId);
    expect(result.countsByRole).toEqual({
      error_seed: p.errorSeeds.size,
      relabeled: p.relabeled.size,
      seed_new: p.fresh.size,
      expanded: expandedRoom,
    });
    expect(withRole(m, 'seed_new')).toEqual(p.fresh);
    expect([...withRole(m, 'seed_new')].some((seq) => p.d1.has(seq))).toBe(false);
    expect([...withRole(m, 'expanded')].every((seq) => p.expanded.has(seq))).toBe(true);
    expect(result.memberCount).toBe(budget);
    // Balanced: a seed that kept fewer expansions than another has none left, or is at most one behind.
    const perSeed = await expansionsPerSeed('single', result.versionId);
    expect(perSeed.length).toBeGreaterThan(1);
    const most = Math.max(...perSeed.map((s) => s.taken));
    for (const seed of perSeed) expect(seed.taken === seed.accepted || seed.taken >= most - 1).toBe(true);
    expect(perSeed.filter((s) => s.taken > 0).length).toBe(Math.min(perSeed.length, expandedRoom));
  });

  test('error seeds are capped at their share, high-PPL keeps its floor, expansions take the room between, and the budget is never exceeded', async () => {
    const p = await plan('main');
    const errors = p.errorSeeds.size + p.relabeled.size;
    // Small enough that the high-PPL floor exists and the expansions do not all fit.
    const budget = Math.min(Math.floor(p.mastered.length / 0.3), Math.floor(p.expanded.size / 0.5));
    const given = { errorSeedMaxShare: 0.05, highPplMinShare: 0.3, seedNewFraction: 0.2 };
    const errorCap = Math.floor(budget * 0.05);
    const floor = Math.ceil(budget * 0.3);
    const seedNew = Math.round(budget * 0.2);
    // The data has more of each part than the shares allow, so each cap binds.
    expect(errors).toBeGreaterThan(errorCap);
    expect(p.expanded.size).toBeGreaterThan(budget - errorCap - seedNew - floor);
    expect(p.fresh.size).toBeGreaterThan(seedNew);
    const result = await reassemble(assembleInput('main', budget, given));
    const m = await members(result.versionId);
    expect(result.memberCount).toBe(budget);
    expect((result.countsByRole.error_seed ?? 0) + (result.countsByRole.relabeled ?? 0)).toBe(errorCap);
    expect(result.countsByRole.seed_new).toBe(seedNew);
    expect(result.countsByRole.high_ppl).toBe(floor);
    expect(result.countsByRole.expanded).toBe(budget - errorCap - seedNew - floor);
    expect([...withRole(m, 'error_seed')].every((seq) => p.errorSeeds.has(seq))).toBe(true);
    expect([...withRole(m, 'relabeled')].every((seq) => p.relabeled.has(seq))).toBe(true);

    // A budget far above what exists: every part is taken whole, and nothing is invented to fill it.
    const roomy = await reassemble(assembleInput('main', 100_000, { ...given, errorSeedMaxShare: 1 }));
    expect(roomy.memberCount).toBeLessThanOrEqual(100_000);
    expect(roomy.countsByRole).toMatchObject({
      error_seed: p.errorSeeds.size,
      relabeled: p.relabeled.size,
      expanded: p.expanded.size,
      high_ppl: p.mastered.length,
      seed_new: p.fresh.size,
    });
  });

  test('seed-new never draws from the held-out slice, which D_1 never drew from either', async () => {
    const p = await plan('main');
    const held = new Set(
      (
        await f.db.pool.query<{ seq: string }>(`SELECT s.seq FROM samples s WHERE s.id = ANY($1::text[])`, [
          await heldOutSampleIds(f.db.pool, { seedVersionId: f.seedVersion.id, seed: 5, size: 30 }),
        ])
      ).rows.map((r) => Number(r.seq)),
    );
    expect(held.size).toBe(30);
    // createInitialVersion kept 2% of the pool (the default) out of D_1 at the far end of the same order.
    const defaultSlice = await heldOutSampleIds(f.db.pool, {
      seedVersionId: f.seedVersion.id,
      seed: 5,
      size: heldOutSizeOf(f.seedVersion.memberCount ?? 0, 0.02),
    });
    const d1Ids = await f.db.pool.query<{ id: string }>(
      'SELECT s.id FROM dataset_members m JOIN samples s ON s.seq = m.sample_seq WHERE m.version_id = $1::bigint',
      [versions.main!.d1],
    );
    expect(d1Ids.rows.some((r) => defaultSlice.includes(r.id))).toBe(false);
    const fraction = 30 / (f.seedVersion.memberCount ?? 1);
    const result = await reassemble(assembleInput('main', 100_000, { seedNewFraction: 1 }, fraction));
    const drawn = withRole(await members(result.versionId), 'seed_new');
    expect([...drawn].some((seq) => held.has(seq))).toBe(false);
    expect(drawn).toEqual(new Set([...p.fresh].filter((seq) => !held.has(seq))));
  });
});

describe('evaluate (held-out BFCL files)', () => {
  test('scores each file per category with the core checker and adds the non_live and overall summary rows', async () => {
    await addLoop(f, 'eval');
    const files = [
      { questions: 'data/bfcl/BFCL_v4_multiple.json', answers: 'data/bfcl/possible_answer/BFCL_v4_multiple.json' },
      { questions: 'data/bfcl/BFCL_v4_irrelevance.json' },
    ];
    const scores: CategoryScore[] = [];
    for (const file of files) {
      const run = await simDelta(f.sim, () =>
        runActivity(f.activities.evaluateFile, [
          { loopName: 'eval', iteration: 1, evalSet: 'bfcl', file, policy: policy(), maxTokens: 1024 },
        ]),
      );
      expect(run.result).toHaveLength(1);
      const score = run.result[0]!;
      expect(run.requests('policy')).toBe(score.total);
      // The checker agrees with the sim's own BFCL oracle on every question, except that BFCL scores an undecodable
      // reply to an irrelevance question as "no call", hence right, where the sim meant it as a malformed call.
      const simRight = run.after.student.correct - run.before.student.correct;
      const malformed = run.after.student.byErrorKind.malformed_json - run.before.student.byErrorKind.malformed_json;
      expect(score.correct).toBe(score.category === 'irrelevance' ? simRight + malformed : simRight);
      scores.push(score);
    }
    expect(scores.map((s) => s.category)).toEqual(['multiple', 'irrelevance']);
    expect(scores.map((s) => s.total)).toEqual([200, 240]);

    const summary = await runActivity(f.activities.summarizeEvaluation, [
      { loopName: 'eval', iteration: 1, evalSet: 'bfcl' },
    ]);
    const rows = (
      await f.db.pool.query<{ category: string; total: number; correct: number; accuracy: number }>(
        `SELECT category, total, correct, accuracy FROM evaluations WHERE loop_name = 'eval' AND iteration = 1 AND eval_set = 'bfcl' ORDER BY category`,
      )
    ).rows;
    expect(rows.map((r) => r.category)).toEqual(['irrelevance', 'multiple', 'non_live', 'overall']);
    for (const row of rows) {
      expect(row.accuracy).toBeGreaterThanOrEqual(0);
      expect(row.accuracy).toBeLessThanOrEqual(1);
    }
    const accuracy = (category: string) => rows.find((r) => r.category === category)!.accuracy;
    for (const s of scores) expect(accuracy(s.category)).toBeCloseTo(s.correct / s.total, 12);
    // Irrelevance is reported beside BFCL v3's Non-Live, not inside it (core/stages/bfcl-overall.ts).
    expect(accuracy('non_live')).toBeCloseTo(accuracy('multiple'), 12);
    expect(accuracy('overall')).toBeCloseTo(accuracy('non_live'), 12);
    expect(summary.overall).toBeCloseTo(accuracy('overall'), 12);
    expect(
      await count(f, `SELECT count(*) AS n FROM model_calls WHERE loop_name = 'eval' AND stage = 'evaluate'`),
    ).toBe(440);

    // Evaluating a file again rewrites its row with the same numbers and counts no call twice.
    await runActivity(f.activities.evaluateFile, [
      { loopName: 'eval', iteration: 1, evalSet: 'bfcl', file: files[0]!, policy: policy(), maxTokens: 1024 },
    ]);
    expect(
      (
        await f.db.pool.query(
          `SELECT total, correct FROM evaluations WHERE loop_name = 'eval' AND category = 'multiple'`,
        )
      ).rows,
    ).toEqual([{ total: 200, correct: scores.find((s) => s.category === 'multiple')!.correct }]);
    expect(
      await count(f, `SELECT count(*) AS n FROM model_calls WHERE loop_name = 'eval' AND stage = 'evaluate'`),
    ).toBe(440);
  });
});
